"""A world of venues (issue #25): contracts, books across venues, index rules, transfers,
cross-venue contagion and bad input."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from crossmargin import CrossMarginModel, Scenario
from crossmargin.model.oracle import IndexRule, weighted_median
from crossmargin.model.scenario import ScenarioError
from helpers import preset, small
from hypothesis import example, given, settings
from hypothesis import strategies as st

SHOCK = {"kind": "index_jump", "step": 40, "size": -0.15, "duration": 5}


def world(steps: int = 80, *, traders: int = 160, **changes) -> Scenario:
    """The multivenue preset, small: fewer agents, a shorter day, a crash at step 40."""
    sc = Scenario.preset("multivenue")
    return sc.replace(
        steps=steps,
        shocks=[SHOCK] if steps > SHOCK["step"] else [],
        **{
            "agents.leveraged.count": traders,
            "agents.noise.count": 60,
            "agents.market_makers.count": 6,
            "agents.fundamentalists.count": 12,
            "agents.momentum.count": 10,
            "cross.hedged": 30,
            "cross.arbitrageurs": 4,
        },
        **changes,
    )


@pytest.fixture(scope="module")
def crashed() -> CrossMarginModel:
    m = CrossMarginModel(world())
    checks = []
    for _ in range(m.config.steps):
        m.run_for(1)
        checks.append(_books(m))
    m.checks = checks
    return m


def _books(m: CrossMarginModel) -> tuple[float, float, float, float]:
    """(largest |state error| of a venue, the world's state error, unbooked negative
    equity over venues (custody accounts are not clients), transfer error)."""
    per_venue = max(abs(v.exchange.state_error()) for v in m.world.venues)
    unbooked = sum(
        v.exchange.unbooked_negative_equity(v.exchange.revalue()) for v in m.world.venues
    )
    return per_venue, m.world.state_error(), unbooked, m.world.transfer_error()


def test_the_contracts(crashed):
    m = crashed
    assert m.venues == ["binance_spot", "okx_spot", "kraken_spot", "binance", "hyperliquid"]
    ev = m.events
    assert "venue" in ev.columns and set(ev["venue"]) <= set(m.venues)
    assert set(ev.loc[ev["kind"] == "liquidation", "venue"]) <= {"binance", "hyperliquid"}
    acc = m.accounts()
    assert {"venue", "owner"} <= set(acc.columns)
    # An arbitrageur: one owner, one row per venue account.
    arb = acc[acc["agent_type"] == "arbitrageur"]
    assert (arb.groupby("owner")["venue"].nunique() == len(m.venues)).all()
    hedged = acc[acc["agent_type"] == "hedged"]
    assert (hedged.groupby("owner")["venue"].nunique() == 2).all()
    long = m.model_frame(long=True)
    assert list(long.columns) == ["t", "venue", "market", "variable", "value"]
    for v in ("binance", "hyperliquid"):
        for var in ("index", "mark"):
            got = long[(long["venue"] == v) & (long["variable"] == var)]
            assert set(got["market"]) == set(m.config.market_names), (v, var)
    world_rows = long[long["venue"] == ""]
    assert set(world_rows["variable"]) >= {"value", "dislocation", "in_flight"}
    by = m.summary()["by_venue"]
    assert set(by) == set(m.venues)
    for row in by.values():
        assert {
            "liquidations",
            "liquidated_notional",
            "adl_notional",
            "bad_debt",
            "insurance_fund_change",
        } <= set(row)
    assert sum(r["liquidations"] for r in by.values()) == m.summary()["liquidations"]


def test_books_reconcile_per_venue_and_in_total_after_every_step(crashed):
    per_venue, world_err, unbooked, transfer = np.array(crashed.checks).T
    assert np.abs(per_venue).max() < 1e-4
    assert np.abs(world_err).max() < 1e-4
    assert unbooked.max() == 0.0
    assert np.abs(transfer).max() < 1e-6
    s = crashed.summary()
    assert s["liquidations"] > 0  # the crash really went through the waterfalls
    assert crashed.world.treasury.count > 0  # and collateral moved between venues


def test_forced_selling_moves_value():
    """The same seed with and without the crash: the latent value falls by more than the
    news (forced selling's impact), and every venue's prices follow it through trades."""
    sc = world(100)
    shocked = CrossMarginModel(sc)
    shocked.run_for(sc.steps)
    news = shocked.world.news.published
    value = shocked.world.value
    assert (np.log(value / news) != 0).any()  # flow moved the value away from the news
    df = shocked.model_frame()
    for v in shocked.venues:
        col = "BTC_mark" if v == "binance" else f"{v}:BTC_mark"
        assert df[col].iloc[-1] < 0.95 * df[col].iloc[30], v  # every venue fell with it


def test_index_is_made_from_the_spot_venues(crashed):
    m = crashed
    for v in m.world.perp:
        rule = m.world.rules[v.code]
        spot = np.array([m.world.venues[c].quote() for c in m.world.constituents[v.code]])
        again = IndexRule(
            rule.rule,
            rule.w,
            len(v.index),
            cap=rule.cap,
            exclude=rule.exclude_at,
            stale_steps=rule.stale_steps,
        )(spot, prev=v.index)
        # Within a step's drift of the index it published (the spot books moved since).
        assert np.all(np.abs(np.log(again / v.index)) < 0.05)


def test_sell_program_sells_its_notional_on_its_venue():
    sc = world(60, traders=60)
    m = CrossMarginModel(sc)
    m.run_for(10)
    before = m.venue("okx_spot").quote()[0]
    m.add_shock(
        {
            "kind": "sell_program",
            "venue": "okx_spot",
            "market": "BTC",
            "notional": 500_000.0,
            "step": 12,
            "duration": 10,
        }
    )
    m.run_for(15)
    prog = m.shocks[-1]
    assert prog.sold > 0.8 * prog.total
    ev = m.events
    shock = ev[ev["kind"] == "shock"].iloc[-1]
    assert shock["venue"] == "okx_spot"
    assert m.venue("okx_spot").quote()[0] < before
    acc = m.accounts()
    assert (acc["agent_type"] == "seller").sum() == 1


def test_withdrawal_halt_keeps_transfers_waiting():
    sc = world(90, **{"transfers.delay_mean": 0.0, "transfers.delay_min": 0})
    halted = sc.replace(
        shocks=[
            SHOCK,
            {"kind": "withdrawal_halt", "venue": "hyperliquid", "step": 2, "duration": 88},
            {"kind": "withdrawal_halt", "venue": "binance", "step": 2, "duration": 88},
        ]
    )
    m = CrossMarginModel(halted)
    m.run_for(halted.steps)
    tr = m.transfers
    assert not tr["source_venue"].isin(["binance", "hyperliquid"]).any()


def test_cascade_graph_carries_venues_and_edge_kinds(crashed):
    g = crashed.cascade_graph
    venues = {d["venue"] for _, d in g.nodes(data=True)}
    assert venues <= {*crashed.venues, ""}
    kinds = {d["kind"] for *_, d in g.edges(data=True)}
    assert kinds <= {
        "waterfall",
        "shock",
        "price",
        "collateral",
        "index",
        "owner",
        "treasury",
        "root",
    }
    assert "shock" in kinds


def test_the_cascade_metrics_read_from_the_events_are_the_graphs(crashed):
    """summary() reads the cascades from the events' causes without building the graph
    (a run of a million traders has tens of millions of cause edges): the same heads,
    parents, generations, cascades and metrics as on the graph."""
    from crossmargin.model.contagion import (
        account_of,
        cascade_metrics,
        cascades,
        liquidation_tree,
    )
    from crossmargin.model.measures import branching_ratio

    g, ev = crashed.cascade_graph, crashed.world.events
    parents, generation = liquidation_tree(g)
    assert liquidation_tree(ev) == (parents, generation)
    assert cascades(ev) == cascades(g)
    # cascade_metrics' one pass (union-find, links over heads) against the sets
    expect = {
        "max_depth": max(generation.values()) + 1,
        "largest_size": max(len({account_of(g, h) for h in c}) for c in cascades(g)),
        "mean_branching": branching_ratio(parents),
        "generations": np.bincount(list(generation.values())).tolist(),
    }
    metrics = cascade_metrics(ev)
    assert metrics == cascade_metrics(g) == expect
    assert metrics["largest_size"] > 1 and metrics["max_depth"] > 1
    assert crashed.summary()["cascade_largest_size"] == metrics["largest_size"]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 6),
            st.booleans(),
            st.dictionaries(
                st.integers(0, 20),
                st.tuples(
                    st.floats(0, 1e9, allow_nan=False),
                    st.sampled_from(["price", "shock", "index", "owner", "treasury"]),
                ),
                max_size=6,
            ),
        ),
        max_size=12,
    )
)
def test_cause_weights_answer_as_a_dict_keyed_by_cause_and_event(records):
    from crossmargin.model.contagion import EDGE_KINDS, CauseWeights

    store, weights, kinds = CauseWeights(), {}, {}
    for event, as_arrays, causes in records:
        if as_arrays:  # record_sorted: ascending arrays
            ids = sorted(causes)
            store.record_sorted(
                event,
                np.array(ids, dtype=np.int64),
                np.array([causes[c][0] for c in ids], dtype=float),
                np.array([EDGE_KINDS.index(causes[c][1]) for c in ids], dtype=np.uint8),
            )
        else:
            store.record(
                event,
                {c: w for c, (w, _) in causes.items()},
                {c: k for c, (_, k) in causes.items()},
            )
        for c, (w, k) in causes.items():
            weights[(c, event)], kinds[(c, event)] = w, k
    for c in range(21):
        for e in range(7):
            expect = (weights[(c, e)], kinds[(c, e)]) if (c, e) in weights else None
            assert store.get(c, e) == expect
    assert len(store) == len(weights)


@pytest.fixture(scope="module")
def collateral_venue():
    """A single venue whose traders hold positions and a pool's token as collateral."""
    sc = small(preset("baseline"), steps=60, traders=120).replace(
        collateral={"name": "USDX", "book_depth": 50_000.0},
        **{"agents.leveraged.collateral_share": 0.3},
    )
    m = CrossMarginModel(sc)
    m.run_for(30)
    return m.world.venues[0]


def _attribution_rule(venue, acct: int, forced: list[int]) -> tuple[dict, dict]:
    """Round k > 0's causes of a liquidation, event by event (the rule
    ``Venue.attribute`` computes for all of the last round's forced events at once)."""
    ex, led = venue.exchange, venue.exchange.ledger
    before, after, cb, ca = venue._blame
    move = (after - before) * led.lot * led.pos[:, acct]
    coll_move = (ca - cb) * led.coll[:, acct] * led.haircut if len(ca) else []
    markets, notional, kinds = (ex.events.column(c) for c in ("market", "notional", "kind"))
    total = np.zeros(len(ex.markets))
    for e in forced:
        if kinds[e] != "pool_shortfall" and markets[e] >= 0:
            total[markets[e]] += notional[e]
    weights, kinds_of = {}, {}
    for e in forced:
        if kinds[e] == "pool_shortfall":
            loss = -float(np.sum(coll_move)) if len(coll_move) else 0.0
        elif markets[e] < 0:
            loss = -float(move.sum()) if kinds[e] == "pool_derisk" else 0.0
        else:
            m = markets[e]
            loss = -float(move[m]) * notional[e] / total[m] if total[m] > 0 else 0.0
        if loss > 0:
            weights[e] = loss
            kinds_of[e] = "collateral" if kinds[e] == "pool_shortfall" else "price"
    return weights, kinds_of


_prices = st.floats(0.5, 2e5, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(
    events=st.lists(
        st.tuples(
            st.sampled_from(["partial", "full", "pool_shortfall", "pool_derisk"]),
            st.integers(-1, 3),
            st.one_of(st.just(0.0), st.floats(0, 1e8, allow_nan=False), st.just(float("inf"))),
        ),
        min_size=1,
        max_size=30,
    ),
    marks=st.tuples(*[st.tuples(_prices, _prices)] * 4),
    coll=st.tuples(st.floats(0, 2, allow_nan=False), st.floats(0, 2, allow_nan=False)),
    nth=st.integers(0, 119),
    backwards=st.booleans(),
)
@example(  # three orders in a falling market whose total rounds by the order summed
    events=[("partial", 0, 1.0), ("partial", 0, 1e-16), ("full", 0, 1e-16)],
    marks=((100.0, 90.0), (50.0, 50.0), (20.0, 20.0), (10.0, 10.0)),
    coll=(1.0, 1.0),
    nth=0,  # an account long in that market
    backwards=True,
)
def test_attribution_follows_the_rule_event_by_event(
    collateral_venue, events, marks, coll, nth, backwards
):
    """``Venue.attribute`` (round k > 0) finds the causes, losses and edge kinds the
    per-event rule gives, and keeps them as the next event's edges; with none, the
    world's blame. The round's list in any order: the totals are summed in its order."""
    v = collateral_venue
    ex = v.exchange
    held = np.flatnonzero((ex.ledger.pos != 0).any(axis=0) & (ex.ledger.coll != 0).any(axis=0))
    acct = int(held[nth % len(held)])
    forced = [
        ex.events.add(k, step=1, round=0, market=m, notional=n, account=0) for k, m, n in events
    ]
    if backwards:
        forced.reverse()
    before, after = np.array(marks).T
    v._blame = (before, after, np.array([coll[0]]), np.array([coll[1]]))
    weights, kinds = _attribution_rule(v, acct, forced)
    if not weights:
        drop = float(v.val_prev.equity[acct] - v.val.equity[acct])
        weights, kinds = v.model.blame(v, acct, max(drop, 0.0))
    head = len(ex.events)
    got = v.attribute(acct, 1, forced)
    assert got == sorted(weights)
    if got and set(got) <= set(forced):  # the round's own ids, not new ints (memory)
        assert {id(c) for c in got} <= {id(e) for e in forced}
    for e, w in weights.items():
        assert v.model.edge_weights.get(e, head) == (w, kinds.get(e, "price"))
    assert len(v.model.edge_weights.causes_of(head)) == len(weights)
    ex.events.add("liquidation", step=1, round=1, account=acct)  # the event they hang off


def test_single_venue_scenarios_are_one_venue_worlds():
    m = CrossMarginModel(Scenario(steps=3))
    m.run_for(3)
    assert m.venues == ["venue"]
    assert set(m.events["venue"]) <= {"venue"}
    assert set(m.model_frame(long=True)["venue"]) == {"venue"}
    assert m.summary()["by_venue"]["venue"]["liquidations"] == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"venues.3.index.constituents": {"nowhere": 1.0}}, "venues.3.index.constituents"),
        ({"venues.3.index.constituents": {"okx_spot": -1.0}}, "venues.3.index.constituents"),
        ({"transfers.delay_mean": -1.0}, "transfers.delay_mean"),
        ({"transfers.delay_min": -2}, "transfers.delay_min"),
        ({"cross.venues": ["binance", "ftx"]}, "cross.venues"),
        ({"shocks": [{"kind": "halt", "step": 2, "venue": "ftx"}]}, "shocks.0.venue"),
        ({"venues.0.changes": {"agents.noise.cont": 3}}, "venues.0.changes"),
    ],
)
def test_bad_world_input_names_the_field(changes, field):
    with pytest.raises(ScenarioError) as exc:
        Scenario.preset("multivenue").replace(**changes)
    msg = str(exc.value)
    assert msg.startswith(f"{field}:") and "\n" not in msg, msg


def test_bad_world_input_on_the_command_line(tmp_path):
    from helpers import cli

    bad = tmp_path / "bad.toml"
    text = Scenario.preset("multivenue").to_toml().replace("\nokx_spot = 2.0", "\nokx = 2.0", 1)
    assert text != Scenario.preset("multivenue").to_toml()
    bad.write_text(text)
    out = tmp_path / "out"
    r = cli("run", str(bad), "--out", str(out))
    assert r.returncode == 2
    assert r.stderr.startswith("error: venues.") and r.stderr.count("\n") == 1, r.stderr
    assert not out.exists()


@given(
    st.lists(st.floats(50, 150), min_size=3, max_size=6),
    st.lists(st.floats(0.1, 5), min_size=6, max_size=6),
)
@settings(max_examples=60, deadline=None)
def test_weighted_median_is_one_of_its_inputs_and_between_them(prices, weights):
    x = np.array(prices)[:, None]
    w = np.array(weights[: len(prices)])
    med = weighted_median(x, w)[0]
    assert med in prices
    assert min(prices) <= med <= max(prices)
    below = w[x[:, 0] <= med].sum()
    assert below >= 0.5 * w.sum() - 1e-9


def test_capped_mean_and_exclusion_limit_an_outlier():
    prices = np.array([[100.0], [101.0], [99.5], [200.0]])
    capped = IndexRule("capped_mean", [1, 1, 1, 1], 1, cap=0.03)(prices, prev=np.array([100.0]))
    assert capped[0] < 102.0
    rule = IndexRule("exclusion", [1, 1, 1, 1], 1, exclude=0.25, readmit=0.02, readmit_steps=3)
    out = rule(prices, prev=np.array([100.0]))
    assert out[0] == pytest.approx((100 + 101 + 99.5) / 3)
    back = np.array([[100.0], [101.0], [99.5], [100.5]])
    for _ in range(2):
        assert rule(back, prev=out)[0] == pytest.approx((100 + 101 + 99.5) / 3)
    assert rule(back, prev=out)[0] == pytest.approx((100 + 101 + 99.5 + 100.5) / 4)  # readmitted
    stale = np.array([[np.nan], [np.nan], [np.nan], [np.nan]])
    held = IndexRule("weighted_median", [1, 1, 1, 1], 1, stale_steps=1)
    assert held(stale, prev=np.array([123.0]))[0] == 123.0  # nothing fresh: the last index


def test_hedged_trader_cuts_the_other_leg():
    sc = world(120, traders=120)
    sc = sc.replace(shocks=[{**SHOCK, "size": -0.3}])
    m = CrossMarginModel(sc)
    m.run_for(sc.steps)
    from crossmargin.model.crossvenue import HedgedTrader

    hedged = m.agents_by_type[HedgedTrader]
    assert sum(h.cuts for h in hedged) > 0
    g = m.cascade_graph
    venue = nx.get_node_attributes(g, "venue")
    across = pd.Series(
        [d["kind"] for u, v, d in g.edges(data=True) if venue[u] and venue[v] != venue[u]]
    )
    # Losses crossed venues through the index, through owners whose hedge was cut and
    # through transfers that had not landed.
    assert {"index", "owner"} <= set(across), across.value_counts()
    assert 0.0 <= m.summary()["adl_hedged_share"] <= 1.0


def test_the_preset_is_the_baseline_as_a_world_of_venues():
    assert Scenario.preset("multivenue") == Scenario.preset("baseline").as_multivenue().replace(
        name="multivenue"
    )


def test_the_registered_checks_pin_the_preset_they_judge():
    """multivenue.toml's checks pin the preset's inputs fingerprint: a preset changed
    after registration makes them stale (they then judge nothing)."""
    from crossmargin.analysis.validation import MULTIVENUE, load_criteria
    from crossmargin.analysis.validation.suite import build_jobs, stale_inputs

    crit = load_criteria(MULTIVENUE, quick=True)
    assert [c["name"] for c in crit.checks] == [
        "mv_price_gaps",
        "mv_liquidity_spiral",
        "mv_impact_travels",
    ]
    for spec in crit.checks:
        assert spec["inputs_fingerprint"]
        assert stale_inputs(spec) == "", spec["name"]
        jobs = build_jobs(spec)
        assert jobs and all(Scenario.from_dict(j["scenario"]).venues for j in jobs)
    changed = dict(crit.checks[0], preset="baseline")
    assert stale_inputs(changed).startswith("stale")


def test_any_check_can_run_on_a_world_of_venues():
    """--world multivenue: the criteria unchanged, every scenario a world of venues."""
    from crossmargin.analysis.validation import load_criteria
    from crossmargin.analysis.validation.suite import build_jobs

    crit = load_criteria(quick=True, only=["leverage_tails"], world="multivenue")
    jobs = build_jobs(crit.checks[0])
    sc = Scenario.from_dict(jobs[0]["scenario"])
    assert sc.venue_names[-2:] == ["binance", "hyperliquid"]
    assert sc.leverage_cap == 1.5  # the check's own setting, kept


def test_a_spot_ladder_offers_only_the_units_no_resting_sell_holds():
    """A spot venue's ladder (``Exchange.requote``) and a single order (``limit``) both
    count the units the owner's resting sells on that book already offer; a filled sell
    offers nothing any more, and sells on another book do not count."""
    from crossmargin.model.exchange import Exchange
    from crossmargin.model.markets import Market
    from crossmargin.model.orderbook import BUY, SELL

    ex = Exchange([Market("BTC", 1.0, 0.001), Market("ETH", 0.1, 0.01)], spot=True)
    ex.marks = np.array([100_000.0, 3_000.0])
    maker, taker = ex.ledger.open_account(0.0), ex.ledger.open_account(10_000_000.0)
    ex.deposit_units(maker, 0, 10, 100_000.0)
    ex.deposit_units(maker, 1, 10, 3_000.0)
    assert ex.requote(maker, 1, [], [(SELL, 30_100)], 10)[0] > 0  # all its ETH
    placed = ex.requote(maker, 0, [], [(SELL, 100_010), (SELL, 100_020)], 3)
    assert all(placed)
    assert ex.market_order(taker, 0, BUY, 3) == 3  # fills the first sell
    # 7 BTC held, 3 offered by the resting sell: room for one more sell of 3, not two.
    again = ex.requote(maker, 0, [], [(SELL, 100_030), (SELL, 100_040)], 3)
    assert again[0] > 0 and again[1] == 0
    # 7 held, 6 offered: one more lot is allowed, two are not.
    ex.limit(maker, 0, SELL, 100_050, 2)
    assert ex.books[0].last_id == 0
    ex.limit(maker, 0, SELL, 100_050, 1)
    assert ex.books[0].last_id > 0


def test_an_account_is_its_venue_and_number(crashed):
    """Account numbers repeat across venues: the validation's counts of accounts and the
    cascades' sizes count (venue, number) pairs, so two venues' account 3 are two."""
    from crossmargin.analysis.metrics import cascade_sizes
    from crossmargin.analysis.validation.measures import _bystanders, _liquidated

    m = crashed
    ev = m.events[m.events["kind"] == "liquidation"]
    pairs = ev.drop_duplicates(["venue", "account"])
    assert ev["venue"].nunique() == 2
    assert len(pairs) > ev["account"].nunique()  # this run has numbers on both venues
    assert _liquidated(m, 0) == set(zip(pairs["venue"], pairs["account"], strict=True))
    s = m.summary()
    per_venue = sum(v["accounts_liquidated"] for v in s["by_venue"].values())
    assert s["accounts_liquidated"] == len(pairs) == per_venue
    assert cascade_sizes(m.cascade_graph)["accounts"].sum() >= len(pairs)
    held = {
        (v.name, a)
        for v in m.world.venues
        for a in range(v.exchange.ledger.n)
        if v.exchange.ledger.pos[:, a].any() and not v.exchange.ledger.pos[0, a]
    }
    assert _bystanders(m, "BTC") == held
    leveraged = _bystanders(m, "BTC", agent_type="leveraged")
    assert leveraged < held and {v for v, _ in leveraged} == {"binance", "hyperliquid"}


@pytest.mark.parametrize("spot", [False, True])
def test_one_ladder_call_with_a_size_per_side_is_two_calls(spot):
    """``Exchange.requote(..., qty, sell_qty=)`` (a maker whose capacity follows its
    capital quotes each side its own size) rests, rejects and reserves exactly what a
    call per side would: the buys with ``qty`` lots, then the sells with ``sell_qty``."""
    from crossmargin.model.exchange import Exchange
    from crossmargin.model.markets import Market
    from crossmargin.model.orderbook import BUY, SELL

    def venue():
        ex = Exchange([Market("BTC", 1.0, 0.001)], spot=spot)
        ex.marks = np.array([100_000.0])
        maker = ex.ledger.open_account(700.0 if spot else 15.0)  # room for some orders
        if spot:
            ex.deposit_units(maker, 0, 7, 100_000.0)
        return ex, maker

    buys, sells = [(BUY, 99_990), (BUY, 99_980), (BUY, 99_970)], [(SELL, 100_010), (SELL, 100_020)]
    one, a = venue()
    got = one.requote(a, 0, [], buys + sells, 3, sell_qty=5)
    two, b = venue()
    want = two.requote(b, 0, [], buys, 3) + two.requote(b, 0, [], sells, 5)
    assert got == want and 0 < sum(1 for x in got if x) < len(got)  # some rest, some not
    sizes = [one.books[0].order(x)[1:] for x in got if x]  # (side, price, lots)
    assert sizes == [two.books[0].order(x)[1:] for x in want if x]
    assert {(side, lots) for side, _, lots in sizes} == {(BUY, 3), (SELL, 5)}
    assert one.order_margin == two.order_margin and one._reserved == two._reserved


@settings(max_examples=60, deadline=None)
@given(
    spot=st.booleans(),
    cash=st.floats(1.0, 3_000.0),
    units=st.integers(0, 20),
    qty=st.integers(1, 6),
    sell=st.integers(1, 6),
    n_buys=st.integers(0, 4),
    n_sells=st.integers(0, 4),
)
def test_one_ladder_call_is_two_calls_for_any_ladder(spot, cash, units, qty, sell, n_buys, n_sells):
    """The property behind the test above, for any cash, stock, sizes and ladder."""
    from crossmargin.model.exchange import Exchange
    from crossmargin.model.markets import Market
    from crossmargin.model.orderbook import BUY, SELL

    def venue():
        ex = Exchange([Market("BTC", 1.0, 0.001)], spot=spot)
        ex.marks = np.array([100_000.0])
        maker = ex.ledger.open_account(cash)
        if spot and units:
            ex.deposit_units(maker, 0, units, 100_000.0)
        return ex, maker

    buys = [(BUY, 99_990 - 10 * k) for k in range(n_buys)]
    sells = [(SELL, 100_010 + 10 * k) for k in range(n_sells)]
    one, a = venue()
    got = one.requote(a, 0, [], buys + sells, qty, sell_qty=sell)
    two, b = venue()
    want = two.requote(b, 0, [], buys, qty) + two.requote(b, 0, [], sells, sell)
    assert got == want
    assert [one.books[0].order(x) for x in got if x] == [two.books[0].order(x) for x in want if x]
    assert one.order_margin == two.order_margin and one._reserved == two._reserved


@settings(max_examples=80, deadline=None)
@given(
    cash=st.floats(2.0, 400.0),
    pos=st.integers(-40, 40),
    qty=st.integers(1, 8),
    quotes=st.lists(
        st.tuples(st.sampled_from([1, -1]), st.integers(-40, 40)), max_size=10, unique=True
    ),
    n_cancel=st.integers(0, 5),
    band=st.sampled_from([None, 0.0002]),
)
def test_a_ladder_call_is_post_only_limits_one_by_one(cash, pos, qty, quotes, n_cancel, band):
    """``Exchange.requote`` for a cross-margined maker (one margin view for the ladder,
    orders posted without the book's own checks) does what cancelling and then placing
    each order with ``Exchange.limit(..., tif=POST_ONLY)`` does: the same orders rest in
    the same queue places, the same are refused (crossing, the price band, the margin
    check counting the orders placed before it), the same open-order margin."""
    from conftest import BTC, ETH
    from crossmargin.model.exchange import Exchange
    from crossmargin.model.orderbook import BUY, POST_ONLY, SELL

    def venue():
        ex = Exchange([BTC, ETH])
        ex.marks = np.array([100_000.0, 3_000.0])
        ex.price_band = band
        other = ex.ledger.open_account(1e9)
        maker = ex.ledger.open_account(cash)
        if pos:  # a position from an earlier fill, both sides booked
            ex.ledger.trade(maker, 0, pos, 100_000.0)
            ex.ledger.trade(other, 0, -pos, 100_000.0)
        ex.limit(other, 0, BUY, 99_995, 5)
        ex.limit(other, 0, SELL, 100_005, 5)
        old = []  # the maker's ladder before the move
        for k in range(5):
            for side, price in ((BUY, 99_990 - 10 * k), (SELL, 100_010 + 10 * k)):
                ex.limit(maker, 0, side, price, 1, tif=POST_ONLY)
                if ex.books[0].last_id:
                    old.append(ex.books[0].last_id)
        return ex, maker, old

    ladder = [(side, 100_000 + 5 * k) for side, k in quotes]
    one, a, old_a = venue()
    got = one.requote(a, 0, old_a[:n_cancel], ladder, qty)
    two, b, old_b = venue()
    assert old_a == old_b
    for oid in old_b[:n_cancel]:
        two.cancel(b, 0, oid)
    want = []
    for side, price in ladder:
        two.limit(b, 0, side, price, qty, tif=POST_ONLY)
        book = two.books[0]
        want.append(book.last_id if book.last_id in book else 0)

    def queues(ex):
        return [o[1:] for o in ex.books[0].queues()]

    assert [bool(x) for x in got] == [bool(x) for x in want]
    assert queues(one) == queues(two)  # (owner, side, price, lots) in queue order
    assert one.order_margin == two.order_margin
    assert sorted((m, v) for m, r in enumerate(one._reserved) for v in r.values()) == sorted(
        (m, v) for m, r in enumerate(two._reserved) for v in r.values()
    )
    # Each refused order is counted once: an order that both crosses and fails the
    # margin check is counted by the book in a ladder call (it refuses crossing orders
    # before any margin is checked) and as the account's rejection by ``limit``.
    refused = [
        int(ex.ledger.orders_rejected[i]) + ex.books[0].rejected_post_only
        for ex, i in ((one, a), (two, b))
    ]
    assert refused[0] == refused[1]
    assert one.books[0].rejected_post_only >= two.books[0].rejected_post_only

    def resting(ex, i):
        return {
            m: sorted(o[1:] for o in map(ex.books[m].order, s) if o)
            for m, s in ex._resting.get(i, {}).items()
            if s
        }

    assert resting(one, a) == resting(two, b)
