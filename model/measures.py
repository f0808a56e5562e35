"""The one set of metric definitions: the summary, the report, the figures and the
dashboard all count liquidations, branching, losses and resilience through these
functions (``crossmargin.analysis.metrics`` re-exports them).

Two counts of liquidations are kept apart on purpose: ``liquidations`` are waterfall
*entries* (an account re-enters the waterfall each step or cascade round it is still
under margin), ``accounts_liquidated`` are distinct accounts. Losses are split by who
bore them, in USD, and their shares add up to one.

Functions that read events take anything indexable by column name: the
:class:`~model.events.EventLog` of a live model, ``model.events`` or a DataFrame read
from ``events.parquet``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .events import LIQUIDATION_KINDS

__all__ = [
    "LOSS_BEARERS",
    "accounts_liquidated",
    "branching_by_generation",
    "branching_ratio",
    "depth_retained",
    "half_life",
    "liquidated_accounts",
    "liquidation_count",
    "long_share",
    "loss_borne",
    "loss_table",
    "max_drawdown",
    "mean_offspring",
    "offspring",
]

LOSS_BEARERS = {
    "insurance_fund": "insurance",
    "vault": None,
    "adl": "adl",
    "socialized": "socialized",
    "bad_debt": "bad_debt",
    "pool_writedown": "pool_shortfall",
}
"""Who can bear a loss that a liquidated account could not pay, and the event kind that
books it (the vault's is its negative P&L over the run, not an event)."""


def _columns(events: Any, *names: str) -> list[np.ndarray]:
    return [np.asarray(events[n]) for n in names]


def liquidation_count(events: Any) -> int:
    """Waterfall entries: ``liquidation`` events (one per account per step or cascade
    round in which it was under margin).

    Examples:
        >>> liquidation_count({"kind": ["liquidation", "partial", "liquidation"]})
        2
    """
    (kind,) = _columns(events, "kind")
    return int((kind == "liquidation").sum())


def accounts_liquidated(events: Any) -> int:
    """Distinct accounts that entered the waterfall at least once; with a ``venue``
    column an account is its venue and number (numbers repeat across a world's venues).

    Examples:
        >>> accounts_liquidated({"kind": ["liquidation", "liquidation"], "account": [3, 3]})
        1
        >>> accounts_liquidated(
        ...     {"kind": ["liquidation"] * 2, "account": [3, 3], "venue": ["a", "b"]}
        ... )
        2
    """
    return len(liquidated_accounts(events))


def liquidated_accounts(events: Any) -> set:
    """The accounts that entered the waterfall: (venue, number) pairs where the events
    carry a ``venue`` (numbers repeat across a world's venues), numbers otherwise.

    Examples:
        >>> liquidated_accounts({"kind": ["liquidation", "full"], "account": [3, 4]})
        {3}
    """
    kind, account = _columns(events, "kind", "account")
    sel = kind == "liquidation"
    if "venue" not in events:
        return set(account[sel].tolist())
    (venue,) = _columns(events, "venue")
    return set(zip(venue[sel].tolist(), account[sel].tolist(), strict=True))


def long_share(events: Any) -> float | None:
    """Longs' share of liquidated notional: position-closing events (partial, full,
    backstop, takeover, ADL) whose liquidated position was long, over all of them. A
    share of *liquidations*, not of positions. None when nothing was closed.

    Examples:
        >>> long_share({"kind": ["full", "adl"], "notional": [3.0, 1.0], "side": [1, -1]})
        0.75
    """
    kind, notional, side = _columns(events, "kind", "notional", "side")
    closing = np.isin(kind, LIQUIDATION_KINDS) & (side != 0)
    total = float(notional[closing].sum())
    return float(notional[closing & (side == 1)].sum()) / total if total > 0 else None


def loss_borne(
    events: Any,
    *,
    vault_pnl: float = 0.0,
    fund_pnl: float | None = None,
    pool_writedown: float | None = None,
) -> dict[str, float]:
    """USD of losses borne by others than the liquidated accounts, by bearer
    (:data:`LOSS_BEARERS`): the insurance fund's loss, the backstop vault's loss over the
    run (its P&L when negative, else 0), ADL and socialized charges on profitable
    accounts, bad debt nobody paid, and pool creditors written down.

    The fund's loss is ``−fund_pnl`` when negative, else 0: its P&L before the fees it
    collects, i.e. the shortfalls it paid plus what it lost (or minus what it gained) on
    positions it took over and warehoused (BitMEX, Binance: "the insurance fund takes
    over the position"), at mark. Without ``fund_pnl`` (events alone) it is the
    shortfalls paid, the ``insurance`` events, which is the same when the fund
    warehoused nothing.

    ADL events that close a position at a price no worse than the mark for the
    counterparty bear no loss (their notional is liquidated notional, see
    :func:`loss_table`); only ADL *charges* do.

    Every line is net at the end of the run: the pool's creditors bear
    ``pool_writedown``, the write-down left at the end ((1 − recovery rate) × supply);
    without it (events alone) the ``loss`` of ``pool_shortfall`` and ``pool_recovery``
    events, falls less rises along the way.

    Examples:
        >>> ev = {"kind": ["insurance", "adl", "adl"], "loss": [5.0, 0.0, 2.0]}
        >>> loss_borne(ev, vault_pnl=-3.0)["vault"], loss_borne(ev)["adl"]
        (3.0, 2.0)
        >>> loss_borne(ev)["insurance_fund"], loss_borne(ev, fund_pnl=-9.0)["insurance_fund"]
        (5.0, 9.0)
        >>> pool = {"kind": ["pool_shortfall", "pool_recovery"], "loss": [5.2, -5.0]}
        >>> round(loss_borne(pool)["pool_writedown"], 6), loss_borne(pool, pool_writedown=0.1)["pool_writedown"]
        (0.2, 0.1)
    """
    kind, loss = _columns(events, "kind", "loss")
    out = {bearer: float(loss[kind == k].sum()) if k else 0.0 for bearer, k in LOSS_BEARERS.items()}
    out["vault"] = max(0.0, -float(vault_pnl))
    if fund_pnl is not None:
        out["insurance_fund"] = max(0.0, -float(fund_pnl))
    pool_path = np.isin(kind, ("pool_shortfall", "pool_recovery"))
    out["pool_writedown"] = (
        max(0.0, float(pool_writedown))
        if pool_writedown is not None
        else max(0.0, float(loss[pool_path].sum()))
    )
    return out


def loss_table(
    events: Any,
    *,
    vault_pnl: float = 0.0,
    fund_pnl: float | None = None,
    pool_writedown: float | None = None,
) -> pd.DataFrame:
    """Per bearer: its events, the notional of positions it took over or closed (USD:
    the fund's takeovers, the vault's backstops, ADL's closes; 0 for the bearers that
    take over no position), the loss it bore (USD, as in :func:`loss_borne`) and its
    share of the total loss; the last row, ``total``, sums them (shares add to 1).

    Examples:
        >>> ev = {"kind": ["insurance", "adl"], "loss": [3.0, 1.0],
        ...       "notional": [0.0, 50.0], "account": [0, 1]}
        >>> loss_table(ev)["share"].tolist()
        [0.75, 0.0, 0.25, 0.0, 0.0, 0.0, 1.0]
    """
    kind, notional = _columns(events, "kind", "notional")
    borne = loss_borne(
        events, vault_pnl=vault_pnl, fund_pnl=fund_pnl, pool_writedown=pool_writedown
    )
    total = sum(borne.values())
    took = {"insurance_fund": "takeover", "vault": "backstop", "adl": "adl"}
    rows = [
        {
            "bearer": bearer,
            "events": int((kind == k).sum()) if k else int((kind == took[bearer]).sum()),
            "notional": float(notional[kind == took[bearer]].sum()) if bearer in took else 0.0,
            "loss": borne[bearer],
            "share": borne[bearer] / total if total > 0 else 0.0,
        }
        for bearer, k in LOSS_BEARERS.items()
    ]
    df = pd.DataFrame(rows)
    sums = df[["events", "notional", "loss"]].sum()
    df.loc[len(df)] = {"bearer": "total", **sums.to_dict(), "share": 1.0 if total > 0 else 0.0}
    return df.astype({"events": "int64"})


def offspring(parents: Mapping[Any, Iterable[Any]]) -> dict[Any, int]:
    """Child liquidations per liquidation, from the ``parents`` of each (as returned by
    :func:`model.contagion.liquidation_tree`): a liquidation caused by two earlier ones
    counts as a child of both.

    Examples:
        >>> offspring({1: set(), 2: {1}, 3: {1, 2}})
        {1: 2, 2: 1, 3: 0}
    """
    children = dict.fromkeys(parents, 0)
    for ps in parents.values():
        for p in ps:
            children[p] += 1
    return children


def branching_ratio(parents: Mapping[Any, Iterable[Any]]) -> float:
    """The cascade's branching ratio: mean child liquidations per liquidation, over every
    liquidation (the offspring mean of a Galton–Watson reading of the cascade; below 1
    a cascade dies out). This is the one branching ratio the summary, the report's
    tables and titles and the dashboard show.

    Examples:
        >>> branching_ratio({1: set(), 2: {1}, 3: {1, 2}})
        1.0
    """
    return mean_offspring(sum(offspring(parents).values()), len(parents))


def mean_offspring(links: int, liquidations: int) -> float:
    """:func:`branching_ratio` from its two counts: the parent links (a liquidation
    caused by two earlier ones is two links) over the liquidations; 0 without any.
    For a reader that counts the links in one pass and keeps no parent sets
    (:func:`model.contagion.cascade_metrics`).

    Examples:
        >>> mean_offspring(3, 3), mean_offspring(0, 0)
        (1.0, 0.0)
    """
    return links / liquidations if liquidations else 0.0


def branching_by_generation(
    parents: Mapping[Any, Iterable[Any]], generation: Mapping[Any, int]
) -> pd.DataFrame:
    """Per generation: its liquidations and their mean child liquidations. The
    liquidation-weighted mean of the ``branching`` column is :func:`branching_ratio`.

    Examples:
        >>> branching_by_generation({1: set(), 2: {1}}, {1: 0, 2: 1})["branching"].tolist()
        [1.0, 0.0]
    """
    children = offspring(parents)
    gens = pd.Series(generation, dtype="int64")
    rows = []
    for k in range(int(gens.max()) + 1 if len(gens) else 0):
        members = gens.index[gens == k]
        rows.append(
            {
                "generation": k,
                "liquidations": len(members),
                "branching": float(np.mean([children[h] for h in members])),
            }
        )
    return pd.DataFrame(rows, columns=["generation", "liquidations", "branching"])


def half_life(
    series: Sequence[float], event: int, *, pre: int = 30, window: int = 240
) -> float | None:
    """Steps after the trough (following ``event``) until the series has recovered half
    of what it lost relative to its mean over the ``pre`` steps before the event.

    None when it did not fall (by more than 5%) or never recovered within ``window``.
    For an exponential recovery x(t) = base − A e^{−t/τ} after the trough this is
    τ ln 2 (up to the sampling step).

    Examples:
        >>> x = [100.0] * 10 + [50.0, 60, 70, 80, 90] + [100.0] * 10
        >>> half_life(x, 10, pre=5, window=15)  # back above 75 three steps after the trough
        3.0
    """
    x = np.asarray(series, dtype=float)
    if event <= 0 or event >= len(x):
        return None
    base = float(np.nanmean(x[max(0, event - pre) : event]))
    seg = x[event : event + window]
    if not len(seg) or not np.isfinite(base):
        return None
    t = int(np.nanargmin(seg))
    trough = float(seg[t])
    if trough >= 0.95 * base:
        return None
    target = trough + 0.5 * (base - trough)
    after = np.flatnonzero(seg[t:] >= target)
    return float(after[0]) if len(after) else None


def depth_retained(
    series: Sequence[float], event: int, *, after: int = 60, pre: int = 30, window: int = 10
) -> float | None:
    """Depth ``after`` steps past ``event`` (mean over ``window`` steps) as a share of its
    mean over the ``pre`` steps before the event.

    The response for a book that does not come back, where :func:`half_life` is None:
    after 10 October 2025 BTC depth within 1% of the mid fell to about 70% and had not
    recovered a month later (CoinDesk Research), and after large trades books often fail
    to replenish at all (Large 2007). None when the series ends too soon or had no depth
    before the event.

    Examples:
        >>> depth = [10.0] * 10 + [4.0] * 10 + [7.0] * 10
        >>> depth_retained(depth, 10, after=12, pre=5, window=5)
        0.7
    """
    x = np.asarray(series, dtype=float)
    if event <= 0 or event + after + window > len(x):
        return None
    base = float(np.nanmean(x[max(0, event - pre) : event]))
    if not np.isfinite(base) or base <= 0:
        return None
    return float(np.nanmean(x[event + after : event + after + window]) / base)


def max_drawdown(prices: Sequence[float]) -> float:
    """Largest peak-to-trough fall, as a fraction of the peak.

    Examples:
        >>> max_drawdown([100, 120, 90, 130])  # 120 → 90
        0.25
    """
    p = np.asarray(prices, dtype=float)
    if not len(p):
        return 0.0
    peak = np.maximum.accumulate(p)
    return float(np.max(1 - p / peak))
