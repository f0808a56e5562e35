"""crossmargin: an agent-based model of cross-margin liquidation contagion.

The installed package maps the repository's three folders into one namespace:
``crossmargin.model`` (the simulation), ``crossmargin.experiments`` (scenarios,
sweeps, the command line) and ``crossmargin.analysis`` (metrics, figures, reports,
the dashboard).

Examples:
    >>> from crossmargin import CrossMarginModel, Scenario, presets
    >>> "baseline" in presets()
    True
    >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=3), rng=1)
    >>> m.run_for(3)
    >>> m.t
    3
"""

from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version

from .model import CrossMarginModel, Scenario, ScenarioError, presets

try:
    __version__ = _version("crossmargin")
except PackageNotFoundError:  # pragma: no cover - running from a tree that is not installed
    __version__ = "0+unknown"

__all__ = ["CrossMarginModel", "Scenario", "ScenarioError", "__version__", "presets"]
