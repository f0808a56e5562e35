"""The market maker's ladder update compiled (``model/_ladder.pxi``, issue #24's second
stage) against the Python code it stands for: the same ids, refusals, reservations and
open-order margin (equal floats, not close ones), the same random draws, and the same
model output for a whole run."""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from crossmargin.model import exchange as exchange_module
from crossmargin.model import orderbook
from hypothesis import given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.skipif(not orderbook.COMPILED, reason="the compiled book is not built")


@contextlib.contextmanager
def python_ladder():
    """``Exchange.requote`` runs its Python code (the compiled book stays)."""
    saved = exchange_module.COMPILED
    exchange_module.COMPILED = False
    try:
        yield
    finally:
        exchange_module.COMPILED = saved


OPS = st.one_of(
    # a ladder move: cancel some of the maker's orders, place (side, ticks from 100,000)
    st.tuples(
        st.just("requote"),
        st.integers(0, 6),
        st.lists(st.tuples(st.sampled_from([1, -1]), st.integers(-30, 30)), max_size=8),
        st.integers(1, 9),
        st.integers(1, 9),
    ),
    st.tuples(st.just("take"), st.sampled_from([1, -1]), st.integers(1, 25)),  # fills quotes
    st.tuples(st.just("mark"), st.floats(-0.002, 0.002)),  # a new mark: a new margin view
)


def _run(ops, cash, pos, band, tiers_hit):
    """Play ``ops`` on a fresh exchange; the state after each, as plain values."""
    from conftest import BTC, ETH
    from crossmargin.model.exchange import Exchange

    ex = Exchange([BTC, ETH])
    ex.marks = np.array([100_000.0, 3_000.0])
    ex.price_band = band
    other = ex.ledger.open_account(1e9)
    maker = ex.ledger.open_account(cash)
    if pos:
        ex.ledger.trade(maker, 0, pos, 100_000.0)
        ex.ledger.trade(other, 0, -pos, 100_000.0)
    size = 60 if tiers_hit else 1  # lots of 0.001 BTC: 60 crosses the 100,000 USD tier
    trace = []
    for op in ops:
        if op[0] == "requote":
            _, n_cancel, ladder, qty, sell = op
            mine = sorted(ex._resting.get(maker, {}).get(0, ()))
            quotes = [(side, 100_000 + 5 * k) for side, k in ladder]
            out = ex.requote(maker, 0, mine[:n_cancel], quotes, qty * size, sell_qty=sell * size)
        elif op[0] == "take":
            out = ex.market_order(other, 0, op[1], op[2] * size)
        else:
            ex.marks = np.array([100_000.0 * (1 + op[1]), 3_000.0])
            out = None
        book = ex.books[0]
        trace.append(
            (
                out,
                book.queues(),
                sorted(ex.order_margin.items()),
                sorted(ex._reserved.items()),
                {m: sorted(s) for m, s in ex._resting.get(maker, {}).items()},
                ex.ledger.orders_rejected[: ex.ledger.n].tolist(),
                book.rejected_post_only,
                ex.ledger.cash[: ex.ledger.n].tolist(),
                ex.ledger.pos[:, : ex.ledger.n].tolist(),
            )
        )
    return trace


@settings(max_examples=150, deadline=None)
@given(
    ops=st.lists(OPS, max_size=25),
    cash=st.floats(2.0, 2_000.0),
    pos=st.integers(-40, 40),
    band=st.sampled_from([None, 0.0002]),
    tiers_hit=st.booleans(),
)
def test_compiled_requote_is_the_python_requote(ops, cash, pos, band, tiers_hit):
    """Any sequence of ladder moves, fills against the ladder and new marks leaves the
    same state, float for float, through the compiled ladder and the Python one."""
    compiled = _run(ops, cash, pos, band, tiers_hit)
    with python_ladder():
        python = _run(ops, cash, pos, band, tiers_hit)
    assert compiled == python


@settings(max_examples=150, deadline=None)
@given(
    held=st.dictionaries(st.integers(-40, 40), st.booleans(), max_size=12),
    want=st.lists(st.integers(-40, 40), max_size=12, unique=True),
    refill=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32),
)
def test_compiled_diff_is_the_python_diff(held, want, refill, seed):
    """``ladder_diff`` pops, cancels, places and draws what ``MarketMaker._diff`` does:
    the same lists, the same quotes left, the generator in the same state."""
    from crossmargin.model._book import OrderBook, ladder_diff
    from crossmargin.model.agents import MarketMaker

    def setup():
        book = OrderBook()
        quotes = {}
        for key, rests in held.items():  # a level's order either rests or was filled
            side, price = (1, key) if key > 0 else (-1, 100 - key)
            quotes[key] = book.post(side, max(price, 1), 1, 0)
            if not rests:
                book.cancel(quotes[key])
        return book, quotes

    class Maker:  # the attributes ``_diff`` reads
        def __init__(self):
            self.model = type("M", (), {"rng": np.random.default_rng(seed)})()
            self.cfg = type("C", (), {"replenish_rate": refill})()

    book, quotes = setup()
    rng = np.random.default_rng(seed)
    got = ladder_diff(quotes, list(want), book, rng, refill)
    book2, quotes2 = setup()
    maker = Maker()
    assert got == MarketMaker._diff(maker, quotes2, list(want), book2)
    assert quotes == quotes2 and list(quotes) == list(quotes2)  # the same order too
    assert rng.random() == maker.model.rng.random()


def _digest(name: str, steps: int) -> str:
    from crossmargin.model import CrossMarginModel, Scenario

    m = CrossMarginModel(Scenario.preset(name))
    m.run_for(steps)
    h = hashlib.sha256()
    for df in (m.model_frame(), *(v.exchange.trades_frame() for v in m.world.venues)):
        h.update(pd.util.hash_pandas_object(df.reset_index(), index=True).to_numpy().tobytes())
    return h.hexdigest()


@pytest.mark.parametrize(("name", "steps"), [("baseline", 300), ("multivenue", 120)])
def test_a_run_is_the_same_with_the_python_book_and_ladder(name, steps):
    """A run with the compiled book and ladder and one with ``CROSSMARGIN_PURE_PYTHON=1``
    (the Python book, ``Exchange.requote``'s and ``MarketMaker._diff``'s Python code)
    write the same model table and trades."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1]); from test_ladder import _digest; "
        "from crossmargin.model.orderbook import COMPILED; "
        "print(COMPILED, _digest(sys.argv[2], int(sys.argv[3])))"
    )
    env = dict(os.environ, CROSSMARGIN_PURE_PYTHON="1")
    here = os.path.dirname(__file__)
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code, here, name, str(steps)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    ran, python = out.stdout.split()
    assert ran == "False"  # the Python book and ladder ran there
    assert python == _digest(name, steps)
