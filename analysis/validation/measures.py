"""What each check measures on a model: one job per (design point, seed), run on a
Dask worker, returning plain rows (numbers and lists of numbers).

Every job builds :class:`~crossmargin.model.CrossMarginModel` from a fully resolved
scenario dict; branching designs run a common history once and copy the model
(``copy.deepcopy``: the copies share the random state up to the branch, i.e. common
random numbers).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ...model import CrossMarginModel, Scenario
from ...model.events import LIQUIDATION_KINDS
from ...model.measures import liquidated_accounts
from ...model.orderbook import BUY
from .. import metrics as mx

__all__ = ["HORIZONS", "run_job"]

HORIZONS = (1, 5, 15, 30, 60, 120)
"""Return horizons (minutes) of the aggregational-Gaussianity criterion."""

ACF_R_LAGS = tuple(range(20, 121))
ACF_ABS_LAGS = tuple(range(1, 121))

Row = dict[str, Any]


def run_job(job: dict) -> list[Row]:
    """Run one job (``{"check", "scenario", "seed", "params"}``); return its rows.

    Examples:
        >>> from crossmargin.analysis.validation.criteria import load_criteria
        >>> from crossmargin.analysis.validation.suite import build_jobs
        >>> spec = load_criteria(quick=True, only=["debtrank_prediction"]).checks[0]
        >>> rows = run_job(build_jobs(spec)[0])
        >>> sorted(rows[0])
        ['candidates', 'seed', 'spearman_debtrank', 'spearman_gross']
    """
    fn = JOBS[job["check"]]
    sc = Scenario.from_dict(job["scenario"])
    rows = fn(sc, **job["params"])
    for r in rows:
        r.setdefault("seed", sc.seed)
    return rows


def _run(sc: Scenario, steps: int | None = None) -> CrossMarginModel:
    m = CrossMarginModel(sc)
    m.run_for(sc.steps if steps is None else steps)
    return m


def _liquidated(m: CrossMarginModel, since: int) -> set[tuple[str, int]]:
    """Distinct accounts with a liquidation from step ``since`` on, as (venue, number)
    pairs: account numbers repeat across a world's venues."""
    ev = m.events
    return liquidated_accounts(ev[ev["step"] >= since])


def _bystanders(
    m: CrossMarginModel, market: str, *, agent_type: str | None = None
) -> set[tuple[str, int]]:
    """Accounts of every venue (``agent_type``'s only, if named) with an open position
    but none in ``market``, as (venue, number) pairs."""
    acc = m.accounts() if agent_type is not None else None
    out: set[tuple[str, int]] = set()
    for v in m.world.venues:
        led = v.exchange.ledger
        if acc is None:
            ids = np.arange(led.n)
        else:
            mine = (acc["venue"] == v.name) & (acc["agent_type"] == agent_type)
            ids = acc.loc[mine, "account"].to_numpy(int)
        k = [mk.name for mk in v.exchange.markets].index(market)
        pos = led.pos[:, ids]
        out |= {(v.name, int(a)) for a in ids[(pos != 0).any(axis=0) & (pos[k] == 0)]}
    return out


def _mid(m: CrossMarginModel, k: int) -> float:
    ex = m.exchange
    mid = ex.books[k].mid
    return mid * ex.markets[k].tick if mid is not None else float(m.mark[k])


# ------------------------------------------------------------------ stylized facts


def stylized_facts(sc: Scenario, *, market: str) -> list[Row]:
    """Cont (2001)'s facts on one market's mark returns."""
    df = _run(sc).model_frame()
    p = df[f"{market}_mark"].to_numpy(float)
    r1 = np.diff(np.log(p))
    r5 = mx.log_returns(p, 5)
    vol = df[f"{market}_volume"].to_numpy(float)
    v5 = vol[1 : 1 + 5 * len(r5)].reshape(len(r5), 5).sum(axis=1)
    return [
        {
            "hill_5min": mx.hill_tail_index(r5, tail=0.05),
            "acf_r_20_120": mx.autocorrelation(r1, ACF_R_LAGS).tolist(),
            "acf_abs_1_120": mx.autocorrelation(np.abs(r1), ACF_ABS_LAGS).tolist(),
            "kurtosis_by_horizon": [mx.excess_kurtosis(mx.log_returns(p, h)) for h in HORIZONS],
            "corr_volume_absret_5min": float(np.corrcoef(np.abs(r5), v5)[0, 1]),
        }
    ]


# ------------------------------------------------------------------ impact


def sqrt_impact(
    sc: Scenario, *, market: str, warmup: int, participation: float, sizes: list[float]
) -> list[Row]:
    """Metaorders at fixed participation, each on a copy of the same warmed-up model,
    against a control copy without one."""
    k = sc.market_names.index(market)
    base = _run(sc, warmup)
    df = base.model_frame()
    per_min = float(df[f"{market}_volume"].mean())
    daily = per_min * 1440
    mid0 = _mid(base, k)
    durations = [max(1, math.ceil(f * 1440 / participation)) for f in sizes]
    control = copy.deepcopy(base)
    ctrl_mid = []
    for _ in range(max(durations)):
        control.run_for(1)
        ctrl_mid.append(_mid(control, k))
    rows = []
    for f, T in zip(sizes, durations, strict=True):
        m = copy.deepcopy(base)
        ex = m.exchange
        lot = ex.markets[k].lot
        usd = f * daily
        acct = ex.ledger.open_account(10 * usd)
        total = round(usd / (lot * mid0))
        done = 0
        for t in range(T):
            q = (total * (t + 1)) // T - done
            done += q
            if q > 0:
                ex.market_order(acct, k, BUY, q)
            m.run_for(1)
        bought = int(ex.ledger.pos[k, acct])
        rows.append(
            {
                "level": f,
                "minutes": T,
                "impact_by_size": (_mid(m, k) - ctrl_mid[T - 1]) / mid0,
                "filled_share": bought / total if total else math.nan,
            }
        )
    return rows


# ------------------------------------------------------------------ leverage


def leverage_tails(sc: Scenario, *, level: float) -> list[Row]:
    """Tail heaviness and volatility clustering of every market's mark returns."""
    m = _run(sc)
    df = m.model_frame()
    kurt, clus = [], []
    for name in sc.market_names:
        p = df[f"{name}_mark"].to_numpy(float)
        kurt.append(mx.excess_kurtosis(mx.log_returns(p, 5)))
        r1 = np.abs(np.diff(np.log(p)))
        clus.append(float(np.nanmean(mx.autocorrelation(r1, range(1, 31)))))
    acc = m.accounts()
    lev = acc.loc[acc["agent_type"] == "leveraged", "leverage"]
    lev = lev[np.isfinite(lev)]
    return [
        {
            "level": level,
            "kurtosis_5min": float(np.mean(kurt)),
            "clustering_1_30": float(np.mean(clus)),
            "liquidations": int(m.summary()["liquidations"]),
            "leverage_p99_end": float(np.quantile(lev, 0.99)) if len(lev) else math.nan,
        }
    ]


# ------------------------------------------------------------------ Caccioli et al.


def overlapping_portfolios(
    sc: Scenario, *, level: float, diversification: int, shock_step: int, cascade_share: float
) -> list[Row]:
    """Global cascade: ≥ ``cascade_share`` of the leveraged accounts without a position
    in the shocked market (market 0) liquidated from the shock on (in a world of venues,
    the leveraged accounts of every venue, each judged by its own positions)."""
    m = _run(sc, shock_step - 1)
    unexposed = _bystanders(m, sc.market_names[0], agent_type="leveraged")
    m.run_for(sc.steps - shock_step + 1)
    hit = _liquidated(m, shock_step)
    share = len(hit & unexposed) / len(unexposed) if unexposed else 0.0
    return [
        {
            "level": level,
            "diversification": diversification,
            "unexposed": len(unexposed),
            "unexposed_liquidated_share": share,
            "liquidated": len(hit),
            "global_cascade": bool(share >= cascade_share),
        }
    ]


# ------------------------------------------------------------------ DebtRank


def _liquidated_notional(
    m: CrossMarginModel, since: int, exclude: int, venue: str | None = None
) -> float:
    """Notional force-closed from step ``since`` on, on every venue, except account
    ``exclude`` (of ``venue``: account numbers repeat across a world's venues)."""
    f = _forced(m, since)
    own = f["account"] == exclude
    if venue is not None:
        own &= f["venue"] == venue
    return float(f.loc[~own, "notional"].sum())


def debtrank_prediction(
    sc: Scenario, *, fail_step: int, horizon: int, candidates: int
) -> list[Row]:
    """Rank correlation between DebtRank and the cascade each candidate's failure causes.

    In a world of venues the exposure graph spans every venue (``venue:account:N``
    nodes, one owner's accounts joined), and the candidates are the leveraged accounts
    of every venue: a candidate fails on its own venue, and the cascade counts forced
    closes on all of them."""
    base = _run(sc, fail_step)
    acc = base.accounts().set_index(["venue", "account"])
    dr = mx.exposure_debtrank(base.exposure_graph, top=10**9)
    node = dr["node"].str.extract(r"^(?:(?P<venue>[^:]+):)?account:(?P<account>\d+)$")
    dr = dr.assign(
        venue=node["venue"].fillna(base.world.home.name), account=node["account"]
    ).dropna(subset="account")
    dr = dr.astype({"account": int}).set_index(["venue", "account"])
    lev = acc.loc[dr.index, "agent_type"].to_numpy() == "leveraged"
    cand = dr[lev].sort_values("gross", ascending=False).head(candidates)
    since = fail_step + 1
    control = copy.deepcopy(base)
    control.run_for(horizon)
    ctrl = _liquidated_notional(control, since, -1)
    rows = []
    for (venue, a), row in cand.iterrows():
        m = copy.deepcopy(base)
        eq, mm = (
            float(acc.loc[(venue, a), "equity"]),
            float(acc.loc[(venue, a), "maintenance_margin"]),
        )
        m.withdraw(int(a), max(0.0, eq - 0.25 * mm), venue=venue)
        m.run_for(horizon)
        rows.append(
            {
                "venue": venue,
                "account": int(a),
                "debtrank": float(row["debtrank"]),
                "gross": float(row["gross"]),
                "cascade": _liquidated_notional(m, since, int(a), venue)
                - _liquidated_notional(control, since, int(a), venue),
                "control": ctrl,
            }
        )
    cascade = np.array([r["cascade"] for r in rows])
    same = len(rows) < 3 or np.ptp(cascade) == 0

    def rho(key: str) -> float:
        return 0.0 if same else float(stats.spearmanr([r[key] for r in rows], cascade).statistic)

    return [
        {
            "spearman_debtrank": rho("debtrank"),
            "spearman_gross": rho("gross"),
            "candidates": rows,
        }
    ]


# ------------------------------------------------------------------ cascades


def endogenous_sizes(g) -> list[float]:
    """Per cascade, its distinct accounts less those whose first liquidation in it names
    the shock itself as a direct cause (the shock's own direct liquidations); cascades
    left with none are dropped."""
    from ...model.contagion import account_of, cascades, liquidation_tree

    parents, _ = liquidation_tree(g)
    out = []
    for comp in cascades(g, parents):
        first: dict[tuple[str, int], Any] = {}
        for h in sorted(comp, key=int):
            first.setdefault(account_of(g, h), h)
        n = sum(
            1
            for h in first.values()
            if not any(g.nodes[c]["kind"] == "shock" for c in g.predecessors(h))
        )
        if n:
            out.append(float(n))
    return out


def cascade_sizes_strict(sc: Scenario) -> list[Row]:
    """The run with its shock and the same seed without it (the control): cascade sizes,
    endogenous sizes and the branching ratio of each."""
    rows = []
    for variant, scenario in (("shock", sc), ("control", sc.replace(shocks=[]))):
        m = _run(scenario)
        g = m.cascade_graph
        rows.append(
            {
                "variant": variant,
                "cascade_accounts": mx.cascade_sizes(g)["accounts"].astype(float).tolist(),
                "cascade_accounts_endogenous": endogenous_sizes(g),
                "branching": float(m.summary()["cascade_mean_branching"]),
                "liquidations": int(m.summary()["liquidations"]),
            }
        )
    return rows


def cascade_sizes(sc: Scenario) -> list[Row]:
    """Cascade sizes (accounts) and the branching ratio of one run."""
    m = _run(sc)
    cs = mx.cascade_sizes(m.cascade_graph)
    s = m.summary()
    return [
        {
            "cascade_accounts": cs["accounts"].astype(float).tolist(),
            "branching": float(s["cascade_mean_branching"]),
            "liquidations": int(s["liquidations"]),
        }
    ]


# ------------------------------------------------------------------ resilience


def recovery_times(
    x: np.ndarray, events: list[int], clock: np.ndarray, *, pre: int, window: int
) -> tuple[list[float], list[float], list[int]]:
    """For each event row: steps and clock units (e.g. orders submitted) from the event
    until the series has recovered half of what it lost against its mean over ``pre``
    rows before; 0 when it did not fall by 5%; censored (observed 0) at ``window``.

    Examples:
        >>> x = np.array([10, 10, 10, 4, 6, 8, 10.0])
        >>> recovery_times(x, [3], np.ones(7), pre=3, window=4)
        ([2.0], [2.0], [1])
    """
    steps, units, observed = [], [], []
    cum = np.concatenate([[0.0], np.cumsum(clock)])
    for e in events:
        if e < pre or e >= len(x):
            continue
        base = float(np.mean(x[e - pre : e]))
        seg = x[e : e + window + 1]
        t = int(np.argmin(seg))
        trough = float(seg[t])
        if trough >= 0.95 * base:
            steps.append(0.0)
            units.append(0.0)
            observed.append(1)
            continue
        target = trough + 0.5 * (base - trough)
        ok = np.flatnonzero(seg[t:] >= target)
        k = t + int(ok[0]) if len(ok) else len(seg) - 1
        steps.append(float(k))
        units.append(float(cum[e + k + 1] - cum[e + 1]))
        observed.append(1 if len(ok) else 0)
    return steps, units, observed


def resilience(sc: Scenario, *, stress: dict, window: int, market: str = "BTC") -> list[Row]:
    """(a) after large trades, in event time; (b) depth an hour after a shock."""
    k = sc.market_names.index(market)
    m = CrossMarginModel(sc)
    book = m.exchange.books[k]
    orders = np.zeros(sc.steps)
    for t in range(sc.steps):
        before = book.orders_submitted
        m.run_for(1)
        orders[t] = book.orders_submitted - before
    df = m.model_frame()
    depth = df[f"{market}_depth1"].to_numpy(float)
    events = [s - 1 for s in mx.large_trades(m.trades, market=k, quantile=0.995)]
    steps, units, obs = recovery_times(depth, events, orders, pre=5, window=window)
    # (b) the stress run
    st = Scenario.from_dict(stress)
    ms = _run(st)
    ds = ms.model_frame()[f"{market}_depth1"].to_numpy(float)
    e = st.shocks[0].step - 1
    retained = mx.depth_retained(ds, e, after=60, pre=30, window=10)
    s_steps, _, s_obs = recovery_times(ds, [e], np.ones(len(ds)), pre=30, window=len(ds) - e - 1)
    return [
        {
            "depth_half_life_updates": units,
            "depth_half_life_updates_observed": obs,
            "depth_half_life_steps": steps,
            "orders_per_step": float(orders.mean()),
            "depth_retained_1h": math.nan if retained is None else retained,
            "stress_recovery_steps": s_steps[0] if s_steps else math.nan,
            "stress_recovery_observed": s_obs[0] if s_obs else 0,
        }
    ]


# ------------------------------------------------------------------ robust yet fragile


def _losses(m: CrossMarginModel) -> dict[str, float]:
    s = m.summary()
    return {
        "bad_debt": s["bad_debt"],
        "fund_paid": s["fund_paid"],
        "adl_charged": s["adl_charged"],
        "socialized": s["socialized_loss"],
        "vault_pnl": s["vault_pnl"],
    }


def robust_yet_fragile(
    sc: Scenario,
    *,
    shock_step: int,
    shock_duration: int,
    single_market: str,
    single_sizes: list[float],
    wide_sizes: list[float],
    control: bool = False,
) -> list[Row]:
    """One history to ``shock_step − 1``, then one copy per shock (and, with
    ``control``, one copy that gets no shock: kind ``control``, size 0)."""
    base = _run(sc, shock_step - 1)
    before = _losses(base)
    no_alt = _bystanders(base, single_market)
    rows = []
    branches = [("single", s) for s in single_sizes] + [("wide", s) for s in wide_sizes]
    if control:
        branches.append(("control", 0.0))
    for kind, size in branches:
        m = copy.deepcopy(base)
        if kind != "control":
            shock = {"kind": "index_jump", "step": shock_step, "size": size}
            shock |= {"duration": shock_duration}
            if kind == "single":
                shock |= {"markets": [single_market], "beta_scaled": False}
            m.add_shock(shock)
        m.run_for(sc.steps - shock_step + 1)
        after = _losses(m)
        d = {key: after[key] - before[key] for key in after}
        hit = _liquidated(m, shock_step)
        rows.append(
            {
                "margin_mode": sc.margin_mode,
                "kind": kind,
                "size": size,
                "accounts_liquidated": len(hit),
                "deadweight_loss": d["bad_debt"]
                + d["fund_paid"]
                + d["adl_charged"]
                + d["socialized"]
                + max(0.0, -d["vault_pnl"]),
                "unexposed_liquidated": len(hit & no_alt) if kind != "wide" else math.nan,
            }
            | {f"loss_{key}": v for key, v in d.items()}
        )
    return rows


# ------------------------------------------------------------------ event score cards


def _forced(m: CrossMarginModel, since: int, until: int | None = None):
    ev = m.events
    sel = ev["kind"].isin(LIQUIDATION_KINDS) & (ev["qty"] > 0) & (ev["step"] >= since)
    if until is not None:
        sel &= ev["step"] < until
    return ev[sel]


def oct2025_scorecard(sc: Scenario, *, onset: int) -> list[Row]:
    """The October 2025 preset's quantities of :file:`events.toml`."""
    m = CrossMarginModel(sc)
    m.run_for(onset - 1)
    vault0 = float(m.summary()["vault_pnl"])
    calm = m.model_frame()
    calm_liq = len(_liquidated(m, 0))
    m.run_for(sc.steps - onset + 1)
    df = m.model_frame().set_index("t")
    f = _forced(m, onset)
    total = float(f["notional"].sum())
    first = float(f.loc[f["step"] < onset + 40, "notional"].sum())
    longs = float(f.loc[f["side"] == 1, "notional"].sum())
    adl = float(f.loc[f["kind"] == "adl", "notional"].sum())
    oi = df["open_interest"]
    depth = df["BTC_depth1"].to_numpy(float)
    kept = mx.depth_retained(depth, onset - 1, after=60, pre=30, window=10)
    # Descriptive, not criteria: the depth path over the hours after the fall, and its
    # low in the first 40 minutes (Kaiko: top-of-book depth fell 90%+ for minutes).
    later = {
        h: mx.depth_retained(depth, onset - 1, after=60 * h, pre=30, window=10) for h in (2, 3)
    }
    pre_depth = float(np.nanmean(depth[onset - 31 : onset - 1]))
    cp = df.loc[onset:, "collateral_price"]
    low_t = int(cp.idxmin())
    back = cp.loc[low_t:][cp.loc[low_t:] >= 0.97]
    return [
        {
            "first40_share": first / total if total else math.nan,
            "long_share": longs / total if total else math.nan,
            "oi_change": float(oi.iloc[-1] / oi.loc[onset - 1] - 1),
            "btc_depth_kept_1h": math.nan if kept is None else kept,
            "btc_depth_kept_2h": math.nan if later[2] is None else later[2],
            "btc_depth_kept_3h": math.nan if later[3] is None else later[3],
            "btc_depth_low_40m": float(np.nanmin(depth[onset - 1 : onset + 39]) / pre_depth),
            "collateral_low": float(cp.min()),
            "repeg_minutes": [float(back.index[0] - low_t if len(back) else sc.steps - low_t)],
            "repeg_minutes_observed": [1 if len(back) else 0],
            "adl_share": adl / total if total else math.nan,
            "vault_pnl": float(m.summary()["vault_pnl"]) - vault0,
            "liquidated_notional": total,
            "calm_liquidations_per_day": calm_liq * 1440 / (onset - 1),
            "calm_hill_5min": mx.hill_tail_index(mx.log_returns(calm["BTC_mark"].to_numpy(), 5)),
        }
    ]


def black_thursday_scorecard(
    sc: Scenario,
    *,
    leg1: int,
    leg2: int,
    outage: int,
    outage_minutes: int,
    control: bool = False,
) -> list[Row]:
    """The Black Thursday preset's quantities of :file:`events.toml`; with ``control``
    also the same seed with the halt removed, and the halt's effect on the notional
    liquidated from the outage's start to an hour after its end."""
    m = CrossMarginModel(sc)
    m.run_for(sc.steps)
    s = m.summary()
    f = _forced(m, 0)
    first = float(f.loc[(f["step"] >= leg1) & (f["step"] < leg2), "notional"].sum())
    second = float(f.loc[f["step"] >= leg2, "notional"].sum())
    total = float(f["notional"].sum())
    during = (f["step"] >= outage) & (f["step"] < outage + outage_minutes)
    extra: Row = {}
    if control:
        window = (outage, outage + outage_minutes + 60)
        without = _run(sc.replace(shocks=[x for x in sc.shocks if x.kind != "halt"]))
        with_halt = float(_forced(m, *window)["notional"].sum())
        no_halt = float(_forced(without, *window)["notional"].sum())
        extra = {
            "halt_effect": with_halt - no_halt,
            "window_liquidated_with_halt": with_halt,
            "window_liquidated_without_halt": no_halt,
        }
    return [
        extra
        | {
            "leg_ratio": second / first if first else math.nan,
            "adl_share": float(f.loc[f["kind"] == "adl", "notional"].sum()) / total
            if total
            else math.nan,
            "fund_kept": s["insurance_fund_end"] / s["insurance_fund_start"]
            if s["insurance_fund_start"]
            else math.nan,
            "outage_liquidated": float(f.loc[during, "notional"].sum()),
            "liquidated_notional": total,
        }
    ]


# ------------------------------------------------------------------ fire-sale correlation


def _mean_pairwise_correlation(df: pd.DataFrame, markets: list[str], lo: int, hi: int) -> float:
    """Mean pairwise Pearson correlation of 1-minute log returns of the index this
    venue sees, over the steps ``lo <= t <= hi`` (NaN pairs dropped)."""
    w = df[(df["t"] >= lo) & (df["t"] <= hi)]
    r = np.diff(np.log(w[[f"{m}_index" for m in markets]].to_numpy(float)), axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = np.corrcoef(r.T)
    iu = np.triu_indices(len(markets), 1)
    return float(np.nanmean(c[iu]))


def firesale_correlation(
    sc: Scenario, *, weights: list[float], post_window: list[int], calm_window: list[int]
) -> list[Row]:
    """The same seed with the index deaf to the venue (weight 0) and listening to it:
    excess correlation of index returns in the fall and the hour after, and in the calm
    hours before (Cont & Wagalath 2013)."""
    w0, w1 = weights
    rho = {}
    for w in (w0, w1):
        df = _run(sc.replace(index_venue_weight=w)).model_frame()
        names = sc.market_names
        rho[w] = (
            _mean_pairwise_correlation(df, names, *post_window),
            _mean_pairwise_correlation(df, names, calm_window[0], calm_window[1] - 1),
        )
    return [
        {
            "excess_post": rho[w1][0] - rho[w0][0],
            "excess_calm": rho[w1][1] - rho[w0][1],
            "rho_post_deaf": rho[w0][0],
            "rho_post_listening": rho[w1][0],
            "rho_calm_deaf": rho[w0][1],
            "rho_calm_listening": rho[w1][1],
        }
    ]


# ------------------------------------------------------------------ a world of venues


def _col(m: CrossMarginModel, venue: str, name: str) -> str:
    """The wide frame's column ``name`` of ``venue``."""
    return name if venue == m.world.home.name else f"{venue}:{name}"


def mv_price_gaps(sc: Scenario, *, shock_step: int, market: str, control: bool) -> list[Row]:
    """Cross-venue gaps in the calm hours before a crash, the dislocation in the hour
    after it against the same seed without it, and the time to reconverge (issue #25,
    ``multivenue.toml``)."""
    rows = []
    runs = [("shock", sc)] + ([("control", sc.replace(shocks=[]))] if control else [])
    for variant, s in runs:
        df = _run(s).model_frame()
        t = df["t"].to_numpy()
        gap = df[f"world:{market}_spot_gap"].to_numpy(float)
        disl = df[f"world:{market}_dislocation"].to_numpy(float)
        calm = (t >= 60) & (t < shock_step)
        post = (t >= shock_step) & (t < shock_step + 60)
        base = float(np.nanquantile(disl[calm], 0.95))
        after = disl[t >= shock_step]
        below = after < 2 * base
        run = np.convolve(below.astype(int), np.ones(10, dtype=int), mode="valid")
        hit = np.flatnonzero(run == 10)
        rows.append(
            {
                "variant": variant,
                "calm_gap_p95": float(np.nanquantile(gap[calm], 0.95)),
                "dislocation_post": float(np.nanmean(disl[post])),
                "dislocation_calm_p95": base,
                "reconverge_minutes": float(hit[0]) if len(hit) else float(len(after)),
            }
        )
    return rows


def mv_liquidity_spiral(
    sc: Scenario, *, shock_step: int, window: int, market: str, variant: str
) -> list[Row]:
    """Illiquidity (quoted spread, mean over perpetual venues) against margin use (Σ MM
    over Σ positive equity of accounts with positions on the perpetual venues) over the
    window after the shock, and the notional liquidated there (Brunnermeier & Pedersen
    2009)."""
    if variant == "instant":
        sc = sc.replace(
            **{"transfers.delay_mean": 0.0, "transfers.delay_min": 0},
            shocks=[x for x in sc.shocks if x.kind != "withdrawal_halt"],
        )
    m = CrossMarginModel(sc)
    m.run_for(shock_step - 1)
    k = sc.market_names.index(market)
    spread, use = [], []
    for _ in range(window):
        m.run_for(1)
        bps, mm, eq = [], 0.0, 0.0
        for v in m.world.perp:
            mid = v.mid[k]
            book = v.exchange.books[k]
            if book.spread is not None and mid == mid:
                bps.append(1e4 * book.spread * v.exchange.markets[k].tick / mid)
            val = v.val
            has = val.gross > 0
            mm += float(val.mm[has].sum())
            eq += float(np.maximum(val.equity[has], 0.0).sum())
        spread.append(float(np.mean(bps)) if bps else math.nan)
        use.append(mm / eq if eq > 0 else math.nan)
    x, y = np.array(spread), np.array(use)
    ok = np.isfinite(x) & np.isfinite(y)
    corr = float(np.corrcoef(x[ok], y[ok])[0, 1]) if ok.sum() > 2 else math.nan
    ev = m.events
    perps = [v.name for v in m.world.perp]
    sel = (
        ev["kind"].isin(LIQUIDATION_KINDS)
        & ev["venue"].isin(perps)
        & (ev["step"] >= shock_step)
        & (ev["step"] < shock_step + window)
    )
    return [
        {
            "variant": variant,
            "spiral_corr": corr,
            "liquidated_notional": float(ev.loc[sel, "notional"].sum()),
            "transfers": int(m.world.treasury.count),
        }
    ]


def mv_impact_travels(
    sc: Scenario, *, market: str, warmup: int, participation: float, sizes: list[float]
) -> list[Row]:
    """Sell programs of several sizes on the first spot venue at a fixed participation,
    each on a copy of the same warmed-up world, against a control copy: the impact on
    the venue sold on and on the other spot venues (their mids)."""
    k = sc.market_names.index(market)
    base = _run(sc.replace(shocks=[]), warmup)
    spot = [v.name for v in base.world.spot]
    own, others = spot[0], spot[1:]
    df = base.model_frame()
    per_min = float(df[_col(base, own, f"{market}_volume")].mean())
    daily = per_min * 1440
    mid0 = {v: float(base.venue(v).quote()[k]) for v in spot}
    durations = [max(1, math.ceil(f * 1440 / participation)) for f in sizes]
    control = copy.deepcopy(base)
    ctrl = []
    for _ in range(max(durations)):
        control.run_for(1)
        ctrl.append({v: float(control.venue(v).quote()[k]) for v in spot})
    own_impact, other_impact = [], []
    for f, T in zip(sizes, durations, strict=True):
        m = copy.deepcopy(base)
        m.add_shock(
            {
                "kind": "sell_program",
                "venue": own,
                "market": market,
                "notional": f * daily,
                "step": m.t + 1,
                "duration": T,
            }
        )
        m.run_for(T)
        now = {v: float(m.venue(v).quote()[k]) for v in spot}
        c = ctrl[T - 1]
        own_impact.append((c[own] - now[own]) / mid0[own])
        other_impact.append(float(np.median([(c[v] - now[v]) / mid0[v] for v in others])))
    x, y = np.log(np.array(sizes)), np.array(own_impact)
    ok = y > 0
    slope = float(np.polyfit(x[ok], np.log(y[ok]), 1)[0]) if ok.sum() >= 3 else math.nan
    ratio = other_impact[-1] / own_impact[-1] if own_impact[-1] > 0 else math.nan
    return [
        {
            "impact_exponent_own": slope,
            "impact_ratio_other": ratio,
            "impact_own": own_impact,
            "impact_other": other_impact,
            "sizes": list(sizes),
            "daily_volume": daily,
        }
    ]


JOBS = {
    "mv_price_gaps": mv_price_gaps,
    "mv_liquidity_spiral": mv_liquidity_spiral,
    "mv_impact_travels": mv_impact_travels,
    "stylized_facts": stylized_facts,
    "sqrt_impact": sqrt_impact,
    "leverage_tails": leverage_tails,
    "overlapping_portfolios": overlapping_portfolios,
    "debtrank_prediction": debtrank_prediction,
    "cascade_sizes": cascade_sizes,
    "cascade_sizes_strict": cascade_sizes_strict,
    "resilience": resilience,
    "robust_yet_fragile": robust_yet_fragile,
    "oct2025_scorecard": oct2025_scorecard,
    "black_thursday_scorecard": black_thursday_scorecard,
    "firesale_correlation": firesale_correlation,
}
