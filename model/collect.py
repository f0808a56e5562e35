"""The per-step record: one row of floats per step, in preallocated arrays, kept as
Mesa's DataCollector.

Mesa's own :class:`mesa.DataCollector` calls every reporter and deep-copies every
value each step, which for the model's ~150 columns cost more than the rest of the
data collection together. :class:`StepRecorder` computes the model's row once per
step (every column from the state the step left, in one pass over each book and
vectorized over accounts) straight into a preallocated array; :class:`FrameCollector`
is a DataCollector (Mesa's ``batch_run``, ``get_model_vars_dataframe`` and
``model_vars`` work as usual) whose rows are that array, turned into a frame only when
it is read. Column meanings: docs/outputs.md.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Any

import mesa
import numpy as np
import pandas as pd

from .agents import Trader
from .orderbook import COMPILED

if COMPILED:  # the record's reductions over accounts compiled (model/_record.pxi)
    from ._book import account_totals as _compiled_totals

if TYPE_CHECKING:
    from .ledger import Valuation
    from .model import CrossMarginModel
    from .scenario import Scenario
    from .venue import Venue
    from .world import World

__all__ = [
    "AGENT_KINDS",
    "BOOK_COLUMNS",
    "DEPTH_BANDS_BPS",
    "LEVERAGE_COLUMNS",
    "POOL_COLUMNS",
    "RATIO_COLUMNS",
    "RATIO_QUANTILES",
    "REJECTION_COLUMNS",
    "WORLD_COLUMNS",
    "FrameCollector",
    "ModelRecorder",
    "StepRecorder",
    "account_totals",
    "columns",
    "linear_quantiles",
    "venue_columns",
]

DEPTH_BANDS_BPS = [-500, -200, -100, -50, -25, -10, 0, 10, 25, 50, 100, 200, 500]
"""Edges of the depth-profile bands around the mid (``{M}_depth_b0`` … ``_b11`` columns)."""
RATIO_QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
RATIO_COLUMNS = tuple(f"ratio_p{round(100 * q):02d}" for q in RATIO_QUANTILES)
"""Percentiles of the margin ratio over accounts with positions (``ratio_p05`` …)."""
LEVERAGE_COLUMNS = (
    "aggregate_leverage",
    "open_interest",
    *RATIO_COLUMNS,
    "under_mm",
    "near_liquidation",
)
"""The leverage monitor's columns of the model frame (aggregate leverage, open interest
in USD, margin-ratio percentiles, accounts under or near maintenance margin)."""
AGENT_KINDS = (
    "market_maker",
    "noise",
    "fundamentalist",
    "momentum",
    "leveraged",
    "carry_desk",
    "peg_keeper",
    "insurance_fund",
    "backstop_vault",
    "peg_arbitrageur",
    "arbitrageur",
    "hedged",
    "custody",
    "seller",
)
"""``agent_type`` of an account (:meth:`CrossMarginModel.accounts`): ``arbitrageur``
and ``hedged`` hold accounts on several venues; ``custody`` is a spot venue's account
for the outside world's side of units deposited; ``seller`` a sell program's account."""
REJECTION_COLUMNS = tuple(f"rejected_{k}" for k in AGENT_KINDS[:5])
"""Orders rejected at entry (margin check) per step, per trading agent type."""
BOOK_COLUMNS = (
    "insurance_fund",
    "insurance_inventory",
    "fund_leverage",
    "vault_nav",
    "vault_pnl",
    "vault_inventory",
    "vault_leverage",
    "fund_pnl",
    "fund_paid",
    "adl_charged",
    "socialized_loss",
    "bad_debt",
    "unbooked_negative_equity",
    "state_error",
    "conservation_error",
)
"""Pools, shortfalls and the two reconciliation checks (USD), per step. A pool's
leverage is the gross notional it holds over its equity (0 when it holds nothing, inf
at equity ≤ 0 with positions)."""
POOL_COLUMNS = ("pool_recovery_rate", "pool_supply")
"""With a synthetic-dollar pool: its recovery rate (assets / face value, at most 1)
and its tokens outstanding, per step."""
MARKET_COLUMNS = (
    "index",
    "mark",
    "mid",
    "last",
    "spread",
    "depth1",
    "depth5",
    "volume",
    "oi",
    "funding",
    *(f"depth_b{k}" for k in range(len(DEPTH_BANDS_BPS) - 1)),
)
"""Per market ``{M}_…`` columns."""
_LIQ_KINDS = ("partial", "full", "backstop", "takeover", "adl")
_LIQ_COLUMNS = tuple(f"liq_notional_{k}" for k in _LIQ_KINDS)


WORLD_COLUMNS = ("value", "flow", "dislocation", "spot_gap")
"""World columns per market in a world of venues (``world:{M}_…``): the latent value
(USD), the minute's aggregate signed taker flow over every venue (USD, buys positive),
the cross-venue dislocation (largest |log(mark / median of the venues' marks)|) and the
spot gap (largest |log(spot mid / median of the spot mids)|)."""


def columns(scenario: Scenario) -> list[str]:
    """The model frame's columns for ``scenario``, in row order: the home venue's
    (:func:`venue_columns`, unprefixed), then in a world of venues every other venue's
    prefixed ``{venue}:`` and the world's prefixed ``world:`` (:data:`WORLD_COLUMNS` per
    market, then ``in_flight``, ``transfers_sent``, ``transfer_error``,
    ``world_state_error``, ``world_unbooked_negative_equity``).

    Examples:
        >>> from crossmargin.model.scenario import Scenario
        >>> cols = columns(Scenario())
        >>> cols[:3], "vault_leverage" in cols, "pool_supply" in cols
        (['t', 'BTC_index', 'BTC_mark'], True, False)
    """
    if not scenario.venues:
        return venue_columns(scenario)
    home = scenario.home_venue
    keys = venue_columns(scenario.venue_scenario(home))
    for name in scenario.venue_names:
        if name != home:
            keys += [f"{name}:{c}" for c in venue_columns(scenario.venue_scenario(name))[1:]]
    for name in scenario.market_names:
        keys += [f"world:{name}_{c}" for c in WORLD_COLUMNS]
    keys += [
        "world:in_flight",
        "world:transfers_sent",
        "world:transfer_error",
        "world:state_error",
        "world:unbooked_negative_equity",
    ]
    return keys


def venue_columns(scenario: Scenario) -> list[str]:
    """One venue's columns of the model frame, in row order (``t`` first).

    Examples:
        >>> from crossmargin.model.scenario import Scenario
        >>> venue_columns(Scenario())[:2]
        ['t', 'BTC_index']
    """
    keys = ["t"]
    for name in scenario.market_names:
        keys += [f"{name}_{col}" for col in MARKET_COLUMNS]
    keys += [
        "liquidations",
        *_LIQ_COLUMNS,
        "bankruptcies",
        "adl_count",
        *BOOK_COLUMNS,
        *REJECTION_COLUMNS,
        *LEVERAGE_COLUMNS,
        "collateral_price",
        "cascade_rounds",
    ]
    if scenario.collateral is not None:
        keys += POOL_COLUMNS
    return keys


def linear_quantiles(x: np.ndarray, q: tuple[float, ...]) -> np.ndarray:
    """``np.quantile(x, q)`` (the default, linear method, to the last bit, the sign of
    zero included) from the few order statistics it reads: up to ``_SORT_UP_TO``
    values from a sort, beyond (or with a zero or a NaN at a rank it reads) from one
    ``np.partition`` with numpy's own ranks (each requested rank holds the value a sort
    puts there; O(n), where the sort of a million traders' margin ratios took 72 ms a
    step), without np.quantile's per-call overhead; NaN for an empty ``x``. ``q`` in
    [0, 1].

    Examples:
        >>> x = np.array([3.0, 1.0, 4.0, 1.0, 5.0, 9.0])
        >>> bool(np.array_equal(linear_quantiles(x, (0.05, 0.5, 0.95)), np.quantile(x, (0.05, 0.5, 0.95))))
        True
    """
    n = len(x)
    if not n:
        return np.full(len(q), math.nan)
    # numpy's steps (lib/_function_base_impl.py: _quantile, _get_indexes, _lerp) in
    # Python floats, the same IEEE operations on the same doubles: the virtual index;
    # its floor and the next rank, both −1 (the last) from n − 1 on, where the weight
    # is counted from −1 as numpy does; the partition at numpy's ranks, 0 and −1 among
    # them (which of two equal values, 0.0 and −0.0, lands on a rank depends on them).
    virtual = [(n - 1) * float(p) for p in q]
    lo = [-1 if v >= n - 1 else math.floor(v) for v in virtual]
    hi = [-1 if k == -1 else k + 1 for k in lo]
    if n <= _SORT_UP_TO:
        # A sort puts the same value on every rank as the partition, but for the sign
        # of a zero (0.0 == −0.0) and which NaN is last: with neither at a rank read,
        # the same floats, cheaper here (the partition's first call in a step costs
        # several times its cost in a loop: 41 against 26 µs a step for the sort at
        # 1,400 accounts, benchmarks/RESULTS.md).
        s = np.sort(x)
        last = s.item(-1)
        if last == last:
            ends = [(s.item(i), s.item(j)) for i, j in zip(lo, hi, strict=True)]
            if all(a != 0 and b != 0 for a, b in ends):
                return np.array(_lerps(virtual, lo, ends))
    if n > _SAMPLE_FROM and -1 not in lo:
        ends = _sampled_ends(x, lo, hi)
        if ends is not None:
            return np.array(_lerps(virtual, lo, ends))
    s = np.partition(x, sorted({0, -1, *lo, *hi}))
    last = s.item(-1)
    if last != last:  # a NaN sorts last: every quantile is that NaN, as in numpy
        return np.full(len(q), last)
    ends = [(s.item(i), s.item(j)) for i, j in zip(lo, hi, strict=True)]
    return np.array(_lerps(virtual, lo, ends))


_SORT_UP_TO = 4096
"""Up to this many values :func:`linear_quantiles` sorts them; beyond, the partition's
O(n) wins."""

_SAMPLE_FROM = 131_072
"""Beyond this many values :func:`linear_quantiles` selects its ranks from windows a
sample picks (:func:`_sampled_ends`; below, the partition is as fast): at a million
accounts the partition of every margin ratio took 26–46 ms a step, the windows 10 ms
(`benchmarks/RESULTS.md`, twenty-third session)."""

_STRIDE = 64  # one value in 64 sampled: 15,625 of a million
_SIGMAS = 5  # a window reaches this many standard errors of the sample's rank each side


def _sampled_ends(x: np.ndarray, lo: list[int], hi: list[int]) -> list | None:
    """The values at ranks ``lo[j]`` and ``hi[j]`` (= lo[j] + 1) of ``x`` sorted, as
    ``np.partition`` puts them, selected as Floyd & Rivest (1975, "Expected time bounds
    for selection", CACM 18(3)) do: a sorted sample bounds a window of values around
    each pair of ranks; counting the values below the window and partitioning the
    window alone gives the ranks. Two equal floats are the same bits but for zeros, so
    the values are numpy's; ``None`` (the caller partitions all of ``x``) if ``x``
    holds a NaN, if a window missed its ranks, or if a value read is a zero (which of
    0.0 and −0.0 a partition puts at a rank depends on its steps).

    Examples:
        >>> x = np.random.default_rng(0).standard_normal(100_000)
        >>> s = np.sort(x)
        >>> _sampled_ends(x, [4_999, 49_999], [5_000, 50_000]) == [
        ...     (s.item(4_999), s.item(5_000)), (s.item(49_999), s.item(50_000))]
        True
    """
    top = x.max()
    if top != top:  # a NaN: numpy puts it last, and every quantile is a NaN
        return None
    n = len(x)
    sample = np.sort(x[::_STRIDE])
    k = len(sample)
    ends = []
    for i, j in zip(lo, hi, strict=True):
        # The sampled value at position p estimates rank p × n / k, with a standard error
        # of about sqrt(k × f × (1 − f)) positions (f = i / n, binomial counts).
        at = i * k // n
        margin = _SIGMAS * math.isqrt(k * i // n * (n - i) // n + 1) + 1
        a = sample.item(max(at - margin, 0))
        b = sample.item(min(at + 1 + margin, k - 1))
        below = int(np.count_nonzero(x < a))
        window = x[(x >= a) & (x <= b)]
        if not below <= i < j < below + len(window):
            return None
        w = np.partition(window, (i - below, j - below))
        ends.append((w.item(i - below), w.item(j - below)))
    if any(u == 0 or v == 0 for u, v in ends):
        return None
    return ends


def _lerps(virtual: list[float], lo: list[int], ends: list[tuple[float, float]]) -> list:
    """numpy's ``_lerp`` between the two order statistics around each virtual index."""
    out = []
    for v, i, (a, b) in zip(virtual, lo, ends, strict=True):
        t = v - i
        diff = b - a
        out.append(b - diff * (1 - t) if t >= 0.5 else a + diff * t)
    return out


class FrameCollector(mesa.DataCollector):
    """A DataCollector whose rows live in one preallocated float array (rows grow by
    doubling if a run goes on past ``capacity``), written once per step.

    Args:
        columns: The column names, in row order.
        capacity: Rows to allocate up front (the scenario's steps).

    Examples:
        >>> dc = FrameCollector(["t", "x"], capacity=2)
        >>> class M:
        ...     time = 1.0
        ...     record = np.array([1.0, 2.5])
        >>> dc.collect(M())
        >>> dc.get_model_vars_dataframe()["x"].tolist()
        [2.5]
    """

    def __init__(self, columns: list[str], *, capacity: int = 1024) -> None:
        self._columns = list(columns)
        self._index = {c: j for j, c in enumerate(self._columns)}
        self._data = np.empty((max(int(capacity), 1), len(self._columns)))
        self._n = 0
        self._vars: dict[str, list[float]] | None = None
        super().__init__(model_reporters={c: partial(_last, column=c) for c in self._columns})
        self._validated = True

    @property
    def _rows(self) -> np.ndarray:
        """The rows written so far (a view)."""
        return self._data[: self._n]

    @property
    def model_vars(self) -> dict[str, list[float]]:  # type: ignore[override]
        """Column name → values, one per collected step (built on first read)."""
        if self._vars is None or len(next(iter(self._vars.values()), ())) != self._n:
            data = self._rows
            self._vars = {c: data[:, j].tolist() for j, c in enumerate(self._columns)}
        return self._vars

    @model_vars.setter
    def model_vars(self, value: Any) -> None:  # Mesa's __init__ assigns {}
        self._vars = None

    def collect(self, model: Any) -> None:
        """Write the row ``model.record`` (computed by the model this step)."""
        self._collection_steps.append(model.time)
        if self._n == len(self._data):
            self._data = np.concatenate([self._data, np.empty_like(self._data)])
        self._data[self._n] = model.record
        self._n += 1

    def tail(self, n: int, columns: list[str]) -> tuple[list[float], list[list[float]]]:
        """The last ``n`` rows' ``t`` and ``columns`` (one list per column), without
        building a frame: what a live view needs each step.

        Examples:
            >>> dc = FrameCollector(["t", "x"])
            >>> for row in ([1.0, 5.0], [2.0, 6.0], [3.0, 7.0]):
            ...     dc._append(row)
            >>> dc.tail(2, ["x"])
            ([2.0, 3.0], [[6.0, 7.0]])
        """
        rows = self._rows[max(self._n - n, 0) :] if n > 0 else self._rows[:0]
        idx = [self._index[c] for c in columns]
        return rows[:, self._index["t"]].tolist(), [rows[:, j].tolist() for j in idx]

    def at(self, i: int, column: str) -> float:
        """The value of ``column`` in row ``i`` (negative ``i`` counts from the end).

        Examples:
            >>> dc = FrameCollector(["t", "x"])
            >>> for row in ([1.0, 5.0], [2.0, 6.0]):
            ...     dc._append(row)
            >>> dc.at(0, "x"), dc.at(-1, "t")
            (5.0, 2.0)
        """
        return float(self._rows[i, self._index[column]])

    def _append(self, row: list[float]) -> None:
        class _Row:
            time = 0.0
            record = row

        self.collect(_Row())

    def frame(self) -> pd.DataFrame:
        """All rows as a DataFrame (one column per name)."""
        return pd.DataFrame(self._rows.copy(), columns=self._columns)


def _last(model: Any, *, column: str) -> float:
    """Reporter form of a column: its value in the model's latest row."""
    return float(model.record[model.datacollector._index[column]])


def account_totals(val: Valuation, n: int) -> tuple[float, int, int, np.ndarray]:
    """The step record's reductions over the accounts of ``val``: the aggregate
    leverage (Σ gross notional over Σ positive equity of the accounts with positions,
    the latter at least 1e-9; 0 without positions), the number of accounts under
    maintenance margin (of the first ``n``), the number near liquidation (margin ratio
    in [1, 1.1)), and the margin ratios of the accounts with positions, in account
    order (for the percentiles). Its compiled twin (``model/_record.pxi``) makes one
    pass over the accounts and sums as numpy does (pairwise), to the same bits.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> m = CrossMarginModel(Scenario.preset("baseline"))
        >>> m.run_for(5)
        >>> leverage, under, near, ratios = account_totals(m.val, m.exchange.ledger.n)
        >>> leverage > 0, under, len(ratios) == int((m.val.gross > 0).sum())
        (True, 0, True)
    """
    has_pos = val.gross > 0
    pos_eq = val.equity[has_pos]
    return (
        float(val.gross[has_pos].sum() / max(pos_eq[pos_eq > 0].sum(), 1e-9))
        if has_pos.any()
        else 0.0,
        int(np.count_nonzero((val.equity[:n] < val.mm[:n]) & (val.mm[:n] > 0))),
        int(np.count_nonzero((val.ratio >= 1) & (val.ratio < 1.1))),
        val.ratio[has_pos],
    )


class StepRecorder:
    """Computes one venue's row of every step (:func:`venue_columns`).

    Args:
        venue: The venue it records.
    """

    def __init__(self, venue: Venue) -> None:
        self.venue = venue
        self.keys = venue_columns(venue.config)
        self.events_seen = 0
        self.rejected_seen = np.zeros(len(AGENT_KINDS))
        k = len(venue.config.markets)
        width = len(MARKET_COLUMNS)
        self._after_markets = 1 + k * width

    def record(self, out: np.ndarray) -> None:
        """Write this step's row into ``out`` (length ``len(keys)``)."""
        model = self.venue
        ex, led = model.exchange, model.exchange.ledger
        oi = led.open_interest()  # lots per market, one pass over the ledger
        # The row up to the system columns as one list of Python floats, written at once
        # (the same doubles as numpy's scalars, the same products: a depth band's lots,
        # exact as a float, times the lot's USD price, as numpy multiplies them).
        index, mark, volume = model.index.tolist(), model.mark.tolist(), ex.volume.tolist()
        lots, funding = oi.tolist(), model.funding_rate.tolist()
        row = [model.t]
        for m, spec in enumerate(ex.markets):
            book = ex.books[m]
            tick = spec.tick
            px = mark[m] * spec.lot
            mid = book.mid
            profile, (d1, d5) = book.depth_summary(DEPTH_BANDS_BPS, (100, 500))
            row += (
                index[m],
                mark[m],
                mid * tick if mid is not None else math.nan,
                book.last_price * tick if book.last_price is not None else math.nan,
                book.spread * tick if book.spread is not None else math.nan,
                d1 * px,
                d5 * px,
                volume[m],
                lots[m] * px,
                funding[m],
            )
            row += [q * px for q in profile]
        out[: self._after_markets] = row
        self._system(out, oi)

    def _system(self, out: np.ndarray, oi: np.ndarray) -> None:
        model = self.venue
        ex, led = model.exchange, model.exchange.ledger
        ev = ex.events
        kinds, notional = ev.column("kind"), ev.column("notional")
        venues, code = ev.column("venue"), model.code
        liq = {k: 0.0 for k in _LIQ_KINDS}
        n_liq = n_adl = 0
        for e in range(self.events_seen, len(ev)):
            if venues[e] != code:
                continue
            k = kinds[e]
            if k == "liquidation":
                n_liq += 1
            elif k in liq:
                liq[k] += notional[e]
                n_adl += k == "adl"
        self.events_seen = len(ev)
        val = model.val
        n = led.n
        totals = _compiled_totals if COMPILED else account_totals
        leverage, under_mm, near, ratios = totals(val, n)
        quantiles = linear_quantiles(ratios, RATIO_QUANTILES)
        # Per kind, the accounts of no kind (−1) in a bin of their own, dropped: whole
        # numbers summed, so the same floats in any order.
        rejected = np.bincount(
            model.kinds() + 1, weights=led.orders_rejected[:n], minlength=len(AGENT_KINDS) + 1
        )[1:]
        fund = ex.insurance.account
        vault = ex.vault.account if ex.vault is not None else None
        risk = model.risk
        # The values in the order of the columns (venue_columns: the liquidations, the
        # pools' book, the rejections, the leverage monitor, the collateral, the pool's),
        # written at once into the row's slots after the markets'.
        row = [
            n_liq,
            *[liq[k] for k in _LIQ_KINDS],
            risk.bankruptcies,
            n_adl,
            val.equity[fund],
            val.gross[fund],
            _leverage(val, fund),
            val.equity[vault] if vault is not None else 0.0,
            val.equity[vault] - model.vault_paid_in if vault is not None else 0.0,
            val.gross[vault] if vault is not None else 0.0,
            _leverage(val, vault) if vault is not None else 0.0,
            val.equity[fund] - ex.insurance.start - ex.insurance.fees_in,
            risk.fund_paid,
            risk.adl_charged,
            risk.socialized_loss,
            risk.bad_debt,
            ex.unbooked_negative_equity(val),
            ex.state_error(val),
            ex.conservation_error(),
            *(rejected - self.rejected_seen)[: len(REJECTION_COLUMNS)],
            leverage,
            float((oi * led.lot * model.mark).sum()),
            *quantiles,
            under_mm,
            near,
            ex.coll_prices[0] if len(ex.coll_prices) else math.nan,
            len(model.round_marks) - 1,
        ]
        if ex.usdx is not None:
            row += (ex.pool_recovery.get("usdx", 1.0), ex.usdx.supply)
        self.rejected_seen = rejected
        start = self._after_markets
        out[start : start + len(row)] = row


class ModelRecorder:
    """The model's row of every step: each venue's (:class:`StepRecorder`), the home
    venue's unprefixed, then the world's (:func:`columns`), into ``model.record``.

    Args:
        model: The model it records.
    """

    def __init__(self, model: CrossMarginModel) -> None:
        self.model = model
        self.keys = columns(model.config)
        world = model.world
        self.venues = [StepRecorder(v) for v in world.venues]
        # Where each venue's columns (after ``t``) go in the row; the home venue first.
        order = [world.home.code] + [v.code for v in world.venues if v is not world.home]
        self._slots = []
        start = 0
        for code in order:
            rec = self.venues[code]
            width = len(rec.keys) if start == 0 else len(rec.keys) - 1
            self._slots.append((rec, start, width, np.zeros(len(rec.keys))))
            start += width
        self._world_start = start

    def record(self, out: np.ndarray) -> None:
        """Write this step's row into ``out`` (length ``len(keys)``)."""
        for rec, start, width, buf in self._slots:
            if start == 0:
                rec.record(out[:width])
            else:
                rec.record(buf)
                out[start : start + width] = buf[1:]
        world = self.model.world
        if world.multi:
            self._world(world, out[self._world_start :])

    @staticmethod
    def _world(world: World, out: np.ndarray) -> None:
        k = len(world.value)
        per = np.column_stack([world.value, world.flow, world.dislocation(), world.spot_gap()])
        out[: k * len(WORLD_COLUMNS)] = per.ravel()
        unbooked = sum(v.exchange.unbooked_negative_equity(v.val) for v in world.venues)
        # Σ of the venues' state errors + what the treasuries and the venues disagree on
        # in flight: the world's books from state (:meth:`World.state_error`).
        state = sum(v.exchange.state_error(v.val) for v in world.venues) + world.transfer_error()
        out[k * len(WORLD_COLUMNS) :] = (
            world.in_flight(),
            world.treasury.sent,
            world.transfer_error(),
            state,
            unbooked,
        )

    def agent_rows(self) -> list[dict]:
        """One row per trading agent at this step (``collect_agents = true``)."""
        model = self.model
        rows = []
        for ag in model.agents:
            if not isinstance(ag, Trader):
                continue
            a = ag.account
            val = ag.venue.val
            led = ag.venue.exchange.ledger
            rows.append(
                {
                    "t": model.t,
                    "agent": ag.unique_id,
                    "type": type(ag).__name__,
                    "venue": ag.venue.name,
                    "account": a,
                    "equity": float(val.equity[a]),
                    "mm": float(val.mm[a]),
                    "gross": float(val.gross[a]),
                    "cash": float(led.cash[a]),
                }
            )
        return rows


def _leverage(val, account: int) -> float:
    """Gross notional over equity of one account (0 flat, inf at equity ≤ 0 with positions)."""
    gross = float(val.gross[account])
    if gross <= 0:
        return 0.0
    eq = float(val.equity[account])
    return gross / eq if eq > 0 else math.inf
