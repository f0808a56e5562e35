"""``crossmargin validate``: pre-registered checks of the model against published results.

What is measured, on which settings and seeds, and what counts as a pass is read from
the committed ``criteria.toml`` (:mod:`.criteria`); each check runs
:class:`~crossmargin.model.CrossMarginModel` on many seeds through Dask
(:mod:`.measures`), and every criterion is judged on a seed-bootstrap interval
(:mod:`.stats`). A failing check is reported as failing.
"""

from .criteria import CRITERIA, EVENTS, MULTIVENUE, Criteria, load_criteria
from .suite import CheckResult, CriterionResult, build_jobs, run_validation

__all__ = [
    "CRITERIA",
    "EVENTS",
    "MULTIVENUE",
    "CheckResult",
    "Criteria",
    "CriterionResult",
    "build_jobs",
    "load_criteria",
    "run_validation",
]
