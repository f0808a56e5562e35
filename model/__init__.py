"""crossmargin's simulation: order books, the margin ledger, the risk engine, shared
pools, and the Mesa model that drives agents through them."""

from .model import CrossMarginModel
from .scenario import Scenario, ScenarioError, presets

__all__ = ["CrossMarginModel", "Scenario", "ScenarioError", "presets"]
