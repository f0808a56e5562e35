"""The compiled order path (issue #24) against the Python code it stands for: the market
maker's ladder update (``model/_ladder.pxi``), settlement (``model/_settle.pxi``) and
order entry (``model/_entry.pxi``) leave the same ids, refusals, reservations,
open-order margin and balances (equal floats, not close ones), draw the same random
numbers, and a whole run writes the same tables. (The compiled book itself is held to
the Python book in ``test_orderbook.py``.)"""

from __future__ import annotations

import contextlib
import hashlib
import math
import os
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from crossmargin.model import agents as agents_module
from crossmargin.model import exchange as exchange_module
from crossmargin.model import ledger as ledger_module
from crossmargin.model import orderbook
from hypothesis import example, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.skipif(not orderbook.COMPILED, reason="the compiled book is not built")


@contextlib.contextmanager
def python_paths():
    """``Exchange``, ``Ledger`` and the agents run their Python code (the compiled book
    stays)."""
    modules = (exchange_module, ledger_module, agents_module)
    saved = [mod.COMPILED for mod in modules]
    for mod in modules:
        mod.COMPILED = False
    try:
        yield
    finally:
        for mod, flag in zip(modules, saved, strict=True):
            mod.COMPILED = flag


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


def _ladder_run(ops, cash, pos, band, tiers_hit):
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
                [sorted(r.items()) for r in ex._reserved],
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
    compiled = _ladder_run(ops, cash, pos, band, tiers_hit)
    with python_paths():
        python = _ladder_run(ops, cash, pos, band, tiers_hit)
    assert compiled == python


AWAY = st.integers(-15, 30) | st.integers(500, 3_000)  # crossing, near, or 0.5-3% away
REST = st.tuples(  # an order that rests (or crosses): who, side, ticks from 100,000, lots
    st.just("rest"), st.integers(0, 3), st.sampled_from([1, -1]), AWAY, st.integers(1, 20)
)
TAKE = st.tuples(  # a taker: who, side, lots, a market order (else IOC 4% beyond 100,000)
    st.just("take"), st.integers(0, 3), st.sampled_from([1, -1]), st.integers(1, 60), st.booleans()
)
SETTLE_OPS = st.one_of(
    REST,
    TAKE,
    TAKE,
    st.tuples(st.just("forced"), st.booleans()),  # the risk engine's orders: no taker fee
    st.tuples(st.just("informed"), st.integers(0, 3)),  # its flow counted apart
    st.tuples(st.just("view"), st.integers(0, 3)),  # the order-entry view cached
    st.tuples(st.just("mark"), st.floats(-0.03, 0.03)),
)


def _settle_run(ops, cash, leverage, *, units=None):
    """Play ``ops`` with four accounts (a deep one, cross, isolated, portfolio margin);
    every balance, cache, trade row, flow and reservation after each. With ``units``
    the venue is a spot venue: the deep account holds 10,000 lots, the other three
    ``units`` lots each (a sell needs units; a buy needs cash)."""
    from conftest import BTC, ETH
    from crossmargin.model.exchange import Exchange
    from crossmargin.model.markets import CROSS, ISOLATED, PORTFOLIO
    from crossmargin.model.orderbook import IOC

    spot = units is not None
    ex = Exchange([BTC, ETH], spot=spot)
    ex.marks = np.array([100_000.0, 3_000.0])
    led = ex.ledger
    who = [led.open_account(1e7)]
    for mode in (CROSS, CROSS, CROSS) if spot else (CROSS, ISOLATED, PORTFOLIO):
        who.append(led.open_account(cash, mode=mode, iso_leverage=leverage))
    if spot:
        for k, held in enumerate((10_000, units, units, units)):
            if held:
                ex.deposit_units(who[k], 0, held, 100_000.0)
    for k in range(1, 4):  # the deep account's ladder, 3 lots a level
        ex.limit(who[0], 0, 1, 100_000 - 5 * k, 3)
        ex.limit(who[0], 0, -1, 100_000 + 5 * k, 3)
    trace = []
    for op in ops:
        kind = op[0]
        if kind == "rest":
            _, k, side, away, lots = op
            out = ex.limit(who[k], 0, side, 100_000 - side * away, lots)
        elif kind == "take":
            _, k, side, lots, market = op
            if market:
                out = ex.market_order(who[k], 0, side, lots)
            else:
                out = ex.limit(who[k], 0, side, 100_000 + side * 4_000, lots, tif=IOC)
        elif kind == "forced":
            ex.forced = op[1]
            out = None
        elif kind == "informed":
            ex.informed.add(who[op[1]])
            out = None
        elif kind == "view":
            out = led.margin_state(who[op[1]], ex.marks)[1:]
        else:
            ex.marks = np.array([100_000.0 * (1 + op[1]), 3_000.0])
            out = None
        n = led.n
        trace.append(
            (
                out,
                [getattr(led, a)[:n].tolist() for a in ("cash", "realized", "fees", "deficit")],
                [getattr(led, a)[:, :n].tolist() for a in ("pos", "cost", "iso_margin")],
                list(led.version),
                sorted(led.cached_views().items()),
                list(ex.trade_rows),
                [
                    getattr(ex, a).tolist()
                    for a in ("volume", "lots_traded", "flow", "informed_flow")
                ],
                ex.fee_pool,
                sorted(ex.order_margin.items()),
                [sorted(r.items()) for r in ex._reserved],
                ex.books[0].queues(),
                ex.books[0].last_id,
                led.orders_rejected[:n].tolist(),
            )
        )
    return trace


@settings(max_examples=200, deadline=None)
@given(
    ops=st.lists(SETTLE_OPS, min_size=5, max_size=40),
    cash=st.floats(5.0, 20_000.0),
    leverage=st.floats(1.0, 50.0),
)
@example(  # an isolated long closed 2.5% down at 50x: its loss beyond its margin
    ops=[
        ("take", 2, 1, 9, True),
        ("take", 1, -1, 9, True),
        ("rest", 0, 1, 2_500, 20),
        ("take", 2, -1, 9, False),
    ],
    cash=500.0,
    leverage=50.0,
)
@example(  # a second buy refused for the margin the first one holds while it rests
    ops=[
        ("rest", 1, 1, 10, 10),
        ("rest", 1, 1, 12, 5),
        ("rest", 2, 1, 10, 10),
        ("rest", 2, 1, 12, 5),
    ],
    cash=30.0,
    leverage=50.0,
)
def test_compiled_entry_and_settlement_are_the_python_ones(ops, cash, leverage):
    """Orders that rest, cross or are refused at entry (the open-order margin of those
    resting counted), takers that sweep several of them (the taker's fills settled
    whole or fill by fill), isolated positions closed beyond their margin, forced and
    informed flow, cached order-entry views moved on by fills: the same balances, float
    for float, through the compiled order entry and settlement and the Python ones."""
    compiled = _settle_run(ops, cash, leverage)
    with python_paths():
        python = _settle_run(ops, cash, leverage)
    assert compiled == python


@settings(max_examples=150, deadline=None)
@given(
    ops=st.lists(SETTLE_OPS, min_size=5, max_size=40),
    cash=st.floats(5.0, 20_000.0),
    units=st.integers(0, 30),
)
@example(  # a second buy refused for the cash the first one holds while it rests
    ops=[("rest", 1, 1, 10, 2), ("rest", 1, 1, 12, 2), ("rest", 1, -1, 10, 2)] * 2,
    cash=300.0,
    units=3,
)
def test_compiled_spot_entry_is_the_python_one(ops, cash, units):
    """On a spot venue: buys refused for want of cash (their fills, the rest at the
    limit, the fee, beyond what resting buys hold), sells refused for want of units
    (beyond those resting sells offer), the rest filled and settled: the same balances,
    float for float, through the compiled order entry and the Python one."""
    compiled = _settle_run(ops, cash, 1.0, units=units)
    with python_paths():
        python = _settle_run(ops, cash, 1.0, units=units)
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


MAKER_RULES = st.fixed_dictionaries(
    {
        "capacity": st.sampled_from(["cooldown", "capital"]),
        "take_stale": st.booleans(),
        "reentry": st.sampled_from(["calm", "cooldown"]),
        "levels": st.integers(1, 8),
        "level_gap_bps": st.sampled_from([0.5, 2.0, 5.0, 40.0]),
        "half_spread_bps": st.floats(0.1, 30.0),
        "vol_widen": st.floats(0.0, 50.0),
        "index_weight": st.floats(0.0, 1.0),
        "skew": st.floats(0.0, 3.0),
        "inventory_limit": st.floats(0.001, 1.0),
        "replenish_rate": st.floats(0.0, 1.0),
        "withdraw_vol": st.sampled_from([1e-4, 4e-3]),
        "withdraw_loss": st.sampled_from([1e-4, 0.1]),  # small: its stop-loss fires
        "cooldown": st.integers(1, 30),
    }
)


NOISE_RULES = st.fixed_dictionaries(
    {
        "capital": st.sampled_from([500.0, 50_000.0]),  # small: it leans against inventory
        "activation_rate": st.sampled_from([0.2, 1.0]),
        "limit_share": st.floats(0.0, 1.0),
        "market_share": st.floats(0.0, 1.0),
        "size_usd": st.sampled_from([1.0, 1_000.0, 1e6]),
        "offset_bps": st.floats(0.01, 500.0) | st.sampled_from([0.01, 0.02, 0.05]),  # 1-2 ticks
        "max_orders": st.integers(1, 6),
        "order_band": st.sampled_from([0.05, 5e-4, 5e-5]),  # how far a market order may go
    }
)


def _agents_run(
    name: str, rules: dict, noise: dict, seed: int, *, entrants: dict | None = None
) -> tuple:
    """A short run of a small preset with the makers' rule ``rules``, the noise
    traders' ``noise`` and the liquidity entrants' ``entrants`` (with a −8% index jump
    at step 20 that widens spreads): its tables, every maker's ladder as quoted and
    grid, every entrant's entries, calm steps, cool-downs and volatility gates, and
    every noise trader's resting orders."""
    from crossmargin.model import CrossMarginModel
    from crossmargin.model.agents import LiquidityEntrant, MarketMaker, NoiseTrader
    from helpers import preset

    changes = {f"agents.market_makers.{k}": v for k, v in rules.items()}
    changes |= {f"agents.noise.{k}": v for k, v in noise.items()}
    if "agents.noise.order_band" in changes:  # the venue's, drawn with the noise traders
        changes["order_band"] = changes.pop("agents.noise.order_band")
    if entrants:
        changes |= {f"agents.entrants.{k}": v for k, v in entrants.items()}
        changes["shocks"] = [{"kind": "index_jump", "step": 20, "size": -0.08, "duration": 2}]
    sc = preset(name, steps=60, traders=40).replace(seed=seed, **changes)
    m = CrossMarginModel(sc)
    m.run_for(60)
    agents = sorted(m.agents, key=lambda a: a.unique_id)
    tables = [m.model_frame(), *(v.exchange.trades_frame() for v in m.world.venues)]
    return (
        [pd.util.hash_pandas_object(df.reset_index(), index=True).tolist() for df in tables],
        [
            (a.quotes, a._grid, a._grid_price, a.withdrawals)
            for a in agents
            if isinstance(a, MarketMaker)
        ],
        [
            (a.active.tolist(), a.calm_steps.tolist(), a.out_until.tolist(), a.vol_gate.tolist())
            for a in agents
            if isinstance(a, LiquidityEntrant)
        ],
        [a.orders for a in agents if isinstance(a, NoiseTrader)],
    )


# TWIN_EXAMPLES=200 runs a longer search locally; the suite draws 20 runs.
@settings(max_examples=300, deadline=None)
@given(
    xs=st.lists(
        st.one_of(
            st.floats(allow_nan=True, allow_infinity=True),
            st.sampled_from([0.0, -0.0, 1e16, -1e16, 1.0, -1.0, 1e308, -1e308]),
            st.floats(-1e6, 1e6),
        ),
        min_size=1,
        max_size=8,
    )
)
@example(xs=[-0.0])  # the int 0 it starts from turns −0.0 into 0.0
@example(xs=[-0.0, -0.0])
@example(xs=[1e308, 1e308, -1e308])  # an overflow: the compensation is not finite
@example(xs=[1e16, 1.0, -1e16])  # cancellation: the compensation keeps the 1.0
def test_compiled_sum_is_pythons_sum(xs):
    """The margin view's sums (``_sum_of`` of ``model/_settle.pxi``, read on the ledger's
    doubles) are Python's ``sum`` of the same floats to the bit, NaN and the sign of zero
    included: CPython 3.12's compensated sum, started from the int 0."""
    from crossmargin.model._book import python_sum

    assert _same_bits(python_sum(xs), sum(xs))


def _same_bits(a: float, b: float) -> bool:
    """The same double, or both NaN (of any payload)."""
    return np.array([a]).tobytes() == np.array([b]).tobytes() or (a != a and b != b)


_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e16, -1e16, 1.0, -1.0, 1e308, -1e308, 1.05, 1.1]),
    st.floats(-1e6, 1e6),
)


@settings(max_examples=300, deadline=None)
@given(xs=st.lists(_FLOATS, max_size=300), scale=st.sampled_from([1, 40, 700]))
@example(xs=[-0.0], scale=1)  # the identity 0.0 it starts from turns −0.0 into 0.0
@example(xs=[-0.0] * 9, scale=1)  # eight running sums of −0.0
@example(xs=[1e308, 1e308, -1e308], scale=1)
def test_compiled_sum_is_numpys_sum(xs, scale):
    """The record's sums (``_np_sum`` of ``model/_record.pxi``) are numpy's sum of a
    float64 array to the bit, NaN and the sign of zero included: the pairwise sum below
    8, up to 128 and beyond (the list repeated ``scale`` times, up to 210,000 floats)."""
    from crossmargin.model._book import numpy_sum

    x = np.array(xs * scale, dtype=np.float64)
    with np.errstate(all="ignore"):  # overflow and inf − inf, as given
        want = float(x.sum())
    assert _same_bits(numpy_sum(x), want)


@settings(max_examples=300, deadline=None)
@given(
    rows=st.lists(st.tuples(_FLOATS, _FLOATS, _FLOATS, _FLOATS), max_size=200),
    cut=st.integers(-2, 2),
    gross_zero=st.floats(0, 1),
)
def test_compiled_account_totals_are_the_python_twins(rows, cut, gross_zero):
    """``account_totals`` compiled (one pass, numpy's pairwise sums) gives the Python
    twin's numbers to the bit on any accounts: NaN, infinite and signed-zero equity,
    margin, ratio and gross notional, accounts without positions (gross 0), and a
    ledger count ``n`` below or above the valuation's length."""
    from types import SimpleNamespace

    from crossmargin.model import collect
    from crossmargin.model._book import account_totals

    a = np.array(rows, dtype=np.float64).reshape(-1, 4)
    gross = np.abs(a[:, 0])
    gross[: int(len(gross) * gross_zero)] = 0.0  # a share of the accounts hold nothing
    val = SimpleNamespace(gross=gross, equity=a[:, 1], mm=a[:, 2], ratio=a[:, 3])
    n = max(len(a) + cut, 0)
    with np.errstate(all="ignore"):  # overflow and inf − inf, as given
        mine, theirs = account_totals(val, n), collect.account_totals(val, n)
    assert _same_bits(mine[0], theirs[0])
    assert mine[1:3] == theirs[1:3]
    assert mine[3].tobytes() == theirs[3].tobytes()
    with pytest.raises(ValueError, match="n must be"):  # numpy would count from the end
        account_totals(val, -1)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(st.lists(_FLOATS, min_size=3, max_size=3), max_size=150),
    scale=st.sampled_from([1, 90, 3000]),
    spare=st.integers(0, 5),
)
@example(rows=[[-0.0, 0.0, -1.0]], scale=1, spare=0)  # no long: −0.0 + 0.0 is 0.0
def test_compiled_open_interest_is_the_python_twins(rows, scale, spare):
    """``Ledger.open_interest`` compiled (no temporary array) is the Python twin's to
    the bit: any positions, the sign of zero and NaN included, a ledger with spare
    capacity beyond its accounts, up to 450,000 accounts."""
    from crossmargin.model import ledger as ledger_module
    from crossmargin.model._book import ledger_open_interest
    from crossmargin.model.ledger import Ledger
    from crossmargin.model.markets import Market

    led = Ledger([Market(name, 0.1, 0.001) for name in ("A", "B", "C")])
    pos = np.array(rows * scale, dtype=np.float64).reshape(-1, 3).T
    led.pos = np.zeros((3, pos.shape[1] + spare))
    led.pos[:, : pos.shape[1]] = pos
    led.pos[:, pos.shape[1] :] = 1.0  # capacity beyond the accounts: never counted
    led.n = pos.shape[1]
    mine = ledger_open_interest(led)
    with pytest.MonkeyPatch.context() as mp, np.errstate(all="ignore"):  # overflow, as given
        mp.setattr(ledger_module, "COMPILED", False)  # the Python twin
        theirs = led.open_interest()
    assert mine.tobytes() == theirs.tobytes()


@settings(max_examples=int(os.environ.get("TWIN_EXAMPLES", 20)), deadline=None)
@given(
    name=st.sampled_from(["baseline", "multivenue"]),
    rules=MAKER_RULES,
    noise=NOISE_RULES | st.just({}),
    seed=st.integers(0, 2**16),
)
@example(  # a spread so wide, skewed so far, that the reference goes below zero
    name="baseline",
    rules={
        "capacity": "capital",
        "take_stale": True,
        "reentry": "calm",
        "levels": 2,
        "level_gap_bps": 0.5,
        "half_spread_bps": 0.25,
        "vol_widen": 46.0456933449927,
        "index_weight": 0.0,
        "skew": 2.0489881131052825,
        "inventory_limit": 0.09074070422515253,
        "replenish_rate": 0.10051526370016586,
        "withdraw_vol": 0.0001,
    },
    noise={},
    seed=9888,
)
@example(  # market orders only, against a band so tight that its limit binds
    name="baseline",
    rules={
        "capacity": "cooldown",
        "take_stale": False,
        "reentry": "calm",
        "levels": 2,
        "level_gap_bps": 0.5,
        "half_spread_bps": 1.0,
        "vol_widen": 0.0,
        "index_weight": 0.25,
        "skew": 0.0,
        "inventory_limit": 1.0,
        "replenish_rate": 0.0,
        "withdraw_vol": 0.0001,
    },
    noise={
        "capital": 500.0,
        "activation_rate": 0.2,
        "limit_share": 0.0,
        "market_share": 1.0,
        "size_usd": 1000.0,
        "offset_bps": 1.0,
        "max_orders": 1,
        "order_band": 5e-05,
    },
    seed=4,
)
def test_compiled_agents_are_the_python_agents(name, rules, noise, seed):
    """The makers' quoting rule and the noise traders' turns compiled (``maker_quote``,
    ``ladder_post_spot``, ``noise_execute``) and in Python (``MarketMaker._quote_rule``,
    ``Exchange._requote_spot``, ``NoiseTrader._execute_rule``): the same ladders, grids,
    resting orders, trades and model table, on perp and spot venues, for any rule a
    scenario can set (capacity from capital or cool-downs, taking stale quotes, one to
    eight levels, narrow or wide grids and spreads, any skew, replenishment and
    inventory limit; any mix of limit, market and cancel turns, sizes from one dollar
    to a million, offsets, order caps, and capital small enough to lean against).
    The explicit example once crashed both: a maker skewed below a zero price sent
    orders at non-positive prices; it now quotes positive prices only."""
    compiled = _agents_run(name, rules, noise, seed)
    with python_paths():
        python = _agents_run(name, rules, noise, seed)
    assert compiled == python


ENTRANT_RULES = st.fixed_dictionaries(
    {
        "count": st.integers(1, 4),
        "capacity": st.sampled_from(["cooldown", "capital"]),
        "take_stale": st.booleans(),
        "reentry": st.sampled_from(["calm", "cooldown"]),
        "entry_spread_bps": st.sampled_from([0.5, 3.0, 8.0, 40.0]),
        "entry_funding": st.none() | st.sampled_from([1e-6, 1e-4]),
        "exit_spread_bps": st.sampled_from([0.5, 4.0, 20.0]),
        "min_stay": st.integers(1, 20),
        "withdraw_vol": st.sampled_from([1e-4, 4e-3]),
        "withdraw_loss": st.sampled_from([1e-4, 0.1]),  # small: its stop-loss fires
        "cooldown": st.integers(1, 30),
        "vol_source": st.sampled_from(["mark", "index"]),
        "replenish_rate": st.floats(0.0, 1.0),
    }
)


@settings(max_examples=int(os.environ.get("TWIN_EXAMPLES", 20)), deadline=None)
@given(
    name=st.sampled_from(["baseline", "multivenue"]),
    entrants=ENTRANT_RULES,
    seed=st.integers(0, 2**16),
)
@example(  # every entrant in at once and out after a step of calm: both ways, often
    name="baseline",
    entrants={
        "count": 3,
        "capacity": "cooldown",
        "take_stale": True,
        "reentry": "cooldown",
        "entry_spread_bps": 0.5,
        "entry_funding": 1e-6,
        "exit_spread_bps": 20.0,
        "min_stay": 1,
        "withdraw_vol": 4e-3,
        "withdraw_loss": 0.1,
        "cooldown": 3,
        "vol_source": "mark",
        "replenish_rate": 0.5,
    },
    seed=5,
)
def test_compiled_entrants_are_the_python_entrants(name, entrants, seed):
    """A liquidity entrant's activation compiled (``entrant_act``) and in Python
    (``LiquidityEntrant._entry_rule``): the same entries and exits, calm steps,
    cool-downs, volatility gates, ladders, trades and model table, on perp and spot
    venues, for any entry and exit spreads, funding threshold, stay, re-entry rule,
    stop-loss, volatility source and capacity."""
    compiled = _agents_run(name, {}, {}, seed, entrants=entrants)
    with python_paths():
        python = _agents_run(name, {}, {}, seed, entrants=entrants)
    assert compiled == python


@pytest.fixture(scope="module")
def early_baseline():
    """A baseline model three steps in, shared by the decision tests (each restores
    what it set)."""
    from crossmargin.model import CrossMarginModel, Scenario

    model = CrossMarginModel(Scenario.preset("baseline"))
    model.run_for(3)
    return model


def _of_type(model, cls) -> list:
    return [a for a in model.agents if type(a) is cls]


def _both_plans(agents, rule, twin, cfg, venue_attrs, equity, gross, pos) -> tuple:
    """The plans of ``rule`` (a Python decision rule) and ``twin`` (its compiled twin)
    for ``agents`` from the same draws, after setting their config to ``cfg``, the
    venue's attributes ``venue_attrs``, and their equity, gross notional and position
    (one per agent, in every market); everything is restored after. Checks the draws
    and that the twin's plan holds plain bools and ints, as numpy's ``tolist``."""
    venue = agents[0].venue
    led, val = venue.exchange.ledger, venue.val
    accounts = [a.account for a in agents]
    saved = [a.cfg for a in agents]
    old_attrs = {name: getattr(venue, name) for name in venue_attrs}
    old = (val.equity.copy(), val.gross.copy(), led.pos.copy())
    try:
        for a in agents:
            a.cfg = cfg
        for name, value in venue_attrs.items():
            setattr(venue, name, value)
        val.equity[accounts] = equity
        val.gross[accounts] = gross
        led.pos[:, accounts] = np.array(pos, dtype=float)[None, :]
        draws = venue.rng.bit_generator
        state = draws.state
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's cast of a NaN
            want = rule(venue, agents)
            after, draws.state = draws.state, state
            got = twin(venue, agents)
        assert draws.state == after  # the same draws
    finally:
        for a, c in zip(agents, saved, strict=True):
            a.cfg = c
        for name, value in old_attrs.items():
            setattr(venue, name, value)
        val.equity[:], val.gross[:], led.pos[:] = old
    assert [type(x) for x in got[0]] == [bool] * len(agents)
    assert {type(x) for row in got[1:] for x in row} <= {int}
    return want, got


PRICES = st.one_of(
    st.floats(1e-6, 1e12),
    st.sampled_from([math.nan, 0.5, 1.0, 100.0, 30_000.0]),
)


@settings(max_examples=200, deadline=None)
@given(
    k=st.integers(1, 12),
    mids=st.lists(PRICES, min_size=4, max_size=4),
    anchors=st.lists(st.floats(1e-6, 1e12), min_size=4, max_size=4),
    equity=st.lists(st.floats(-1e9, 1e9), min_size=12, max_size=12),
    gross=st.lists(st.floats(0.0, 1e10), min_size=12, max_size=12),
    pos=st.lists(st.integers(-(10**6), 10**6), min_size=12, max_size=12),
    threshold=st.one_of(st.floats(0.0, 500.0), st.sampled_from([0.0, 0.5, 1.0, 1, 25])),
    size_usd=st.floats(0.0, 1e18),
    leverage=st.floats(0.0, 100.0),
)
@example(  # sizes beyond any int64 and a gap at the threshold: the casts' edges
    k=4,
    mids=[2.0, math.nan, 1e12, 1e-6],
    anchors=[1.0, 1.0, 1e-6, 1e12],
    equity=[1e9] * 12,
    gross=[0.0] * 12,
    pos=[0] * 12,
    threshold=1e4,
    size_usd=1e18,
    leverage=100.0,
)
def test_compiled_fundamentalists_decide_as_the_python_rule(
    early_baseline, k, mids, anchors, equity, gross, pos, threshold, size_usd, leverage
):
    """``fundamentalist_decide`` and ``Fundamentalist._decide_rule`` make the same plan
    (act, market, side, lots, limit) from the same draw, for any mids (none: NaN),
    anchors, equity (negative too), gross notional, positions (reducing or adding),
    threshold, size and leverage cap, sizes past any int64 included."""
    from crossmargin.model._book import fundamentalist_decide
    from crossmargin.model.agents import Fundamentalist

    agents = _of_type(early_baseline, Fundamentalist)[:k]
    cfg = agents[0].cfg.model_copy(
        update={"threshold_bps": threshold, "size_usd": size_usd, "max_leverage": leverage}
    )
    venue_attrs = {"mid": np.array(mids), "anchor": np.array(anchors)}
    want, got = _both_plans(
        agents,
        Fundamentalist._decide_rule,
        fundamentalist_decide,
        cfg,
        venue_attrs,
        equity[:k],
        gross[:k],
        pos[:k],
    )
    assert got == want


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
        "import sys; sys.path.insert(0, sys.argv[1]); from test_compiled import _digest; "
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


@pytest.mark.parametrize("name", ["baseline", "multivenue"])
def test_the_order_paths_records_are_left_out_of_the_cyclic_gc_from_the_start(name):
    """The compiled order path makes its records untracked by the cyclic GC: margin
    views (and their keys and tuples), reservations, trade rows and a noise trader's
    orders hold only numbers, so no young collection need walk them (at a million
    traders they were nine in ten of the objects each one walked; issue #24). Checked
    with the GC switched off, so that none of them was untracked by a collection; in the
    world of venues for the spot venue's reservations."""
    import gc

    from crossmargin.model import CrossMarginModel, Scenario
    from crossmargin.model.agents import NoiseTrader

    def untracked(x) -> bool:
        return not gc.is_tracked(x) and all(untracked(y) for y in x if type(y) is tuple)

    m = CrossMarginModel(Scenario.preset(name))
    was = gc.isenabled()
    gc.disable()
    try:
        m.run_for(40)
        venue = m.world.venues[0]  # a perp venue
        ex = venue.exchange
        reservations = {
            v.kind: [r for book in v.exchange._reserved for r in book.values()]
            for v in m.world.venues
        }
        orders = [o for a in m.agents if type(a) is NoiseTrader for o in a.orders]
        first = len(ex.trade_rows)
        taker = next(a for a in m.agents if type(a) is NoiseTrader and a.venue is venue).account
        assert ex.market_order(taker, 0, 1, 3) == 3  # takes three lots of the makers' asks
        rows = ex.trade_rows[first:]
        views = list(ex.ledger.cached_views().values())  # the taker's, moved on by the fills
        views.append(ex.ledger.margin_state(ex.insurance.account, ex._marks))  # fresh
        for kind, records in [
            ("views", views),
            *((f"{kind} reservations", rs) for kind, rs in reservations.items()),
            ("orders", orders),
            ("trade rows", rows),
        ]:
            assert records, kind
            assert all(untracked(r) for r in records), kind
    finally:
        if was:
            gc.enable()


def test_the_held_arrays_follow_the_ledger_through_growth_and_copies():
    """The compiled settlement keeps the ledger's arrays open between calls
    (``_settle.pxi``'s ``_Arrays``): a fill after the ledger has grown its arrays lands
    in the new ones, and a deep copy or a pickle of the ledger trades on its own arrays,
    never on the original's."""
    import copy
    import pickle

    from conftest import BTC
    from crossmargin.model import _book

    led = ledger_module.Ledger([BTC], capacity=2)
    a = led.open_account(1e6)
    _book.ledger_trade(led, a, 0, 5, 50_000.0)
    held = led._arrays
    assert held is not None
    for _ in range(5):  # capacity 2 -> 8: every array replaced
        led.open_account(1e6)
    b = led.n - 1
    _book.ledger_trade(led, b, 0, -3, 50_000.0)
    _book.ledger_trade(led, a, 0, 2, 50_000.0)
    assert led._arrays is not held
    assert led.pos[0, a] == 7 and led.pos[0, b] == -3
    for twin in (copy.deepcopy(led), pickle.loads(pickle.dumps(led))):
        assert twin._arrays is None
        _book.ledger_trade(twin, a, 0, 1, 50_000.0)
        assert twin.pos[0, a] == 8 and led.pos[0, a] == 7
        assert twin.cost[0, a] != led.cost[0, a]


def test_the_compiled_files_follow_the_python_twins():
    """Every Python function the compiled order path follows is the code it was written
    from (``_book.TWINS``): a change to one needs its compiled twin changed too."""
    from crossmargin.model import _book, twins

    now = twins.digests()
    changed = sorted(k for k in now if _book.TWINS.get(k) != now[k])
    assert not changed, (
        f"changed: {changed}; change their compiled twins in model/_*.pxi, run this file's "
        f"twin tests, then set those entries of TWINS in model/_book.pyx to "
        f"{ {k: now[k] for k in changed} }"
    )
    assert set(_book.TWINS) == set(now)


def test_a_changed_twin_runs_in_python(monkeypatch):
    """A researcher's edit of a twin (here ``MarketMaker._quote_rule``, as its hash would
    show) is not silently ignored: the process warns, names it, and runs the Python code;
    provenance says so. A subclass that overrides a method the compiled rule follows runs
    its own code."""
    from crossmargin.model import twins
    from crossmargin.model.agents import (
        _MAKER_RULE,
        LiquidityEntrant,
        MarketMaker,
        _keeps,
    )

    for mod in (exchange_module, ledger_module, agents_module):
        monkeypatch.setattr(mod, "COMPILED", mod.COMPILED)  # restored after the test
    edited = twins.digests() | {"MarketMaker._quote_rule": "0" * 12}
    monkeypatch.setattr(twins, "digests", lambda: edited)
    with pytest.warns(UserWarning, match=r"MarketMaker\._quote_rule"):
        assert twins.check.__wrapped__() is False
    assert not (exchange_module.COMPILED or ledger_module.COMPILED or agents_module.COMPILED)

    class Cautious(MarketMaker):
        def _quote_rule(self, m, view):  # a researcher's own rule
            return None

    assert not _keeps(Cautious, MarketMaker, _MAKER_RULE)
    assert _keeps(LiquidityEntrant, MarketMaker, _MAKER_RULE)


def test_a_subclass_rule_runs_its_own_code():
    """A maker class that overrides the ladder's diff runs its Python rule with its own
    diff, not the compiled one, even while the compiled path is on for everyone else."""
    from crossmargin.model import CrossMarginModel, Scenario
    from crossmargin.model.agents import _MAKER_RULE, MarketMaker, _keeps

    calls = []

    class Counting(MarketMaker):
        def _diff(self, quotes, want, book):
            calls.append(len(want))
            return super()._diff(quotes, want, book)

    model = CrossMarginModel(Scenario.preset("baseline"))
    model.run_for(2)
    maker = next(a for a in model.agents if type(a) is MarketMaker)
    maker.__class__ = Counting
    maker._compiled = _keeps(Counting, MarketMaker, _MAKER_RULE)
    maker.act()
    assert not maker._compiled and calls


@settings(max_examples=200, deadline=None)
@given(
    k=st.integers(1, 12),
    marks=st.lists(PRICES, min_size=4, max_size=4),
    past=st.lists(PRICES, min_size=4, max_size=4),
    equity=st.lists(st.floats(-1e9, 1e9), min_size=12, max_size=12),
    gross=st.lists(st.floats(0.0, 1e10), min_size=12, max_size=12),
    pos=st.lists(st.integers(-(10**6), 10**6), min_size=12, max_size=12),
    threshold=st.one_of(st.floats(0.0, 0.5), st.sampled_from([0.0, 0.01, 1])),
    size_usd=st.floats(0.0, 1e18),
    leverage=st.floats(0.0, 100.0),
)
@example(  # sizes beyond any int64, a flat market, a missing mark
    k=4,
    marks=[1.0, 2.0, math.nan, 1e-6],
    past=[1.0, 1.0, 1.0, 1e12],
    equity=[1e9] * 12,
    gross=[0.0] * 12,
    pos=[0] * 12,
    threshold=0.0,
    size_usd=1e18,
    leverage=100.0,
)
def test_compiled_momentum_traders_decide_as_the_python_rule(
    early_baseline, k, marks, past, equity, gross, pos, threshold, size_usd, leverage
):
    """``momentum_decide`` and ``MomentumTrader._decide_rule`` make the same plan (act,
    market, side, lots) from the same draw, for any marks and past marks (NaN too),
    equity, gross notional, positions, threshold, size and leverage cap."""
    from crossmargin.model._book import momentum_decide
    from crossmargin.model.agents import MomentumTrader

    agents = _of_type(early_baseline, MomentumTrader)[:k]
    cfg = agents[0].cfg.model_copy(
        update={"threshold": threshold, "size_usd": size_usd, "max_leverage": leverage}
    )
    venue_attrs = {"mark": np.array(marks), "mark_hist": [np.array(past)]}
    want, got = _both_plans(
        agents,
        MomentumTrader._decide_rule,
        momentum_decide,
        cfg,
        venue_attrs,
        equity[:k],
        gross[:k],
        pos[:k],
    )
    assert got == want


def _leveraged_state(venue):
    """What a leveraged decision may write, as plain values."""
    st, led = venue.leveraged, venue.exchange.ledger
    arrays = (st.last_active, st.reserve, st.borrowed, led.cash, led.iso_margin)
    return [a.tobytes() for a in arrays] + [led.deposits, list(led.version), venue.model.top_ups]


@settings(max_examples=200, deadline=None)
@given(
    k=st.integers(1, 12),
    equity=st.lists(st.floats(-1e7, 1e7), min_size=12, max_size=12),
    mm=st.lists(st.floats(0.0, 1e6), min_size=12, max_size=12),
    gross=st.lists(st.floats(0.0, 1e9), min_size=12, max_size=12),
    target=st.lists(st.floats(0.1, 100.0), min_size=12, max_size=12),
    weights=st.lists(st.floats(-1.0, 1.0) | st.just(0.0), min_size=48, max_size=48),
    pos=st.lists(st.integers(-(10**7), 10**7), min_size=48, max_size=48),
    marks=st.lists(st.floats(1e-6, 1e12), min_size=4, max_size=4),
    borrowed=st.lists(st.sampled_from([0.0, 0.0, 0.0, 5.0]), min_size=12, max_size=12),
    call_ratio=st.sampled_from([0.0, 1.0, 1.5]),
    band=st.floats(0.0, 1.0),
)
@example(  # wants past any int64: the cast's edge
    k=2,
    equity=[1e7] * 12,
    mm=[0.0] * 12,
    gross=[0.0] * 12,
    target=[100.0] * 12,
    weights=[1.0] * 48,
    pos=[0] * 48,
    marks=[1e-6] * 4,
    borrowed=[0.0] * 12,
    call_ratio=0.0,
    band=0.0,
)
@example(  # leverage on its target, no band: it stays (the band's edge is strict)
    k=1,
    equity=[100.0] * 12,
    mm=[1.0] * 12,
    gross=[200.0] * 12,
    target=[2.0] * 12,
    weights=[1.0] * 48,
    pos=[0] * 48,
    marks=[1.0] * 4,
    borrowed=[0.0] * 12,
    call_ratio=1.0,
    band=0.0,
)
@example(  # w × g / price and w × (g / price) truncate to different lots here
    k=1,
    equity=[238102.0] * 12,
    mm=[1.0] * 12,
    gross=[0.0] * 12,
    target=[42.0] * 12,
    weights=[-0.597] * 48,
    pos=[0] * 48,
    marks=[31.96] * 4,
    borrowed=[0.0] * 12,
    call_ratio=1.0,
    band=0.0,
)
def test_compiled_leveraged_traders_decide_as_the_python_rule(
    early_baseline,
    k,
    equity,
    mm,
    gross,
    target,
    weights,
    pos,
    marks,
    borrowed,
    call_ratio,
    band,
):
    """``leveraged_decide`` and ``LeveragedTrader._decide_rule`` make the same plan
    (action, lots per market) and write the same state (activity stamps, reserves,
    borrowing, cash, isolated margin, deposits, versions, top-ups), for any equity (at
    or below zero too), maintenance margin, gross notional, target leverage, weights,
    positions, marks, band, and with interest owed or margin calls (where the twin runs
    the Python rule)."""
    from crossmargin.model._book import leveraged_decide
    from crossmargin.model.agents import LeveragedTrader

    agents = _of_type(early_baseline, LeveragedTrader)[:k]
    venue = agents[0].venue
    st_, led, val = venue.leveraged, venue.exchange.ledger, venue.val
    cfg = agents[0].cfg.model_copy(update={"call_ratio": call_ratio, "rebalance_band": band})
    saved = [a.cfg for a in agents]
    rows = [a.row for a in agents]
    accounts = [a.account for a in agents]
    arrays = (
        val.equity,
        val.mm,
        val.gross,
        st_.target_leverage,
        st_.weights,
        st_.borrowed,
        st_.last_active,
        st_.reserve,
        led.pos,
        led.cash,
        led.iso_margin,
    )
    old = [a.copy() for a in arrays]
    old_scalars = (venue.mark, led.deposits, list(led.version), venue.model.top_ups)
    try:
        for a in agents:
            a.cfg = cfg
        val.equity[accounts] = equity[:k]
        val.mm[accounts] = mm[:k]
        val.gross[accounts] = gross[:k]
        st_.target_leverage[rows] = target[:k]
        st_.weights[:, rows] = np.array(weights).reshape(4, 12)[:, :k]
        st_.borrowed[rows] = borrowed[:k]
        led.pos[:, accounts] = np.array(pos, dtype=float).reshape(4, 12)[:, :k]
        venue.mark = np.array(marks)
        start = [a.copy() for a in arrays], led.deposits, list(led.version), venue.model.top_ups
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # numpy's cast of a huge want
            want = LeveragedTrader._decide_rule(venue, agents), _leveraged_state(venue)
            for a, b in zip(arrays, start[0], strict=True):
                a[...] = b
            led.deposits, led.version[:], venue.model.top_ups = start[1], start[2], start[3]
            got = leveraged_decide(venue, agents), _leveraged_state(venue)
    finally:
        for a, c in zip(agents, saved, strict=True):
            a.cfg = c
        for a, b in zip(arrays, old, strict=True):
            a[...] = b
        venue.mark, led.deposits, led.version[:], venue.model.top_ups = old_scalars
    assert got == want
    for plan in (want[0], got[0]):  # the rows that do not rebalance share one list
        assert len({id(d) for a, d in zip(*plan, strict=True) if a != 2}) <= 1


def test_a_noise_plan_is_one_float_row_per_trader(early_baseline):
    """``NoiseTrader.decide`` gives one C-contiguous float row of six draws per trader,
    which both turns read; the compiled turn refuses a plan of another shape or type
    and a row out of range, and writes nothing then."""
    from crossmargin.model._book import noise_execute
    from crossmargin.model.agents import NoiseTrader

    agents = _of_type(early_baseline, NoiseTrader)[:5]
    venue = agents[0].venue
    state = venue.rng.bit_generator.state
    try:
        plan = NoiseTrader.decide(venue, agents)
    finally:
        venue.rng.bit_generator.state = state
    assert plan.shape == (5, 6) and plan.dtype == np.float64 and plan.flags.c_contiguous
    assert set(plan[:, 1]) <= set(range(len(venue.exchange.markets)))
    orders = list(agents[0].orders)
    for bad in (plan[:, :5].copy(), plan.astype(np.float32), plan.T, plan.tolist()):
        with pytest.raises((TypeError, BufferError, ValueError)):
            noise_execute(agents[0], bad, 0)
    for r in (-1, 5):
        with pytest.raises(IndexError, match="plan row"):
            noise_execute(agents[0], plan, r)
    assert agents[0].orders == orders


NOTIONALS = st.one_of(
    st.floats(0.0, 1e8),
    st.sampled_from([0.0, 50_000.0, 100_000.0, 250_000.0, 500_000.0, 1e6, 5e6, math.inf]),
    st.floats(allow_nan=True, allow_infinity=True),
)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 8),
    absnot=st.lists(NOTIONALS, min_size=32, max_size=32),
    mm=st.lists(st.floats(-1e9, 1e9), min_size=8, max_size=8),
    im=st.lists(st.floats(-1e9, 1e9), min_size=8, max_size=8),
    strided=st.booleans(),
)
@example(  # on the first cap, margin −0.0: a correction of 0.0 would turn it to 0.0
    n=1, absnot=[250_000.0] + [0.0] * 31, mm=[-0.0] * 8, im=[-0.0] * 8, strided=False
)
@example(  # (mm + x·Δrate) − amount and mm + (x·Δrate − amount) round apart here
    n=1,
    absnot=[4452715.689399546] + [0.0] * 31,
    mm=[8292.244049818342] * 8,
    im=[0.0] * 8,
    strided=True,
)
def test_compiled_tier_fix_is_the_python_rule(early_baseline, n, absnot, mm, im, strided):
    """``ledger_tier_fix`` and ``Ledger._tier_fix_rule`` correct maintenance and initial
    margin to the same bits (the baseline's four markets with two to four tiers), for
    notionals below, on and above every cap, infinite or NaN, in a strided view of the
    ledger's scratch array (as ``revalue`` passes it) or a plain array."""
    from crossmargin.model._book import ledger_tier_fix

    led = early_baseline.exchange.ledger
    x = np.array(absnot).reshape(4, 8)[:, :n]
    if strided:
        x = np.concatenate([x, np.zeros((4, 3))], axis=1)[:, :n]
    a_mm, a_im = np.array(mm[:n]), np.array(im[:n])
    b_mm, b_im = a_mm.copy(), a_im.copy()
    with np.errstate(all="ignore"):
        led._tier_fix_rule(x, a_mm, a_im)
    ledger_tier_fix(led, x, b_mm, b_im)
    assert (a_mm.tobytes(), a_im.tobytes()) == (b_mm.tobytes(), b_im.tobytes())


def test_a_subclass_decision_runs_its_own_code(early_baseline):
    """A fundamentalist class that overrides its decision rule decides by it, not by the
    compiled twin; one that adds nothing to it keeps the twin."""
    from crossmargin.model.agents import _FUNDAMENTALIST_RULE, Fundamentalist, _keeps_rule

    calls = []

    class Counting(Fundamentalist):
        @classmethod
        def _decide_rule(cls, venue, agents):
            calls.append(len(agents))
            return super()._decide_rule(venue, agents)

    class Plain(Fundamentalist):
        pass

    agents = _of_type(early_baseline, Fundamentalist)[:3]
    Plain.decide(agents[0].venue, agents)
    assert not calls
    Counting.decide(agents[0].venue, agents)
    assert calls == [3]
    assert _keeps_rule(Plain, Fundamentalist, _FUNDAMENTALIST_RULE)
    assert not _keeps_rule(Counting, Fundamentalist, _FUNDAMENTALIST_RULE)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 40),
    turns=st.lists(st.tuples(st.integers(0, 39), st.integers(-1, 5), st.integers(0, 10**6))),
)
def test_the_turns_are_the_python_ones(n, turns):
    """``Turns`` (the step's turns, the next agents prefetched) gives the agents, types
    and rows the Python generator gives, and ``gather`` (a type's members, prefetched)
    the list Python gives; both refuse an actor index out of range as ``actors[i]``
    would."""
    from crossmargin.model import model as model_module
    from crossmargin.model._book import Turns, gather

    actors = [object() for _ in range(n)]
    order, kind, row = (np.array([t[j] for t in turns], dtype=np.int64) for j in range(3))
    if any(i >= n for i in order.tolist()):
        with pytest.raises(IndexError):
            list(Turns(actors, order, kind, row))
        with pytest.raises(IndexError):
            gather(actors, order)
        return
    got = gather(actors, order)
    assert len(got) == len(order)
    assert all(a is b for a, b in zip(got, model_module._python_gather(actors, order), strict=True))
    want = list(model_module._python_turns(actors, order, kind, row))
    got = list(Turns(actors, order, kind, row))
    assert len(got) == len(want)
    assert all(a is b and s == t and r == q for (a, s, r), (b, t, q) in zip(got, want, strict=True))


def _ints_as_ids():
    edges = [0, 1, -1, 2**53, 2**62 - 1, 2**62, -(2**62), -(2**62) + 1, 2**63 - 1, 2**63]
    edges += [-(2**63), -(2**63) - 1, 2**64 + 5, -(2**70), 10**30]
    return st.one_of(
        st.integers(),
        st.integers(-4, 40),
        st.sampled_from(edges),
        st.builds(np.int64, st.integers(-(2**63), 2**63 - 1)),
        st.booleans(),
    )


@settings(max_examples=300, deadline=None)
@given(resting=st.integers(1, 30), probes=st.lists(_ints_as_ids(), max_size=30))
def test_any_int_as_an_order_id_is_read_as_the_python_book_reads_it(resting, probes):
    """An order id of any size (beyond a machine int too, numpy's and bools) names the
    same resting order, or none, in the compiled book as in the Python book: look-up,
    order, cancel and the no-op count agree."""
    books = [orderbook.PyOrderBook(), orderbook.OrderBook()]
    for book in books:
        for k in range(resting):
            book.post(orderbook.BUY if k % 2 else orderbook.SELL, 100 + (k % 7), 1, k)
    py, c = books
    for x in probes:
        assert (x in py) == (x in c), x
        assert py.order(x) == c.order(x), x
        assert py.cancel(x) == c.cancel(x), x
        assert py.noop_cancels == c.noop_cancels, x


def test_an_array_rebound_on_the_ledger_is_followed_while_the_rest_is_kept():
    """The compiled settlement keeps the ledger's arrays open and trusts them while the
    ledger's attributes are unchanged (its instance dict at the same version); an
    array rebound by assignment, not by growth, is the one a fill then lands in."""
    from conftest import BTC
    from crossmargin.model import _book

    led = ledger_module.Ledger([BTC], capacity=4)
    a = led.open_account(1e6)
    _book.ledger_trade(led, a, 0, 5, 50_000.0)
    held = led._arrays
    _book.ledger_trade(led, a, 0, 1, 50_000.0)
    assert led._arrays is held and led.pos[0, a] == 6  # nothing rebound: kept
    old_pos, old_cost = led.pos, led.cost
    led.pos = led.pos.copy()
    led.cost = led.cost.copy()
    _book.ledger_trade(led, a, 0, 2, 50_000.0)
    assert led._arrays is not held
    assert led.pos[0, a] == 8 and old_pos[0, a] == 6
    assert led.cost[0, a] > old_cost[0, a]


def _noise_market_or_limit(trader, cfg, plan):
    """How many resting orders the compiled turn of ``plan``'s row 0 left ``trader``
    with, under ``cfg``."""
    from crossmargin.model._book import noise_execute

    trader.cfg = cfg
    trader.orders.clear()
    noise_execute(trader, plan, 0)
    return len(trader.orders)


def test_a_changed_noise_config_is_read_again():
    """The compiled noise turn keeps the values of a frozen config (pydantic) it has
    read; another config, frozen or not, and a mutable one changed in place, are read
    afresh: the same draws give a market order under one and a resting limit order
    under the other."""
    import types

    from crossmargin.model import CrossMarginModel, Scenario
    from crossmargin.model.agents import NoiseTrader

    model = CrossMarginModel(Scenario.preset("baseline"))
    model.run_for(3)
    trader = _of_type(model, NoiseTrader)[0]
    plan = np.array([[0.5, 0, 0.2, 1.0, 0.5, 0.0]])  # u = 0.5, a buy
    market = trader.cfg.model_copy(update={"market_share": 0.9, "limit_share": 0.05})
    limit = trader.cfg.model_copy(update={"market_share": 0.1, "limit_share": 0.8})
    assert _noise_market_or_limit(trader, market, plan) == 0
    assert _noise_market_or_limit(trader, limit, plan) == 1
    assert _noise_market_or_limit(trader, market, plan) == 0
    loose = types.SimpleNamespace(**market.model_dump())
    assert _noise_market_or_limit(trader, loose, plan) == 0
    loose.market_share, loose.limit_share = 0.1, 0.8
    assert _noise_market_or_limit(trader, loose, plan) == 1


def test_a_changed_maker_config_is_read_again():
    """The compiled maker activation keeps the values of a frozen config it has read;
    another one, or a mutable one changed in place, is read afresh: its ladder then
    stands where the Python rule puts it under the new config."""
    import copy
    import types

    from crossmargin.model import CrossMarginModel, Scenario
    from crossmargin.model._book import maker_act
    from crossmargin.model.agents import MarketMaker

    model = CrossMarginModel(Scenario.preset("baseline"))
    model.run_for(5)

    def ladders(cfg, *, compiled: bool, loose: bool = False) -> list:
        m = copy.deepcopy(model)
        mk = _of_type(m, MarketMaker)[0]
        maker_act(mk)  # the preset's config read and kept
        if loose:
            ns = types.SimpleNamespace(**mk.cfg.model_dump())
            mk.cfg = ns
            maker_act(mk)
            for key, value in cfg.items():
                setattr(ns, key, value)
        else:
            mk.cfg = mk.cfg.model_copy(update=cfg)
        maker_act(mk) if compiled else mk._act_rule()
        return [sorted(q) for q in mk.quotes]

    wide = {"vol_widen": 400.0, "skew": 0.0}
    before = ladders({}, compiled=True)
    assert ladders(wide, compiled=True) == ladders(wide, compiled=False) != before
    assert ladders(wide, compiled=True, loose=True) == ladders(wide, compiled=False)


def test_an_exchange_attribute_set_during_an_activation_is_seen_by_its_next_quotes():
    """The compiled maker keeps what its requotes read of the exchange while the
    exchange's attributes are unchanged; an attribute set in the middle of an
    activation (here by a withdrawal in the second market: a price band that refuses
    every quote) is seen by the quotes that follow, as the Python rule sees it."""
    import copy

    from crossmargin.model import CrossMarginModel, Scenario
    from crossmargin.model._book import maker_act
    from crossmargin.model.agents import MarketMaker

    model = CrossMarginModel(Scenario.preset("baseline"))
    model.run_for(5)

    def quotes(*, compiled: bool) -> list:
        m = copy.deepcopy(model)
        mk = _of_type(m, MarketMaker)[0]
        venue, ex = mk.venue, mk.venue.exchange
        for q in mk.quotes:  # every ladder placed anew
            q.clear()
        venue.vol = np.array([0.0, 1e9, 0.0, 0.0])  # the second market pulls its quotes
        venue.index_vol = venue.vol

        def withdraw(market, until):
            ex.price_band = 1e-12  # any quote away from the mark is refused from now

        mk.withdraw = withdraw
        maker_act(mk) if compiled else mk._act_rule()
        return [sorted(q) for q in mk.quotes]

    got = quotes(compiled=True)
    assert got == quotes(compiled=False)
    # a full ladder first; then none, and at most a level at the mark itself
    assert len(got[0]) >= 8 and not got[1] and len(got[2]) + len(got[3]) <= 2
