"""Soak search: hundreds of random whole-model runs, the books checked after every step.

``make test`` runs a few derandomized cases of this space
(``test_model.py::test_books_balance_under_random_levers_and_jumps``); this script runs
as many random ones as asked, over every preset and the five-venue world, with every
shock kind, and stops at the first case that breaks an invariant of
``test_model.assert_books`` (the books from state, no unbooked negative balance, no
isolated wallet below zero, no pool in the client waterfall) or that warns (a
``RuntimeWarning`` from numpy is an error here), printing the smallest such case
hypothesis finds. A combination the scenario refuses (a depeg without collateral) and a
run whose index leaves what its books can quote
(:class:`~crossmargin.model.index.PriceRangeError`) count as refused, by design.

Run: ``.venv/bin/python tests/soak.py [--examples 300] [--world]``. On this project's
machine (one core each, two searches side by side) 1,500 single-venue cases took about
10 minutes and 150 cases of the world about 10 minutes.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from crossmargin.model import CrossMarginModel
from crossmargin.model.index import PriceRangeError
from crossmargin.model.scenario import ScenarioError
from helpers import PRESETS, preset
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import LEVERS, WORLD_LEVERS, shocks, world_shocks
from test_model import assert_books

VENUES = ["binance_spot", "okx_spot", "kraken_spot", "binance", "hyperliquid"]
PERPS = ["binance", "hyperliquid"]
MARKETS = ["BTC", "ETH", "SOL", "ALT"]
SINGLE = [p for p in PRESETS if p not in ("multivenue", "dashboard")]
STEPS = 70


def run_case(name: str, changes: dict, *, refused: list) -> None:
    """One run of preset ``name`` with ``changes``, the books checked after every step."""
    try:
        sc = preset(name, steps=STEPS, traders=50).replace(**changes)
    except ScenarioError:  # a combination the scenario refuses (a depeg without collateral)
        refused.append("input")
        return
    m = CrossMarginModel(sc)
    try:
        for _ in range(sc.steps):
            m.run_for(1)
            assert_books(m)
    except PriceRangeError:
        refused.append("range")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=300)
    ap.add_argument("--world", action="store_true", help="search the five-venue world")
    args = ap.parse_args(argv)
    warnings.simplefilter("error", RuntimeWarning)
    refused: list[str] = []
    runs = settings(
        max_examples=args.examples, deadline=None, suppress_health_check=list(HealthCheck)
    )
    if args.world:

        @runs
        @given(WORLD_LEVERS, world_shocks(VENUES, PERPS, MARKETS), st.integers(0, 10**6))
        def search(levers, kicks, seed):
            run_case("multivenue", {"shocks": kicks, "seed": seed, **levers}, refused=refused)

    else:

        @runs
        @given(st.sampled_from(SINGLE), LEVERS, shocks(), st.integers(0, 10**6))
        def search(name, levers, kicks, seed):
            run_case(name, {"shocks": kicks, "seed": seed, **levers}, refused=refused)

    search()
    n_input, n_range = refused.count("input"), refused.count("range")
    print(
        f"{args.examples} cases passed: {n_input} refused as input, "
        f"{n_range} stopped by PriceRangeError"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
