"""Shared fixtures: a small two-market exchange with a market maker's ladder."""

from __future__ import annotations

import numpy as np
import pytest
from crossmargin.model.exchange import Exchange
from crossmargin.model.markets import MarginTier, Market
from crossmargin.model.orderbook import BUY, SELL

BTC = Market(
    "BTC", 1.0, 0.001, (MarginTier(100_000, 0.005, 50), MarginTier(float("inf"), 0.01, 20))
)
ETH = Market("ETH", 0.1, 0.01, (MarginTier(float("inf"), 0.01, 25),))


def ladder(
    ex: Exchange,
    account: int,
    m: int,
    mid: float,
    *,
    levels: int = 20,
    qty: int = 50,
    gap: float = 0.001,
) -> None:
    """Rest a symmetric ladder of limit orders around ``mid`` (USD)."""
    mk = ex.markets[m]
    for k in range(1, levels + 1):
        ex.limit(account, m, BUY, mk.to_ticks(mid * (1 - gap * k)), qty)
        ex.limit(account, m, SELL, mk.to_ticks(mid * (1 + gap * k)), qty)


@pytest.fixture
def small_exchange():
    ex = Exchange([BTC, ETH], insurance_fund=5_000.0, vault_capital=200_000.0)
    ex.marks = [100_000.0, 3_000.0]
    ex.index[:] = [100_000.0, 3_000.0]
    maker = ex.ledger.open_account(5_000_000.0)
    ladder(ex, maker, 0, 100_000.0)
    ladder(ex, maker, 1, 3_000.0)
    return ex, maker


def assert_balanced(ex: Exchange) -> None:
    """The books balance to the cent (double entry and from state), every position has
    its counterparty, and the insurance fund is not below zero."""
    assert abs(ex.conservation_error()) < 0.01, ex.conservation_error()
    assert np.all(ex.ledger.pos[:, : ex.ledger.n].sum(axis=1) == 0)
    assert abs(ex.state_error()) < 0.01, ex.state_error()
    assert ex.fund_equity() >= -1e-6


# The slowest tests first (`make test` runs pytest -n 2 --dist worksteal): collected
# last, they started last and left one worker alone on a minutes-long test while the
# other idled. With work stealing the first worker starts on them while the second
# takes the other half of the suite, and a worker that runs dry takes half of the
# other's queue from its end (the quick tests), so the two finish together.
SLOW_FIRST = (
    "tests/test_validation.py::test_validate_quick_end_to_end",
    "tests/test_validation.py::test_committed_measurements_rejudge_to_the_committed_verdicts",
    "docs/notebooks/03_sweep_with_pandas_seaborn.ipynb::03_sweep_with_pandas_seaborn.ipynb",
    "tests/test_validation.py::test_event_score_cards_are_registered_and_run",
    "docs/notebooks/04_one_venue_and_five.ipynb::04_one_venue_and_five.ipynb",
    "tests/test_sweep.py::test_poisoned_run_does_not_abort_the_sweep",
)


def pytest_collection_modifyitems(config, items):
    """Run :data:`SLOW_FIRST` before everything else, in that order (a stable sort)."""
    rank = {nodeid: i for i, nodeid in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid, len(rank)))
