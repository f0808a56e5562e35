"""Every public function's Examples section runs (as in networkx): the doctests of
every module of the installed package."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import crossmargin
import pytest

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(crossmargin.__path__, prefix="crossmargin.")
    if not m.name.endswith(".app")  # the Solara page is driven in the browser tests
)


@pytest.mark.parametrize("name", MODULES)
def test_doctests(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} doctest(s) failed in {name}"


# Public functions whose example would run for minutes (a validation suite, a
# calibration, a report of a full run, the CLI's entry point, the Solara page) or that
# only the model calls while it builds itself. Every other public function shows how it
# is called in an Examples section that runs above.
WITHOUT_EXAMPLES = {
    "crossmargin.analysis.app": {"base_scenario"},  # and Page, a Solara component
    "crossmargin.analysis.report": {"report", "sobol_indices"},
    "crossmargin.analysis.validation": {"run_validation"},
    "crossmargin.analysis.validation.figures": {"draw"},
    "crossmargin.analysis.validation.suite": {"judge", "run_validation"},
    "crossmargin.experiments.calibration": {"calibrate"},
    "crossmargin.experiments.cli": {"fail", "load_scenario", "main"},
    "crossmargin.experiments.provenance": {"set_command"},
    "crossmargin.model.population": {"build_venue_agents", "build_cross_agents"},
}


@pytest.mark.parametrize("name", [*MODULES, "crossmargin.analysis.app"])
def test_public_functions_have_examples(name):
    """Every function a module names in ``__all__`` has an Examples section (as in
    networkx), except the few above."""
    import inspect

    module = importlib.import_module(name)
    missing = {
        f
        for f in getattr(module, "__all__", [])
        if inspect.isfunction(getattr(module, f, None))
        and ">>>" not in (getattr(module, f).__doc__ or "")
    }
    assert missing == WITHOUT_EXAMPLES.get(name, set())
