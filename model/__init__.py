"""crossmargin's simulation: order books, the margin ledger, the risk engine, shared
pools, and the Mesa model that drives agents through them."""

from model.model import CrossMarginModel
from model.scenario import Scenario, ScenarioError

__all__ = ["CrossMarginModel", "Scenario", "ScenarioError"]
