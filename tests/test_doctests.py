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
