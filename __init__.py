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

from importlib import import_module
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors see; at run time, __getattr__ below
    from .model import CrossMarginModel, Scenario, ScenarioError, presets

try:
    __version__ = _version("crossmargin")
except PackageNotFoundError:  # pragma: no cover - running from a tree that is not installed
    __version__ = "0+unknown"

__all__ = ["CrossMarginModel", "Scenario", "ScenarioError", "__version__", "presets"]


def __getattr__(name: str) -> Any:
    """The model's names, imported on first use (PEP 562): ``import crossmargin`` and
    the command line's start-up (``crossmargin --help``, a bad argument) do not pay for
    importing Mesa and the simulation until something asks for them."""
    if name in ("CrossMarginModel", "Scenario", "ScenarioError", "presets"):
        return getattr(import_module(".model", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
