"""Risk engine: every stage of the liquidation waterfall, and its invariants."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import BTC, ETH, assert_balanced, ladder
from crossmargin.model.exchange import Exchange
from crossmargin.model.markets import CROSS, ISOLATED
from crossmargin.model.orderbook import BUY, SELL
from crossmargin.model.risk import LiquidationPolicy, RiskEngine
from hypothesis import given, settings
from hypothesis import strategies as st


def kinds(ex, ids=None):
    k = ex.events.column("kind")
    return [k[i] for i in (ids if ids is not None else range(len(k)))]


def make(policy=None, *, fund=5_000.0, vault=200_000.0, depth=50):
    ex = Exchange([BTC, ETH], insurance_fund=fund, vault_capital=vault)
    ex.marks = [100_000.0, 3_000.0]
    maker = ex.ledger.open_account(5_000_000.0)
    ladder(ex, maker, 0, 100_000.0, qty=depth)
    ladder(ex, maker, 1, 3_000.0, qty=depth * 10)
    return ex, maker, RiskEngine(ex, policy or LiquidationPolicy())


def mark_for_ratio(ex, a, r, m=0):
    """The BTC mark at which a single-position account has margin ratio ``r`` (tier 0)."""
    led = ex.ledger
    q = led.pos[m, a] * led.lot[m]
    mmr = ex.markets[m].tiers[0].mmr
    return (led.cost[m, a] - led.cash[a]) / (q * (1 - r * mmr * np.sign(q)))


def move_market(ex, maker, price, *, m=0, depth=50, gap=0.0001):
    """Set the mark and re-quote the maker's ladder around it (market ``m`` only)."""
    for oid in ex.books[m].orders_of(maker):
        ex.cancel(maker, m, oid)
    ex.set_mark(m, price)
    ladder(ex, maker, m, price, qty=depth, gap=gap)


def leveraged_long(ex, cash=1_000.0, lots=400, mode=CROSS):
    a = ex.ledger.open_account(cash, mode=mode, iso_leverage=50.0)
    assert ex.market_order(a, 0, BUY, lots) == lots  # within initial margin
    return a


def test_partial_liquidation_restores_margin():
    ex, maker, risk = make(LiquidationPolicy(step_share=0.2, target_ratio=1.25, full_ratio=0.3))
    a = leveraged_long(ex, cash=1_400.0, lots=500)  # ~50k notional, 20x leverage
    move_market(ex, maker, mark_for_ratio(ex, a, 0.8), depth=200)
    eq, mm, _ = ex.account_margin(a)
    assert eq == pytest.approx(0.8 * mm)
    ids = risk.liquidate(a, step=1, round=0)
    assert set(kinds(ex, ids)) == {"liquidation", "partial"}
    eq, mm, _ = ex.account_margin(a)
    assert eq >= 1.25 * mm or ex.ledger.pos[0, a] == 0
    assert ex.ledger.pos[0, a] > 0  # not closed entirely
    assert ex.insurance.balance > 5_000.0  # liquidation fees went to the fund
    assert_balanced(ex)


def test_full_liquidation_below_second_threshold():
    ex, maker, risk = make(LiquidationPolicy(full_ratio=0.5))
    a = leveraged_long(ex, cash=1_400.0, lots=500)
    move_market(ex, maker, mark_for_ratio(ex, a, 0.3), depth=200)
    eq, mm, _ = ex.account_margin(a)
    assert eq == pytest.approx(0.3 * mm)
    ids = risk.liquidate(a, step=1, round=0)
    assert "full" in kinds(ex, ids)
    assert ex.ledger.pos[0, a] == 0
    assert ex.account_margin(a)[0] >= -1e-9
    assert_balanced(ex)


def test_backstop_takes_what_the_book_cannot_absorb():
    ex, maker, risk = make(depth=10)
    a = leveraged_long(ex, cash=2_000.0, lots=150)
    # the maker pulls every bid: nothing to sell into
    ex.cancel_all(maker)
    ex.set_mark(0, mark_for_ratio(ex, a, 0.4))
    eq0, mm, _ = ex.account_margin(a)
    assert eq0 == pytest.approx(0.4 * mm)
    ids = risk.liquidate(a, step=3, round=1)
    assert "backstop" in kinds(ex, ids)
    v = ex.vault.account
    assert ex.ledger.pos[0, v] == 150 and ex.ledger.pos[0, a] == 0
    # taken at the bankruptcy price: the account is left with nothing, the vault
    # holds the position at a discount to the mark equal to the account's equity
    assert ex.account_margin(a)[0] == pytest.approx(0.0, abs=1e-6)
    assert ex.vault_nav() == pytest.approx(200_000.0 + eq0, rel=1e-9)
    assert_balanced(ex)


def test_insurance_fund_pays_gap_shortfall():
    ex, maker, risk = make(LiquidationPolicy(backstop=True), vault=200_000.0)
    a = leveraged_long(ex, cash=1_400.0, lots=500)
    move_market(ex, maker, mark_for_ratio(ex, a, -2.0))  # a gap through bankruptcy
    eq0, _, _ = ex.account_margin(a)
    assert eq0 < 0
    fund0 = ex.insurance.balance
    ids = risk.liquidate(a, step=1, round=0)
    k = kinds(ex, ids)
    assert "insurance" in k
    assert ex.account_margin(a)[0] == pytest.approx(0.0, abs=1e-6)
    assert ex.insurance.balance < fund0
    assert risk.bankruptcies == 1
    assert_balanced(ex)


def test_adl_when_fund_is_empty_hits_only_profitable_opposite_positions():
    ex, maker, risk = make(LiquidationPolicy(backstop=False, shortfall="adl"), fund=0.0, vault=0.0)
    # winners: shorts opened at 100k (profitable when price falls); a losing short
    winners = [ex.ledger.open_account(20_000.0) for _ in range(3)]
    for k, w in enumerate(winners):
        ex.market_order(w, 0, SELL, 50 * (k + 1))
    a = leveraged_long(ex, cash=1_000.0, lots=300)
    loser_short = ex.ledger.open_account(20_000.0)
    ex.set_mark(0, 101_000.0)
    ex.limit(loser_short, 0, SELL, 101_050, 1)  # rests
    ex.cancel_all(maker)  # the book is gone
    ex.set_mark(0, 96_000.0)
    eq0, _, _ = ex.account_margin(a)
    assert eq0 < 0
    pos_before = ex.ledger.pos[0, : ex.ledger.n].copy()
    ids = risk.liquidate(a, step=2, round=0)
    adl = [i for i in ids if ex.events.column("kind")[i] == "adl"]
    assert adl
    hit = {ex.events.column("account")[i] for i in adl}
    assert hit <= set(winners)
    for w in hit:
        assert pos_before[w] < 0  # the opposite side of a long, and in profit (shorts from 100k)
    assert ex.ledger.pos[0, a] == 0
    assert ex.insurance.balance == 0.0
    assert_balanced(ex)


def test_adl_ranking_orders_by_pnl_times_leverage():
    ex, _maker, risk = make(fund=0.0, vault=0.0)
    lo = ex.ledger.open_account(100_000.0)  # low leverage short
    hi = ex.ledger.open_account(5_000.0)  # high leverage short
    ex.market_order(lo, 0, SELL, 100)
    ex.market_order(hi, 0, SELL, 100)
    ex.set_mark(0, 95_000.0)
    assert list(risk.adl_ranking(0, -1)) == [hi, lo]
    assert list(risk.adl_ranking(0, 1)) == []  # longs are losing: never ranked


def test_socialized_loss_spreads_pro_rata():
    ex, maker, risk = make(
        LiquidationPolicy(backstop=False, shortfall="socialized"), fund=0.0, vault=0.0
    )
    w1 = ex.ledger.open_account(50_000.0)
    w2 = ex.ledger.open_account(50_000.0)
    ex.market_order(w1, 0, SELL, 100)
    ex.market_order(w2, 0, SELL, 300)
    a = leveraged_long(ex, cash=500.0, lots=200)
    move_market(ex, maker, mark_for_ratio(ex, a, -3.0), gap=0.001)
    cash1, cash2 = ex.ledger.cash[w1], ex.ledger.cash[w2]
    first = len(ex.events)
    risk.liquidate(a, step=1, round=0)
    risk.settle(step=1, round=0)  # the round's shortfalls are charged once, together
    k = kinds(ex, range(first, len(ex.events)))
    assert "socialized" in k
    paid1, paid2 = cash1 - ex.ledger.cash[w1], cash2 - ex.ledger.cash[w2]
    assert paid1 > 0 and paid2 > 0
    assert risk.socialized_loss > 0
    assert_balanced(ex)


def test_isolated_position_loss_does_not_touch_other_cash():
    ex, maker, risk = make(fund=50_000.0)
    a = ex.ledger.open_account(10_000.0, mode=ISOLATED, iso_leverage=20.0)
    ex.market_order(a, 0, BUY, 200)  # 20k notional, 1k margin
    free_cash = ex.ledger.cash[a]
    ex.set_mark(0, 94_000.0)  # the position is bankrupt (−1.2k on 1k margin)
    ex.cancel_all(maker)
    ids = risk.liquidate(a, step=1, round=0)
    assert ex.ledger.pos[0, a] == 0
    assert "insurance" in kinds(ex, ids)
    assert ex.ledger.cash[a] == pytest.approx(free_cash, abs=1e-6)
    assert_balanced(ex)


def test_policy_validation():
    with pytest.raises(ValueError, match="step_share"):
        LiquidationPolicy(step_share=0.0)
    with pytest.raises(ValueError, match="shortfall"):
        LiquidationPolicy(shortfall="pray")


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 7), st.integers(0, 1), st.integers(-300, 300)),
        min_size=4,
        max_size=30,
    ),
    st.lists(st.floats(0.8, 1.2), min_size=1, max_size=4),
    st.sampled_from(["adl", "socialized"]),
    st.sampled_from(["bankruptcy", "mark"]),
    st.booleans(),
    st.booleans(),
    st.sampled_from([0.0, 500.0, 3_000.0]),
    st.sampled_from([0.0, 100.0]),
)
def test_waterfall_properties(trades, moves, shortfall, adl_price, backstop, takeover, fund, floor):
    """Random orders and price moves, every account under MM liquidated each round
    (fund 0 or not, vault 0 or not, both shortfall policies):

    * no bystander is pushed below zero by someone else's liquidation;
    * every isolated account's available balance stays >= 0;
    * the vault stays within its leverage cap after each round of takeovers;
    * ADL never fires while the fund could still take over above its floor;
    * the books reconcile from state, and no negative balance is left unbooked.
    """
    ex = Exchange(
        [BTC, ETH],
        insurance_fund=fund,
        insurance_floor=floor,
        vault_capital=60_000.0 if backstop else 0.0,
        vault_max_leverage=3.0,
    )
    ex.marks = [100_000.0, 3_000.0]
    maker = ex.ledger.open_account(10_000_000.0)
    ladder(ex, maker, 0, 100_000.0, qty=40, levels=10)
    ladder(ex, maker, 1, 3_000.0, qty=400, levels=10)
    policy = LiquidationPolicy(
        shortfall=shortfall, adl_price=adl_price, backstop=backstop, fund_takeover=takeover
    )
    risk = RiskEngine(ex, policy)
    accts = [
        ex.ledger.open_account(2_000.0, mode=ISOLATED if k % 3 == 2 else CROSS, iso_leverage=20.0)
        for k in range(8)
    ]
    iso = [a for k, a in enumerate(accts) if k % 3 == 2]

    def iso_available_ok():
        return all(ex.ledger.cash[a] - ex.order_margin.get(a, 0.0) >= -1e-6 for a in iso)

    adl_fired_above_floor = []
    original_adl = risk._adl

    def watched_adl(account, m, qty, price, ctx):
        # Exhausted: the fund cannot take one more lot and stay at its floor.
        if takeover and risk.fund_capacity(m, qty, float(ex.marks[m])) > 0:
            adl_fired_above_floor.append(ex.fund_free_equity())
        return original_adl(account, m, qty, price, ctx)

    risk._adl = watched_adl
    for i, m, q in trades:
        if q:
            ex.market_order(accts[i], m, BUY if q > 0 else SELL, abs(q))
        assert iso_available_ok()
    assert_balanced(ex)
    for step, f in enumerate(moves, start=1):
        ex.marks = ex.marks * f
        for m, mid in enumerate(ex.marks):
            for oid in ex.books[m].orders_of(maker):
                ex.cancel(maker, m, oid)
            ladder(ex, maker, m, float(mid), qty=40 if m == 0 else 400, levels=10)
        v = ex.revalue()
        liquidated = {int(a) for a in np.flatnonzero(v.liquidatable)} - {maker}
        eq_before = v.equity.copy()
        for a in sorted(liquidated):
            risk.liquidate(a, step=step, round=0)
        risk.settle(step=step, round=0)
        risk.resolve(step=step, round=1)
        v = ex.revalue()
        for a in range(ex.ledger.n):
            if a not in liquidated and a not in ex.pool_accounts and eq_before[a] >= 0:
                assert v.equity[a] >= -1e-6, (a, eq_before[a], v.equity[a])
        assert iso_available_ok()
        if ex.vault is not None and v.gross[ex.vault.account] > 0:
            assert v.gross[ex.vault.account] <= 3.0 * v.equity[ex.vault.account] + 1e-6
        assert ex.unbooked_negative_equity(v) == 0.0
        assert abs(ex.state_error(v)) < 0.01
        assert_balanced(ex)
    assert not adl_fired_above_floor


# ------------------------------------------------------------ issue #22: the books


def test_settle_asks_the_fund_again_before_charging_anyone():
    """A shortfall waits for the end of the round; if the fund gained free equity
    meanwhile (fees, takeovers below the mark), it pays before anyone is charged."""
    ex, maker, risk = make(LiquidationPolicy(backstop=False, shortfall="adl"), fund=0.0, vault=0.0)
    winner = ex.ledger.open_account(20_000.0)
    ex.market_order(winner, 0, SELL, 100)
    a = leveraged_long(ex, cash=1_000.0, lots=300)
    move_market(ex, maker, mark_for_ratio(ex, a, -2.0))  # a gap through bankruptcy
    risk.liquidate(a, step=1, round=0)
    owed = risk.shortfall_of(a)
    assert owed > 0 and a in risk.pending  # the fund had nothing: the shortfall waits
    ex.ledger.deposit(ex.insurance.account, owed + 100.0)  # e.g. fees of later accounts
    risk.settle(step=1, round=0)
    assert risk.adl_charged == 0.0 and risk.socialized_loss == 0.0
    assert risk.fund_paid == pytest.approx(owed)
    assert "insurance" in kinds(ex) and "adl" not in kinds(ex)
    assert risk.shortfall_of(a) == pytest.approx(0.0, abs=1e-9)
    assert_balanced(ex)


def test_fund_takes_over_only_what_it_can_carry_through_a_stress_move():
    """The fund's capacity is its equity above the floor against the stress-grid loss
    of what it would hold, not against a maintenance margin a fraction of that."""
    _, _, risk = make(LiquidationPolicy(backstop=False), fund=5_000.0, vault=0.0)
    assert risk.fund_capacity(0, 1000, 100_000.0) * 0.001 * 100_000.0 <= 5_000.0 / 0.12 + 100.0
    # the old rule (equity above MM at 0.5%) would have let it take ~1 M of BTC
    assert risk.fund_capacity(0, 10_000, 100_000.0) < 10_000 * 0.12


def test_pools_are_never_liquidated_as_clients_and_cut_under_their_own_rule():
    """A vault above its cap after marks fell cuts back by its own rule (one
    ``pool_derisk`` event, book then ADL at the mark), never a ``liquidation``."""
    ex, maker, risk = make(LiquidationPolicy(backstop=True), vault=12_500.0)
    shorts = [ex.ledger.open_account(50_000.0) for _ in range(3)]
    for s in shorts:
        ex.market_order(s, 0, SELL, 100)
    a = leveraged_long(ex, cash=2_000.0, lots=600)
    ex.cancel_all(maker)
    ex.set_mark(0, mark_for_ratio(ex, a, 0.4))
    risk.liquidate(a, step=1, round=0)
    v = ex.vault.account
    assert ex.ledger.pos[0, v] > 0
    ex.set_mark(0, float(ex.marks[0]) * 0.96)  # the vault's book falls further
    eq, _ = risk._margin(v)
    gross = float(abs(ex.ledger.pos[0, v]) * 0.001 * ex.marks[0])
    assert gross > ex.vault_max_leverage * eq  # over its cap between takeovers
    assert risk.pool_risk(step=2, round=0)
    eq, _ = risk._margin(v)
    gross = float(abs(ex.ledger.pos[0, v]) * 0.001 * ex.marks[0])
    assert gross <= ex.vault_max_leverage * eq * (1 + 1e-9)
    k = kinds(ex)
    assert k.count("pool_derisk") == 1 and "adl" in k
    accts = ex.events.column("account")
    assert all(accts[e] != v for e in range(len(k)) if k[e] == "liquidation")
    assert not risk.pool_risk(step=2, round=1)  # once a step
    assert_balanced(ex)
