"""Metrics computed from the files a run or a sweep writes (pure functions).

Everything here takes DataFrames, arrays or networkx graphs as read from
``model.parquet``, ``events.parquet``, ``cascade.graphml``, ``exposure.graphml`` and
``summary.parquet``; nothing reaches into a live model. The headline definitions
(liquidations and accounts liquidated, the branching ratio, losses by bearer, depth
retained, half-life) live in :mod:`model.measures`, the one module the model's summary
uses too, and are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import networkx as nx
import numpy as np
import pandas as pd

from ..model import measures
from ..model.collect import LEVERAGE_COLUMNS
from ..model.contagion import ROOT, account_of, cascade_metrics, cascades, liquidation_tree
from ..model.measures import (
    accounts_liquidated,
    depth_retained,
    half_life,
    liquidation_count,
    long_share,
    max_drawdown,
)

# --------------------------------------------------------------------- cascades


def cascade_sizes(g: nx.DiGraph) -> pd.DataFrame:
    """One row per cascade (:func:`model.contagion.cascades`): distinct accounts,
    liquidations (waterfall entries), liquidated notional, loss, depth in generations,
    and whether a shock set it off; largest notional first.

    Examples:
        >>> from crossmargin.model.contagion import EventLog, build_cascade_graph
        >>> log = EventLog(["venue"])
        >>> s = log.add("shock", step=1, round=0)
        >>> h1 = log.add("liquidation", step=1, round=0, account=1, causes=(s,), notional=1000.0)
        >>> f = log.add("full", step=1, round=0, account=1, causes=(h1,))
        >>> h2 = log.add("liquidation", step=1, round=1, account=2, causes=(f,), notional=400.0)
        >>> h3 = log.add("liquidation", step=2, round=0, account=3, notional=100.0)
        >>> cascade_sizes(build_cascade_graph(log, {}))[["accounts", "notional", "depth", "shock"]]
           accounts  notional  depth  shock
        0         2    1400.0      2   True
        1         1     100.0      1  False
    """
    parents, generation = liquidation_tree(g)
    rows = []
    for heads in cascades(g, parents):
        rows.append(
            {
                "accounts": len({account_of(g, h) for h in heads}),
                "liquidations": len(heads),
                "notional": float(sum(g.nodes[h]["notional"] for h in heads)),
                "loss": float(sum(g.nodes[h]["loss"] for h in heads)),
                "depth": 1 + max(generation[h] for h in heads),
                "shock": any(
                    g.nodes[c]["kind"] == "shock" for h in heads for c in g.predecessors(h)
                ),
            }
        )
    cols = ["accounts", "liquidations", "notional", "loss", "depth", "shock"]
    return pd.DataFrame(rows, columns=cols).sort_values(
        "notional", ascending=False, ignore_index=True
    )


def branching_by_generation(g: nx.DiGraph) -> pd.DataFrame:
    """Liquidations per generation of the cascade graph and their mean child
    liquidations (:func:`model.measures.branching_by_generation`); the last row, ``all``,
    is the run's branching ratio (:func:`model.measures.branching_ratio`, the summary's
    ``cascade_mean_branching``).

    Examples:
        >>> from crossmargin.model.contagion import EventLog, build_cascade_graph
        >>> log = EventLog(["venue"])
        >>> h1 = log.add("liquidation", step=1, round=0, account=1)
        >>> f = log.add("full", step=1, round=0, account=1, causes=(h1,))
        >>> h2 = log.add("liquidation", step=1, round=1, account=2, causes=(f,))
        >>> h3 = log.add("liquidation", step=2, round=0, account=3)
        >>> branching_by_generation(build_cascade_graph(log, {})).round(3)
          generation  liquidations  branching
        0          0             2      0.500
        1          1             1      0.000
        2        all             3      0.333
    """
    parents, generation = liquidation_tree(g)
    df = measures.branching_by_generation(parents, generation)
    if not len(df):
        return df
    df["generation"] = df["generation"].astype(object)
    df.loc[len(df)] = {
        "generation": "all",
        "liquidations": int(df["liquidations"].sum()),
        "branching": measures.branching_ratio(parents),
    }
    return df


def summary_cascade(g: nx.DiGraph) -> dict[str, float]:
    """Depth, largest cascade (accounts) and branching ratio (as in ``summary()``).

    Examples:
        >>> from crossmargin.model.contagion import EventLog, build_cascade_graph
        >>> log = EventLog(["venue"])
        >>> h1 = log.add("liquidation", step=1, round=0, account=1)
        >>> f = log.add("full", step=1, round=0, account=1, causes=(h1,))
        >>> h2 = log.add("liquidation", step=1, round=1, account=2, causes=(f,))
        >>> summary_cascade(build_cascade_graph(log, {}))
        {'max_depth': 2, 'largest_size': 2, 'mean_branching': 0.5}
    """
    m = cascade_metrics(g)
    return {k: m[k] for k in ("max_depth", "largest_size", "mean_branching")}


def loss_shares(events: pd.DataFrame, model: pd.DataFrame | None = None) -> pd.Series:
    """The ``share`` column of :func:`loss_table` by bearer (adds up to 1, or all zero
    when nothing was lost).

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> shares = loss_shares(m.events, m.model_frame())
        >>> round(float(shares.sum()), 9), shares.index[0]
        (1.0, 'insurance_fund')
    """
    return loss_table(events, model).set_index("bearer")["share"].drop("total")


def loss_table(events: pd.DataFrame, model: pd.DataFrame | None = None) -> pd.DataFrame:
    """:func:`model.measures.loss_table` with the vault's and the insurance fund's P&L
    and the pool's net write-down read from the last row of ``model.parquet`` (a folder
    written before ``fund_pnl`` existed counts the fund's shortfall payments only; one
    written before ``pool_recovery_rate`` existed, the pool's falls less its rises).

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> table = loss_table(m.events, m.model_frame())
        >>> list(table["bearer"])
        ['insurance_fund', 'vault', 'adl', 'socialized', 'bad_debt', 'pool_writedown', 'total']
        >>> float(table["share"].iloc[-1])
        1.0
    """
    has = model is not None and len(model) > 0
    vault_pnl = float(model["vault_pnl"].iloc[-1]) if has else 0.0
    fund_pnl = float(model["fund_pnl"].iloc[-1]) if has and "fund_pnl" in model else None
    pool = None
    if has and "pool_recovery_rate" in model:
        last = model.iloc[-1]
        pool = (1.0 - float(last["pool_recovery_rate"])) * float(last["pool_supply"])
    return measures.loss_table(events, vault_pnl=vault_pnl, fund_pnl=fund_pnl, pool_writedown=pool)


def debtrank(
    graph: nx.DiGraph,
    shocked: dict[str, float],
    *,
    weight: str = "weight",
    value: str = "value",
) -> tuple[float, dict[str, float]]:
    """DebtRank (Battiston, Puliga, Kaushik, Tasca & Caldarelli 2012, Sci. Rep. 2:541).

    ``graph`` has an edge ``i → j`` with ``weight`` W_ij = the share of j's capital that
    i's distress puts at risk (the impact of i on j, capped at 1), and node attribute
    ``value`` (economic weight v_i). ``shocked`` gives the initial distress
    h_i(1) ∈ [0, 1]. A node propagates its distress once, in the step after it became
    distressed: h_j(t+1) = min(1, h_j(t) + Σ_{i active} W_ij h_i(t)).

    Returns DebtRank R = Σ_j h_j(T) v_j − Σ_j h_j(1) v_j (value lost beyond the initial
    shock, v normalised to sum to 1) and the final distress of every node.

    Examples:
        >>> g = nx.DiGraph()
        >>> g.add_nodes_from([("a", {"value": 1.0}), ("b", {"value": 1.0}), ("c", {"value": 2.0})])
        >>> g.add_edges_from([("a", "b", {"weight": 0.5}), ("b", "c", {"weight": 1.0})])
        >>> debtrank(g, {"a": 1.0})  # b half distressed, and c through b
        (0.375, {'a': 1.0, 'b': 0.5, 'c': 0.5})
    """
    nodes, W, v = debtrank_matrix(graph, weight=weight, value=value)
    idx = {n: k for k, n in enumerate(nodes)}
    h0 = np.zeros(len(nodes))
    for node, level in shocked.items():
        h0[idx[node]] = min(1.0, max(0.0, level))
    h = propagate(W, h0)
    return float((h - h0) @ v), {x: float(h[idx[x]]) for x in nodes}


def debtrank_matrix(
    graph: nx.DiGraph, *, weight: str = "weight", value: str = "value"
) -> tuple[list, np.ndarray, np.ndarray]:
    """(nodes, impact matrix W, normalised values v) of a DebtRank graph.

    Examples:
        >>> g = nx.DiGraph()
        >>> g.add_nodes_from([("a", {"value": 1.0}), ("b", {"value": 3.0})])
        >>> g.add_edge("a", "b", weight=2.0)  # capped at 1: b's whole capital at risk
        >>> nodes, W, v = debtrank_matrix(g)
        >>> nodes, W.tolist(), v.tolist()
        (['a', 'b'], [[0.0, 1.0], [0.0, 0.0]], [0.25, 0.75])
    """
    nodes = list(graph.nodes)
    idx = {n: k for k, n in enumerate(nodes)}
    n = len(nodes)
    W = np.zeros((n, n))
    for i, j, d in graph.edges(data=True):
        W[idx[i], idx[j]] = min(1.0, float(d.get(weight, 0.0)))
    v = np.array([float(graph.nodes[x].get(value, 1.0)) for x in nodes])
    v = v / v.sum() if v.sum() > 0 else np.full(n, 1 / n)
    return nodes, W, v


def propagate(W: np.ndarray, h0: np.ndarray) -> np.ndarray:
    """The DebtRank dynamics from initial distress ``h0``; returns the final distress.

    Examples:
        >>> W = np.array([[0.0, 0.5, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
        >>> propagate(W, np.array([1.0, 0.0, 0.0]))
        array([1. , 0.5, 0.5])
    """
    h = h0.copy()
    state = np.where(h > 0, 1, 0)  # 0 undistressed, 1 distressed (acts next), 2 inactive
    for _ in range(len(h) + 1):
        active = state == 1
        if not active.any():
            break
        h_new = np.minimum(1.0, h + W[active].T @ h[active])
        state = np.where(active, 2, state)
        state = np.where((state == 0) & (h_new > 0), 1, state)
        h = h_new
    return h


def exposure_debtrank(g: nx.Graph, *, shock: float = 0.1, top: int = 30) -> pd.DataFrame:
    """Systemic importance on a run's exposure graph: for the ``top`` accounts and
    pools by gross exposure, the DebtRank when each alone starts fully distressed.

    The bipartite account–market graph becomes a DebtRank graph: an account's
    distress hits each market in proportion to its share of that market's gross
    exposure (its forced selling moves the price), and a market's distress hits an
    account by ``shock`` × its exposure there relative to its equity (overlapping
    portfolios, Caccioli et al. 2014). Economic value is the gross exposure.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> ranked = exposure_debtrank(m.exposure_graph, top=3)
        >>> list(ranked.columns), len(ranked)
        (['node', 'debtrank', 'gross', 'kind'], 3)
    """
    holders = [n for n, d in g.nodes(data=True) if d.get("kind") in ("account", "pool")]
    markets = [n for n, d in g.nodes(data=True) if d.get("kind") == "market"]
    gross = dict.fromkeys(holders, 0.0)
    market_gross = dict.fromkeys(markets, 0.0)
    positions = []
    for u, v, e in g.edges(data=True):
        if e.get("kind") == "position":
            a, m = (u, v) if u in gross else (v, u)
            w = float(e["weight"])
            gross[a] += w
            market_gross[m] += w
            positions.append((a, m, w))
    d = nx.DiGraph()
    for a in holders:
        d.add_node(a, value=gross[a])
    for m in markets:
        d.add_node(m, value=0.0)
    for a, m, w in positions:
        if market_gross[m] > 0:
            d.add_edge(a, m, weight=w / market_gross[m])
        attrs = g.nodes[a]
        equity = float(attrs.get("equity", attrs.get("balance", 0.0)))
        d.add_edge(m, a, weight=min(1.0, shock * w / equity) if equity > 0 else 1.0)
    nodes, W, v = debtrank_matrix(d)
    idx = {n: k for k, n in enumerate(nodes)}
    rows = []
    for a in sorted((a for a in holders if gross[a] > 0), key=lambda a: -gross[a])[:top]:
        h0 = np.zeros(len(nodes))
        h0[idx[a]] = 1.0
        h = propagate(W, h0)
        rows.append(
            {
                "node": a,
                "debtrank": float((h - h0) @ v),
                "gross": gross[a],
                "kind": g.nodes[a].get("agent", g.nodes[a].get("kind")),
            }
        )
    return pd.DataFrame(rows, columns=["node", "debtrank", "gross", "kind"]).sort_values(
        "debtrank", ascending=False, ignore_index=True
    )


# ------------------------------------------------------------------ resilience


def spread_half_life(
    series: Sequence[float], event: int, *, pre: int = 30, window: int = 240
) -> float | None:
    """As :func:`half_life` for a quantity that rises after a shock (the spread): steps
    after its peak until half of the excess over the pre-event mean is gone.

    Examples:
        >>> spread = [1.0] * 10 + [5.0, 3.0, 2.0, 1.5, 1.2] + [1.0] * 10
        >>> spread_half_life(spread, 10, pre=5, window=15)  # below 3 one step after the peak
        1.0
    """
    x = -np.asarray(series, dtype=float)
    return half_life(x - np.nanmin(x) + 1.0, event, pre=pre, window=window)


def replenishment_probability(
    depth: Sequence[float],
    events: Sequence[int],
    *,
    pre: int = 30,
    window: int = 60,
    level: float = 0.9,
) -> float:
    """Share of events after which depth gets back to ``level`` × its pre-event mean
    within ``window`` steps (Large 2007: books often fail to replenish reliably).

    Examples:
        >>> depth = [10.0] * 10 + [4.0] * 10 + [9.5] * 10
        >>> replenishment_probability(depth, [10], pre=5, window=15)  # back to 90% of 10
        1.0
        >>> replenishment_probability(depth, [10], pre=5, window=15, level=0.99)
        0.0
    """
    x = np.asarray(depth, dtype=float)
    ok = 0
    counted = 0
    for e in events:
        if e <= 0 or e >= len(x):
            continue
        base = float(np.nanmean(x[max(0, e - pre) : e]))
        if not np.isfinite(base) or base <= 0:
            continue
        counted += 1
        ok += bool(np.any(x[e : e + window] >= level * base))
    return ok / counted if counted else math.nan


def price_recovery(
    prices: Sequence[float], event: int, *, pre: int = 30, window: int = 240
) -> float:
    """Share of the fall from the pre-event level to the trough that is recovered by
    the end of the window (0 = none, 1 = all).

    Examples:
        >>> price_recovery([100.0] * 10 + [60.0, 70.0, 80.0], 10, pre=5, window=3)
        0.5
    """
    x = np.asarray(prices, dtype=float)
    base = float(np.nanmean(x[max(0, event - pre) : event]))
    seg = x[event : event + window]
    trough = float(np.nanmin(seg))
    if base - trough <= 0:
        return 1.0
    return float((seg[-1] - trough) / (base - trough))


def large_trades(trades: pd.DataFrame, *, market: int, quantile: float = 0.99) -> list[int]:
    """Steps with a forced trade or a trade above the ``quantile`` of size in ``market``.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> steps = large_trades(m.trades, market=0)
        >>> min(steps) >= 30  # the shock at step 30 forces the first of them
        True
    """
    t = trades[trades["market"] == market]
    if t.empty:
        return []
    notional = t["price"] * t["qty"]
    big = t[(notional >= notional.quantile(quantile)) | t["forced"]]
    return sorted(set(int(s) for s in big["step"]))


# ------------------------------------------------------------------ leverage


def leverage_monitor(df: pd.DataFrame) -> pd.DataFrame:
    """Per step: aggregate leverage, open interest (USD), margin-ratio quantiles and
    accounts under or near maintenance margin, from ``model.parquet``.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> list(leverage_monitor(m.model_frame()).columns)[:4]
        ['t', 'aggregate_leverage', 'open_interest', 'ratio_p05']
    """
    cols = ["t", *LEVERAGE_COLUMNS]
    return df[[c for c in cols if c in df.columns]].copy()


# ------------------------------------------------------------- stylized facts


def log_returns(prices: Sequence[float], horizon: int = 1) -> np.ndarray:
    """Non-overlapping log returns over ``horizon`` steps.

    Examples:
        >>> log_returns([100, 110, 121, 133.1]).round(6)  # +10% a step
        array([0.09531, 0.09531, 0.09531])
        >>> log_returns([100, 110, 121, 133.1, 146.41], horizon=2).round(6)
        array([0.19062, 0.19062])
    """
    p = np.asarray(prices, dtype=float)[::horizon]
    p = p[np.isfinite(p) & (p > 0)]
    return np.diff(np.log(p))


def excess_kurtosis(x: Sequence[float]) -> float:
    """Sample excess kurtosis m4 / m2² − 3 (0 for a Gaussian).

    Examples:
        >>> excess_kurtosis([1, -1, 1, -1])  # two points: the thinnest tails there are
        -2.0
        >>> excess_kurtosis([0, 0, 0, 0, 0, 0, 0, 10, -10])
        1.5
    """
    x = np.asarray(x, dtype=float)
    x = x - x.mean()
    m2 = np.mean(x**2)
    return float(np.mean(x**4) / m2**2 - 3.0) if m2 > 0 else math.nan


def hill_tail_index(x: Sequence[float], *, tail: float = 0.05) -> float:
    """Hill (1975) estimator of the tail index α of |x| from its top ``tail`` share:
    1/α = mean(log(X_(i) / X_(k+1))), i ≤ k. Cont (2001) reports α between 2 and 5
    for financial returns.

    Examples:
        >>> x = np.random.default_rng(0).pareto(3.0, 100_000) + 1  # P(X > x) = x^-3
        >>> round(hill_tail_index(x, tail=0.01), 1)
        2.9
    """
    a = np.sort(np.abs(np.asarray(x, dtype=float)))[::-1]
    a = a[a > 0]
    k = max(2, int(tail * len(a)))
    if len(a) <= k:
        return math.nan
    return float(1.0 / np.mean(np.log(a[:k] / a[k])))


def autocorrelation(x: Sequence[float], lags: Sequence[int]) -> np.ndarray:
    """Sample autocorrelation at the given lags.

    Examples:
        >>> autocorrelation([1.0, -1.0, 1.0, -1.0, 1.0, -1.0], [1, 2]).round(4)
        array([-0.8333,  0.6667])
    """
    x = np.asarray(x, dtype=float)
    x = x - x.mean()
    var = np.dot(x, x)
    return np.array([np.dot(x[:-k], x[k:]) / var if 0 < k < len(x) else math.nan for k in lags])


def autocorrelation_se(x: Sequence[float], lags: Sequence[int]) -> np.ndarray:
    """Standard error of the sample autocorrelation at each lag, robust to conditional
    heteroskedasticity: √(Σ x²ₜ x²ₜ₋ₖ) / Σ x²ₜ on the demeaned series (Taylor 1986, §2.9;
    Lo & MacKinlay 1989). For i.i.d. returns it is 1/√n, Bartlett's band; under
    volatility clustering it is wider, and 1/√n rejects "no autocorrelation" too often.

    Examples:
        >>> r = np.random.default_rng(0).standard_normal(10_000)
        >>> autocorrelation_se(r, [1]).round(3)  # i.i.d.: 1/√n
        array([0.01])
    """
    x = np.asarray(x, dtype=float)
    x = x - x.mean()
    x2 = x * x
    var = x2.sum()
    return np.array(
        [math.sqrt(np.dot(x2[:-k], x2[k:])) / var if 0 < k < len(x) else math.nan for k in lags]
    )


def stylized_facts(
    prices: Sequence[float], *, horizons: Sequence[int] = (1, 5, 30, 120)
) -> pd.DataFrame:
    """Cont (2001) stylized facts at several horizons: excess kurtosis, Hill tail index,
    autocorrelation of returns at lag 1 and 5 (with the robust standard error at lag 5,
    :func:`autocorrelation_se`), of absolute returns at lags 1, 10, 50.

    Examples:
        >>> rng = np.random.default_rng(1)
        >>> prices = 100 * np.exp(np.cumsum(0.001 * rng.standard_normal(5000)))  # a random walk
        >>> facts = stylized_facts(prices, horizons=(1, 5))
        >>> facts[["horizon", "n", "excess_kurtosis", "acf_abs_1"]].round(2)
           horizon     n  excess_kurtosis  acf_abs_1
        0        1  4999             0.09       0.00
        1        5   999             0.08      -0.03
    """
    rows = []
    for h in horizons:
        r = log_returns(prices, h)
        if len(r) < 20:
            continue
        ac = autocorrelation(r, [1, 5])
        aac = autocorrelation(np.abs(r), [1, 10, 50])
        rows.append(
            {
                "horizon": h,
                "n": len(r),
                "excess_kurtosis": excess_kurtosis(r),
                "tail_index": hill_tail_index(r),
                "acf_r_1": ac[0],
                "acf_r_5": ac[1],
                "se_r_5": float(autocorrelation_se(r, [5])[0]),
                "acf_abs_1": aac[0],
                "acf_abs_10": aac[1],
                "acf_abs_50": aac[2],
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------- sweeps over seeds


def mean_interval(
    x: Sequence[float], *, confidence: float = 0.95, n: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of one value per seed and its percentile bootstrap interval (resampling
    seeds; Efron & Tibshirani 1993, ch. 13). NaN values are left out; with fewer than
    3 values the interval is (nan, nan).

    Examples:
        >>> m, lo, hi = mean_interval(np.arange(20.0))
        >>> m, bool(lo < m < hi)
        (9.5, True)
    """
    v = np.asarray(x, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return math.nan, math.nan, math.nan
    if len(v) < 3:
        return float(v.mean()), math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = v[rng.integers(0, len(v), size=(n, len(v)))].mean(axis=1)
    a = (1 - confidence) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return float(v.mean()), float(lo), float(hi)


def interval_table(
    table: pd.DataFrame, by: Sequence[str], metrics: Sequence[str], **kw
) -> pd.DataFrame:
    """Per design point: the number of runs and, for each metric, its mean over seeds
    with a 95% seed-bootstrap interval (columns ``metric``, ``metric_lo``,
    ``metric_hi``); keyword arguments go to :func:`mean_interval`.

    Examples:
        >>> t = pd.DataFrame({"mode": ["a"] * 5 + ["b"] * 5, "x": range(10)})
        >>> interval_table(t, ["mode"], ["x"])[["mode", "runs", "x"]].to_dict("records")
        [{'mode': 'a', 'runs': 5, 'x': 2.0}, {'mode': 'b', 'runs': 5, 'x': 7.0}]
    """
    rows = []
    for key, g in table.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        row: dict = dict(zip(by, key, strict=True)) | {"runs": len(g)}
        for m in metrics:
            row[m], row[f"{m}_lo"], row[f"{m}_hi"] = mean_interval(g[m], **kw)
        rows.append(row)
    return pd.DataFrame(rows)


def paired_difference(
    table: pd.DataFrame, column: str, a: object, b: object, metric: str, **kw
) -> tuple[float, float, float]:
    """Mean over seeds of ``metric`` at ``column == a`` minus at ``column == b``, paired
    by seed (the same seed gives both runs their common random numbers), with its 95%
    seed-bootstrap interval. ``table`` holds one design point per value of ``column``.

    Examples:
        >>> t = pd.DataFrame({"seed": [0, 1, 2] * 2, "mode": ["x"] * 3 + ["y"] * 3,
        ...                   "v": [5.0, 6.0, 7.0, 1.0, 2.0, 3.0]})
        >>> paired_difference(t, "mode", "x", "y", "v")[0]
        4.0
    """
    wide = table.pivot_table(index="seed", columns=column, values=metric, aggfunc="mean")
    return mean_interval((wide[a] - wide[b]).to_numpy(), **kw)


__all__ = [
    "ROOT",
    "accounts_liquidated",
    "autocorrelation",
    "autocorrelation_se",
    "branching_by_generation",
    "cascade_sizes",
    "debtrank",
    "debtrank_matrix",
    "depth_retained",
    "excess_kurtosis",
    "exposure_debtrank",
    "half_life",
    "hill_tail_index",
    "interval_table",
    "large_trades",
    "leverage_monitor",
    "liquidation_count",
    "log_returns",
    "long_share",
    "loss_shares",
    "loss_table",
    "max_drawdown",
    "mean_interval",
    "paired_difference",
    "price_recovery",
    "propagate",
    "replenishment_probability",
    "spread_half_life",
    "stylized_facts",
    "summary_cascade",
]
