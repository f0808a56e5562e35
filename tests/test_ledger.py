"""Ledger: settlement arithmetic, margin modes, tiers, vectorized = scalar valuation."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BTC, ETH, assert_balanced
from crossmargin.model.ledger import Ledger
from crossmargin.model.markets import CROSS, ISOLATED, PORTFOLIO, Collateral, MarginTier, Market
from hypothesis import given, settings
from hypothesis import strategies as st


def test_trade_open_close_flip_realizes_pnl():
    led = Ledger([BTC])
    a = led.open_account(10_000.0)
    led.trade(a, 0, 10, 100_000.0)  # long 0.01 BTC at 100k
    assert led.pos[0, a] == 10 and led.cost[0, a] == pytest.approx(1_000.0)
    r = led.trade(a, 0, -4, 110_000.0)  # sell 0.004 at 110k: +40
    assert r == pytest.approx(40.0)
    assert led.cost[0, a] == pytest.approx(600.0)
    r = led.trade(a, 0, -10, 90_000.0)  # close 6 at 90k (-60), open short 4 at 90k
    assert r == pytest.approx(-60.0)
    assert led.pos[0, a] == -4 and led.cost[0, a] == pytest.approx(-360.0)
    assert led.cash[a] == pytest.approx(10_000 - 20)
    assert led.realized[a] == pytest.approx(-20.0)


def test_fees_debit_cash():
    led = Ledger([BTC])
    a = led.open_account(1_000.0)
    led.trade(a, 0, 1, 100_000.0, fee=0.05)
    assert led.cash[a] == pytest.approx(999.95) and led.fees[a] == pytest.approx(0.05)


def test_tiered_maintenance_margin_is_continuous():
    led = Ledger([BTC])
    a = led.open_account(1e6)
    marks = np.array([100_000.0])
    out = []
    for lots in (999, 1000, 1001, 3000):  # 99.9k, 100k, 100.1k, 300k notional
        led.pos[0, a] = lots
        led.cost[0, a] = lots * 0.001 * 100_000
        out.append(led.revalue(marks).mm[a])
    assert out[0] == pytest.approx(99_900 * 0.005)
    assert out[1] == pytest.approx(500.0)
    assert out[2] == pytest.approx(100_100 * 0.01 - 500.0)  # maintenance amount keeps it continuous
    assert out[3] == pytest.approx(300_000 * 0.01 - 500.0)


def test_cross_vs_isolated_liquidation():
    for mode in (CROSS, ISOLATED):
        led = Ledger([BTC, ETH])
        a = led.open_account(2_000.0, mode=mode, iso_leverage=10.0)
        led.trade(a, 0, 100, 100_000.0)  # 10k BTC notional
        led.trade(a, 1, -300, 3_000.0)  # 9k ETH short
        # BTC falls 9.8%: the isolated BTC position (1k margin) is nearly wiped out,
        # while the cross account still has 1,020 of equity against ~135 of MM
        v = led.revalue(np.array([90_200.0, 3_000.0]))
        if mode == CROSS:
            assert not v.liquidatable[a]
        else:
            assert v.liquidatable[a]
            assert v.iso_liquidatable[0, a] and not v.iso_liquidatable[1, a]


def test_portfolio_margin_offsets_hedges():
    cross = Ledger([BTC, ETH])
    pm = Ledger([BTC, ETH])
    a = cross.open_account(1e5, mode=CROSS)
    b = pm.open_account(1e5, mode=PORTFOLIO)
    for led, i in ((cross, a), (pm, b)):
        led.trade(i, 0, 500, 100_000.0)  # long 50k BTC
        led.trade(i, 1, -1_666, 3_000.0)  # short ~50k ETH: a hedge
    marks = np.array([100_000.0, 3_000.0])
    assert pm.revalue(marks).mm[b] < cross.revalue(marks).mm[a] * 20
    # hedge: market-wide moves cancel; only the idiosyncratic legs count
    led2 = Ledger([BTC, ETH])
    c = led2.open_account(1e5, mode=PORTFOLIO)
    led2.trade(c, 0, 500, 100_000.0)
    unhedged = led2.revalue(marks).mm[c]
    assert pm.revalue(marks).mm[b] < unhedged
    assert unhedged == pytest.approx(50_000 * 0.12)


def test_collateral_haircut_counts():
    usdx = Collateral("USDX", haircut=0.9)
    led = Ledger([BTC], [usdx])
    a = led.open_account(0.0, collateral={0: 1_000.0})
    v = led.revalue(np.array([100_000.0]), np.array([0.98]))
    assert v.equity[a] == pytest.approx(1_000 * 0.98 * 0.9)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.integers(0, 1), st.integers(-50, 50), st.floats(0.5, 1.5)),
        min_size=1,
        max_size=60,
    ),
    st.floats(0.7, 1.3),
)
def test_vectorized_equals_scalar_and_identity(trades, move):
    """Equity identity: vectorized revalue = per-account computation; money conserved."""
    led = Ledger([BTC, ETH], capacity=2)
    modes = [CROSS, ISOLATED, PORTFOLIO]
    for k in range(6):
        led.open_account(50_000.0, mode=modes[k % 3], iso_leverage=5.0)
    money0 = led.money()
    base = np.array([100_000.0, 3_000.0])
    for i, m, dq, f in trades:
        if dq == 0:
            continue
        j = (i + 1) % 6
        price = base[m] * f
        led.trade(i, m, dq, price)
        led.trade(j, m, -dq, price)
        assert abs(led.money() - money0) < 1e-6
    marks = base * move
    v = led.revalue(marks)
    for i in range(6):
        eq, mm, im = led.account_margin(i, marks)
        assert eq == pytest.approx(v.equity[i], abs=1e-6)
        assert mm == pytest.approx(v.mm[i], abs=1e-6)
        assert im == pytest.approx(v.im[i], abs=1e-6)
        upnl = (led.pos[:, i] * led.lot * marks - led.cost[:, i]).sum()
        assert v.equity[i] == pytest.approx(
            led.cash[i] + led.iso_margin[:, i].sum() - led.deficit[i] + upnl, abs=1e-6
        )
    assert np.all(led.pos[:, : led.n].sum(axis=1) == 0)


def test_invalid_market_specs():
    with pytest.raises(ValueError, match="tick"):
        Market("X", 0.0, 1.0)
    with pytest.raises(ValueError, match="mmr"):
        Market("X", 1.0, 1.0, (MarginTier(float("inf"), 0.2, 10),))
    with pytest.raises(ValueError, match="haircut"):
        Collateral("Y", haircut=1.5)


def test_exchange_settles_both_sides_and_fees(small_exchange):
    ex, maker = small_exchange
    t = ex.ledger.open_account(10_000.0)
    filled = ex.market_order(t, 0, 1, 30)
    assert filled == 30
    assert ex.ledger.pos[0, t] == 30 and ex.ledger.pos[0, maker] == -30
    assert ex.fee_pool > 0
    assert_balanced(ex)


@settings(max_examples=100, deadline=None)
@given(
    fills=st.lists(
        st.tuples(
            st.integers(0, 1),
            st.integers(-400, 400).filter(bool),
            st.floats(0.9, 1.1),
            st.floats(0.0, 5.0),
        ),
        min_size=1,
        max_size=12,
    ),
    mode=st.sampled_from([CROSS, PORTFOLIO]),
)
def test_order_entry_view_moved_on_by_fills_equals_a_fresh_one(fills, mode):
    """The order-entry check's cached view of an account, moved on fill by fill
    (issue #24), equals the view computed afresh from the ledger after the fills."""
    led = Ledger([BTC, ETH])
    a = led.open_account(1e6, mode=mode)
    marks = np.array([100_000.0, 3_000.0])
    for m, dq, f, fee in fills:
        led.margin_state(a, marks)  # cached now
        led.trade(a, m, dq, float(marks[m] * f), fee)
        moved = led.cached_views()[a]
        led.touch()  # every view stale: the next is made afresh
        fresh = led.margin_state(a, marks)
        assert moved[0][0] == fresh[0][0]  # the version; the epoch moved on
        assert moved[1] == pytest.approx(fresh[1], rel=1e-12, abs=1e-6)
        assert moved[2] == pytest.approx(fresh[2], rel=1e-12, abs=1e-9)
        assert moved[3] == pytest.approx(fresh[3], rel=1e-12, abs=1e-9)
        assert moved[4] == fresh[4]


@pytest.mark.parametrize("how", ["deepcopy", "pickle"])
def test_a_copied_ledger_carries_its_order_entry_views(how):
    """A copy or pickle of a ledger carries its order-entry views, a view moved on by
    fills among them (on the compiled path, the slots of ``_Views``), so a copied run
    goes on with the very floats the original would use: a view moved on by a fill is
    not always bit for bit the one made afresh."""
    import copy
    import pickle

    led = Ledger([BTC, ETH])
    a, b = led.open_account(1e6), led.open_account(5e5)
    marks = np.array([100_000.0, 3_000.0])
    led.trade(a, 0, 7, 100_000.0)
    for i in (a, b):
        led.margin_state(i, marks)
    led.trade(a, 1, -3, 3_010.0, 0.5)  # moves a's view on
    views = led.cached_views()
    assert sorted(views) == [a, b] and views[a][4] == (7.0, -3.0)
    twin = copy.deepcopy(led) if how == "deepcopy" else pickle.loads(pickle.dumps(led))
    assert twin.cached_views() == views
    assert twin.margin_state(a, marks) == led.margin_state(a, marks)


@pytest.mark.parametrize("compiled", [True, False])
def test_order_entry_views_are_left_untracked_by_the_cyclic_gc(compiled, monkeypatch):
    """A margin view, fresh or moved on by a fill, holds only tuples, floats and ints,
    so the cyclic GC stops tracking it: its inner tuples at the first pass, the view
    at the next (a pass reorders the objects it finds reachable, so the view is seen
    before its tuples). At 1 M traders the views made between two epochs otherwise
    reached the old generation and set off full collections (issue #24). On the
    compiled path and the Python one."""
    import gc

    from crossmargin.model import ledger as ledger_module

    if compiled and not ledger_module.COMPILED:
        pytest.skip("the compiled book is not built")
    monkeypatch.setattr(ledger_module, "COMPILED", compiled)
    led = Ledger([BTC, ETH])
    a = led.open_account(1e6)
    led.trade(a, 0, 7, 100_000.0)
    marks = np.array([100_000.0, 3_000.0])
    gc.collect()  # the ledger's own objects (its tuple of lots) settled, as in a run
    fresh = led.margin_state(a, marks)
    led.trade(a, 1, -3, 3_000.0, 0.5)  # moves the cached view on
    moved = led.cached_views()[a]
    assert moved is not fresh and moved[4] == (7.0, -3.0)
    gc.collect()
    gc.collect()
    for view in (fresh, moved):
        assert not gc.is_tracked(view), [type(x).__name__ for x in view]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 39), st.integers(0, 2), st.integers(-400_000, 400_000)),
        min_size=1,
        max_size=120,
    ),
    st.floats(0.5, 2.0),
)
def test_tiered_margin_of_large_positions_vectorized_equals_per_account(moves, move):
    """Positions across three markets with one, two and four tiers, many of them beyond
    the first cap (where the vectorized revaluation corrects the tier-0 rates market by
    market): every account's MM and IM equal the per-account computation's."""
    alt = Market(
        "ALT",
        0.0001,
        1.0,
        (
            MarginTier(10_000, 0.01, 50),
            MarginTier(50_000, 0.02, 25),
            MarginTier(250_000, 0.05, 10),
            MarginTier(float("inf"), 0.1, 5),
        ),
    )
    led = Ledger([BTC, ETH, alt], capacity=8)
    for _ in range(40):
        led.open_account(1e7)
    for i, m, dq in moves:
        if dq:
            led.pos[m, i] += dq  # positions only: margin depends on nothing else
    marks = np.array([100_000.0, 3_000.0, 1.0]) * move
    v = led.revalue(marks)
    for i in range(40):
        _, mm, im = led.account_margin(i, marks)
        assert mm == pytest.approx(v.mm[i], rel=1e-12, abs=1e-9)
        assert im == pytest.approx(v.im[i], rel=1e-12, abs=1e-9)
    # The correction for all markets at once adds to the bit what a loop over the
    # markets, one indexed add each, adds.
    absnot = np.abs(led.pos[:, : led.n] * (led.lot * marks)[:, None])
    mm0, im0 = led._mmr0 @ absnot, led._inv_lev0 @ absnot
    mm, im = mm0.copy(), im0.copy()
    led._tier_fix(absnot, mm, im)
    caps, mmr, amount, inv_lev = led._tier_table
    for k, cap0 in enumerate(led._cap0.tolist()):
        j = np.flatnonzero(absnot[k] > cap0)
        a = absnot[k, j]
        t = np.searchsorted(caps[k], a, side="left")
        mm0[j] += a * (mmr[k, t] - mmr[k, 0]) - amount[k, t]
        im0[j] += a * (inv_lev[k, t] - inv_lev[k, 0])
    assert mm.tobytes() == mm0.tobytes() and im.tobytes() == im0.tobytes()
