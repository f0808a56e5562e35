"""crossmargin's simulation: order books, the margin ledger, the risk engine, shared
pools, and the Mesa model that drives agents through them."""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors see; at run time, __getattr__ below
    from .model import CrossMarginModel
    from .scenario import Scenario, ScenarioError, presets

__all__ = ["CrossMarginModel", "Scenario", "ScenarioError", "presets"]

_HOME = {"CrossMarginModel": ".model", "Scenario": ".scenario", "ScenarioError": ".scenario",
         "presets": ".scenario"}  # fmt: skip


def __getattr__(name: str) -> Any:
    """The public names imported on first use (PEP 562): the order book, the ledger or
    a scenario can be read without importing Mesa and the whole simulation."""
    if name in _HOME:
        return getattr(import_module(_HOME[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
