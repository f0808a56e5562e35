"""The exchange's account ledger: a struct of numpy arrays, revalued in one pass.

Every account's state lives here (agents hold only an account id): USD cash, units
of each collateral asset, signed perpetual positions in lots with their entry cost
(so the average entry price is ``cost / (pos × lot)``), the margin allocated to
isolated positions, realized PnL and fees paid.

Accounting identity (checked by :meth:`Ledger.money`): since every fill has two
sides, Σ positions = 0 per market, so Σ unrealized PnL = −Σ entry cost, and the
money held by accounts is Σ (cash + isolated margin − entry cost). Together with the
pools' balances it changes only by external deposits and withdrawals.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .markets import CROSS, ISOLATED, PORTFOLIO, Collateral, Market
from .orderbook import COMPILED

if COMPILED:  # settlement compiled beside the book (model/_settle.pxi)
    from ._book import (
        ledger_margin_state,
        ledger_open_interest,
        ledger_tier_fix,
        ledger_trade,
        ledger_views,
    )

__all__ = ["Ledger", "Valuation"]

_DUST = 1e-9  # USD: a free balance this far below zero is float rounding, not a debt


@dataclass
class Valuation:
    """Result of one vectorized revaluation of every account.

    Per-account arrays have length n; per-position arrays are market-major,
    shape ``(n_markets, n)``, like the ledger's own.
    """

    equity: np.ndarray
    """cash + haircut collateral value + Σ (isolated margin + unrealized PnL)."""
    mm: np.ndarray
    """Maintenance margin (portfolio accounts: worst stress-scenario loss)."""
    im: np.ndarray
    """Initial margin at the tier leverage caps."""
    ratio: np.ndarray
    """Margin ratio equity / MM (inf without positions), like Binance's uniMMR."""
    liquidatable: np.ndarray
    """Boolean: equity < MM (cross/portfolio) or any isolated position below its MM."""
    notional: np.ndarray
    """Signed position notional at mark, shape (n_markets, n)."""
    gross: np.ndarray
    """Σ |notional| per account."""
    iso_liquidatable: np.ndarray | None
    """Boolean (n_markets, n) of isolated positions below their own MM; None if no isolated."""
    free: np.ndarray | None = None
    """The wallet outside isolated positions (:meth:`Ledger.free_balance`); None if no
    account is isolated."""


class Ledger:
    """Struct-of-arrays account ledger for ``n_markets`` perpetuals and collateral assets.

    Per-position arrays are market-major, shape ``(n_markets, capacity)``, so that
    every vectorized pass reads contiguous rows. Positions are whole lots held in
    float64 (exact below 2**53), so revaluation needs no integer conversion.

    Args:
        markets: Market specifications (fixes the position rows).
        collaterals: Collateral assets (fixes the collateral rows).
        capacity: Initial array capacity; arrays double when full.
        pm_idio_share: Portfolio margin: the single-market stress scenarios move one
            market by this share of its stress move (the market-wide scenarios move all
            markets together, so offsetting positions net out there).
        pm_floor: Portfolio margin never falls below this share of the cross-margin MM.
    """

    _PER_ACCOUNT = (
        "cash",
        "realized",
        "fees",
        "mode",
        "iso_leverage",
        "deficit",
        "bad_debt_booked",
        "orders_rejected",
    )
    _PER_POSITION = ("pos", "cost", "iso_margin", "coll")

    def __init__(
        self,
        markets: Sequence[Market],
        collaterals: Sequence[Collateral] = (),
        *,
        capacity: int = 1024,
        pm_idio_share: float = 0.5,
        pm_floor: float = 0.25,
    ) -> None:
        self.markets = tuple(markets)
        self.collaterals = tuple(collaterals)
        self.n = 0
        m, c = len(self.markets), len(self.collaterals)
        cap = max(int(capacity), 1)
        self.cash = np.zeros(cap)
        self.realized = np.zeros(cap)
        self.fees = np.zeros(cap)
        self.mode = np.zeros(cap, dtype=np.int8)
        self.iso_leverage = np.ones(cap)
        # What isolated positions closed beyond their own margin still owe (USD): a
        # position's loss never reaches the account's free cash (isolated margin); the
        # risk engine books it (fund, ADL, socialized loss or bad debt) and clears it.
        self.deficit = np.zeros(cap)
        # Negative balances written off as bad debt, per account (USD).
        self.bad_debt_booked = np.zeros(cap)
        self.orders_rejected = np.zeros(cap, dtype=np.int64)  # at order entry
        # Bumped whenever an account's balances change through the ledger's own methods;
        # ``epoch`` whenever anything else writes balances directly (funding, the risk
        # engine): together they tell the order-entry check when its cache is stale.
        self.version: list[int] = []  # a list: bumped on every fill, read on every order
        self.epoch = 0
        self.pos = np.zeros((m, cap))
        self.cost = np.zeros((m, cap))
        self.iso_margin = np.zeros((m, cap))
        self.coll = np.zeros((c, cap))
        self.deposits = 0.0
        self.lot = np.array([mk.lot for mk in self.markets])
        self.haircut = np.array([cl.haircut for cl in self.collaterals])
        self._base_tiers = [mk.tier_arrays() for mk in self.markets]
        self.margin_scale = np.ones(m)
        self._set_tiers(self._base_tiers)
        self._ones = np.ones(m)
        self._work = np.empty((m, 0))
        self.pm_floor = pm_floor
        self.stress = self._stress_grid(pm_idio_share)
        self.n_isolated = 0
        self.n_portfolio = 0
        self._margin_cache: dict[int, tuple] = {}
        # (epoch, marks array, its values as a tuple): the marks every view of the
        # epoch made from that (read-only) array shares (_epoch_marks).
        self._marks_view: tuple | None = None
        # A tuple, as every part of a margin view is (margin_state): a view made only
        # of tuples, floats and ints is one the cyclic GC stops tracking.
        self._lots = tuple(self.lot.tolist())
        # The compiled path's arrays held open between calls (model/_settle.pxi).
        self._arrays = None
        # The compiled path's order-entry views, one slot per account in C++ arrays
        # (model/_settle.pxi, _Views), where the Python path keeps _margin_cache.
        self._views = None

    def __getstate__(self) -> dict:
        """A copy or pickle of the ledger carries its arrays, not the compiled path's
        hold on them (``_arrays``: opened again on first use)."""
        state = self.__dict__.copy()
        state["_arrays"] = None
        return state

    def touch(self) -> None:
        """Balances were written directly (funding, the risk engine, the pools, new
        marks): the epoch moves on, so every cached order-entry view is stale, and the
        Python path's cache is emptied (a view of an older epoch is never read again;
        kept, the views of every account that ever traded would stay in memory, and in
        the garbage collector's old generation, for the whole run). The compiled path's
        views sit in one slot per account and go stale with the epoch, unwritten.

        Examples:
            >>> from crossmargin.model.markets import Market
            >>> led = Ledger([Market("BTC", 0.1, 0.001)])
            >>> a = led.open_account(100.0)
            >>> _ = led.margin_state(a, np.array([50_000.0]))
            >>> led.touch()
            >>> led.epoch, led.cached_views()
            (1, {})
        """
        self.epoch += 1
        self._margin_cache.clear()

    def _set_tiers(self, tiers: list) -> None:
        self._tiers = tiers
        self._tier_lists = [
            (caps.tolist(), mmr.tolist(), amount.tolist(), (1 / lev).tolist())
            for caps, mmr, amount, lev in tiers
        ]
        # Every market's tiers padded to one table (caps, MMR, amount, 1/leverage), the
        # last tier repeated, so that a position's tier is one vectorized comparison.
        width = max(len(t[1]) for t in tiers)

        def pad(rows: list[np.ndarray], fill: float | None = None) -> np.ndarray:
            return np.array(
                [
                    np.concatenate([r, np.full(width - len(r), r[-1] if fill is None else fill)])
                    for r in rows
                ]
            )

        caps = pad([np.append(np.asarray(t[0], dtype=float), np.inf) for t in tiers], np.inf)
        self._tier_table = (
            caps,
            pad([np.asarray(t[1], dtype=float) for t in tiers]),
            pad([np.asarray(t[2], dtype=float) for t in tiers]),
            1 / pad([np.asarray(t[3], dtype=float) for t in tiers]),
        )
        self._mmr0 = np.array([t[1][0] for t in tiers])
        self._inv_lev0 = np.array([1 / t[3][0] for t in tiers])
        self._cap0 = np.array([t[0][0] if len(t[0]) else np.inf for t in tiers])

    def set_margin_scale(self, scale: np.ndarray) -> None:
        """Multiply each market's maintenance and initial margin rates by ``scale``
        (risk-based margin that rises with volatility, as CCPs' margin models do; the
        margin spiral of Brunnermeier & Pedersen 2009). Tier amounts scale with the
        rates, so every position's MM and IM scale exactly.

        Examples:
            >>> from crossmargin.model.markets import Market
            >>> led = Ledger([Market("BTC", tick=0.1, lot=0.001)])
            >>> i = led.open_account(10_000.0)
            >>> led.pos[0, i] = 1000
            >>> mm = led.revalue(np.array([50_000.0])).mm[i]
            >>> led.set_margin_scale(np.array([2.0]))
            >>> float(led.revalue(np.array([50_000.0])).mm[i] / mm)
            2.0
        """
        s = np.asarray(scale, dtype=float)
        if np.array_equal(s, self.margin_scale):
            return
        self.margin_scale = s.copy()
        self._set_tiers(
            [
                (caps, mmr * k, amount * k, lev / k)
                for (caps, mmr, amount, lev), k in zip(self._base_tiers, s.tolist(), strict=True)
            ]
        )
        self.touch()  # cached order-entry views are stale

    # -------------------------------------------------------------- accounts
    def open_account(
        self,
        cash: float,
        *,
        mode: int = CROSS,
        collateral: dict[int, float] | None = None,
        iso_leverage: float = 10.0,
    ) -> int:
        """Create an account funded with ``cash`` USD (an external deposit); return its id.

        ``collateral`` maps collateral index → units deposited (units are counted in
        :meth:`collateral_units`, not in USD money).
        """
        return int(
            self.open_accounts(
                np.array([cash]), mode=mode, iso_leverage=iso_leverage, collateral=collateral
            )[0]
        )

    def open_accounts(
        self,
        cash: np.ndarray,
        *,
        mode: int | np.ndarray = CROSS,
        iso_leverage: np.ndarray | float = 10.0,
        collateral: dict[int, float | np.ndarray] | None = None,
    ) -> np.ndarray:
        """Create ``len(cash)`` accounts at once; return their ids."""
        cash = np.asarray(cash, dtype=np.float64)
        if (cash < 0).any() or not np.isfinite(cash).all():
            raise ValueError("cash: must be finite and >= 0")
        if np.any(np.asarray(iso_leverage) <= 0):
            raise ValueError("iso_leverage: must be > 0")
        k = len(cash)
        while self.n + k > len(self.cash):
            self._grow()
        ids = np.arange(self.n, self.n + k)
        self.cash[ids] = cash
        self.mode[ids] = mode
        self.iso_leverage[ids] = iso_leverage
        for c, units in (collateral or {}).items():
            self.coll[c, ids] = units
        self.deposits += float(cash.sum())
        self.version.extend([0] * k)
        self.n += k
        modes = self.mode[: self.n]
        self.n_isolated = int((modes == ISOLATED).sum())
        self.n_portfolio = int((modes == PORTFOLIO).sum())
        return ids

    def deposit(self, i: int, amount: float) -> None:
        """External cash in (negative: withdrawal); tracked for the conservation check."""
        self.cash[i] += amount
        self.deposits += amount
        self.version[i] += 1

    def _grow(self) -> None:
        cap = len(self.cash)
        for name in self._PER_ACCOUNT:
            a = getattr(self, name)
            b = (
                np.ones(2 * cap, dtype=a.dtype)
                if name == "iso_leverage"
                else np.zeros(2 * cap, a.dtype)
            )
            b[:cap] = a
            setattr(self, name, b)
        for name in self._PER_POSITION:
            a = getattr(self, name)
            b = np.zeros((a.shape[0], 2 * cap))
            b[:, :cap] = a
            setattr(self, name, b)

    # ------------------------------------------------------------ settlement
    def trade(self, i: int, m: int, dq: int, price: float, fee: float = 0.0) -> float:
        """Apply a fill of ``dq`` lots (signed) at ``price`` USD to account ``i``; return realized PnL.

        Opening adds to the entry cost at the fill price; closing realizes PnL
        against the average entry price; a fill that flips the position closes the
        old one and opens the rest at the same price. The fee (USD; negative for a
        rebate) is debited from cash; the caller credits it to a pool.

        Isolated accounts (Binance/Bybit isolated margin) move ``notional /
        iso_leverage`` of cash into the position's margin when opening and release
        margin pro rata when closing; the closing part's fee is paid out of what the
        closed part releases. What a closed part lost beyond its own margin is the
        position's shortfall (:attr:`deficit`), never a charge on free cash.
        """
        if COMPILED:  # the same steps compiled (model/_settle.pxi)
            return ledger_trade(self, i, m, dq, price, fee)
        # Python floats throughout (numpy scalar arithmetic costs several times as
        # much per operation); the same IEEE operations in the same order.
        lot = self._lots[m]
        pos, costs = self.pos, self.cost
        p = pos.item(m, i)
        cost = costs.item(m, i)
        realized = 0.0
        iso = self.mode.item(i) == ISOLATED
        if p == 0 or (p > 0) == (dq > 0):
            opened = dq
        else:
            closing = min(abs(dq), abs(p))
            share = closing / abs(p)
            closed_cost = cost * share
            realized = (closing if p > 0 else -closing) * lot * price - closed_cost
            cost -= closed_cost
            if iso:
                release = self.iso_margin.item(m, i) * share
                self.iso_margin[m, i] -= release
                close_fee = fee * closing / abs(dq)
                back = release + realized - close_fee
                if back < 0:  # lost more than its margin: the position's shortfall
                    self.deficit[i] -= back
                    back = 0.0
                self.cash[i] += back - realized + close_fee  # realized and fee added below
            step = closing if dq > 0 else -closing
            p += step
            opened = dq - step
            if p == 0:
                cost = 0.0
        if opened:
            cost += opened * lot * price
            p += opened
            if iso:
                alloc = abs(opened) * lot * price / self.iso_leverage.item(i)
                self.cash[i] -= alloc
                self.iso_margin[m, i] += alloc
        pos[m, i] = p
        costs[m, i] = cost
        hit = self._margin_cache.get(i)
        version = self.version
        if hit is not None and not iso and hit[0] == (version[i], self.epoch):
            self._margin_cache[i] = self._after_fill(hit, m, dq, price, fee)
        version[i] += 1
        cash, fees, real = self.cash, self.fees, self.realized
        cash[i] = cash.item(i) + (realized - fee)
        real[i] = real.item(i) + realized
        fees[i] = fees.item(i) + fee
        return realized

    def move_collateral(self, src: int, dst: int, c: int, units: float, price: float) -> None:
        """Spot trade of collateral ``c``: ``units`` from ``src`` to ``dst``, paid in cash at ``price``."""
        self.coll[c, src] -= units
        self.coll[c, dst] += units
        self.version[src] += 1
        self.version[dst] += 1
        self.cash[src] += units * price
        self.cash[dst] -= units * price

    # ------------------------------------------------------------ valuation
    def _stress_grid(self, idio: float) -> np.ndarray:
        """Portfolio-margin price scenarios, shape (n_scenarios, n_markets).

        Market-wide moves of −1, −½, +½, +1 × each market's stress move (like the
        spot-shock columns of OKX's MR1 grid), plus each market alone moving
        ±``idio`` × its stress move, so a hedge of two correlated markets is charged
        for basis risk but not for the common move.
        """
        s = np.array([mk.stress_move for mk in self.markets])
        rows = [f * s for f in (-1.0, -0.5, 0.5, 1.0)]
        for k in range(len(s)):
            for sign in (-1.0, 1.0):
                r = np.zeros(len(s))
                r[k] = sign * idio * s[k]
                rows.append(r)
        return np.array(rows)

    def _tier_fix(self, absnot: np.ndarray, mm: np.ndarray, im: np.ndarray) -> None:
        """Correct MM/IM (computed at tier-0 rates) for positions above the first tier cap
        by the rule of :meth:`_tier_fix_rule`; with the compiled book the same rule runs
        compiled (``ledger_tier_fix`` of ``model/_settle.pxi``: the same floats)."""
        if COMPILED:
            ledger_tier_fix(self, absnot, mm, im)
            return
        self._tier_fix_rule(absnot, mm, im)

    def _tier_fix_rule(self, absnot: np.ndarray, mm: np.ndarray, im: np.ndarray) -> None:
        """Correct MM/IM (computed at tier-0 rates) for positions above the first tier cap,
        all markets at once: the positions over their market's first cap in market
        order (row-major), each one's tier found in its market's caps, and ``np.add.at``,
        which adds one position after the other, so an account's corrections reach it in
        market order as a loop over markets adds them. This is the rule to read and
        change; ``model/_settle.pxi`` follows it."""
        n = absnot.shape[1]
        at = np.flatnonzero(absnot > self._cap0[:, None])
        if not len(at):
            return
        k, j = np.divmod(at, n)
        caps, mmr, amount, inv_lev = self._tier_table
        a = absnot[k, j]
        t = np.empty(len(a), dtype=np.intp)  # the tier: caps below |notional|
        bounds = np.searchsorted(k, np.arange(len(caps) + 1)).tolist()
        for q in range(len(caps)):
            lo, hi = bounds[q], bounds[q + 1]
            if lo < hi:
                t[lo:hi] = np.searchsorted(caps[q], a[lo:hi], side="left")
        np.add.at(mm, j, a * (mmr[k, t] - mmr[k, 0]) - amount[k, t])
        np.add.at(im, j, a * (inv_lev[k, t] - inv_lev[k, 0]))

    def revalue(self, marks: np.ndarray, coll_prices: np.ndarray | None = None) -> Valuation:
        """Revalue every account at ``marks`` (USD per unit, one per market) in one pass.

        Maintenance margin is tiered per position (Binance: |notional| × MMR − amount),
        summed across the account's positions for cross margin; portfolio-margin
        accounts use the worst loss over the stress grid instead (floored).
        """
        n = self.n
        ones = self._ones
        notional = self.pos[:, :n] * (self.lot * marks)[:, None]
        if self._work.shape[1] < n:
            self._work = np.empty((len(self.markets), len(self.cash)))
        absnot = np.abs(notional, out=self._work[:, :n])  # scratch, reused across calls
        equity = self.cash[:n] + ones @ notional
        equity -= ones @ self.cost[:, :n]
        if self.n_isolated:
            equity += ones @ self.iso_margin[:, :n]
            equity -= self.deficit[:n]
        if len(self.collaterals):
            equity += (self.haircut * coll_prices) @ self.coll[:, :n]
        mm = self._mmr0 @ absnot
        im = self._inv_lev0 @ absnot
        self._tier_fix(absnot, mm, im)
        iso_liq = free = None
        liquidatable = equity < mm
        if self.n_portfolio:
            pm = np.flatnonzero(self.mode[:n] == PORTFOLIO)
            self._portfolio_margin(notional[:, pm], mm, im, pm)
            liquidatable[pm] = equity[pm] < mm[pm]
        if self.n_isolated:
            iso = self.mode[:n] == ISOLATED
            pos_mm = absnot * self._mmr0[:, None]
            pos_im = absnot * self._inv_lev0[:, None]
            self._tier_fix_rows(absnot, pos_mm, pos_im)
            pos_eq = self.iso_margin[:, :n] + notional - self.cost[:, :n]
            iso_liq = (pos_eq < pos_mm) & (notional != 0) & iso[None, :]
            # An isolated account whose total equity is negative is liquidated too, and
            # so is one whose free balance (cash + collateral outside its positions)
            # is negative: a wallet that owes money is not left unseen.
            free = self.cash[:n] - self.deficit[:n]
            if len(self.collaterals):
                free = free + (self.haircut * coll_prices) @ self.coll[:, :n]
            liquidatable[iso] = (
                iso_liq[:, iso].any(axis=0) | (equity[iso] < 0) | (free[iso] < -_DUST)
            )
        liquidatable &= mm > 0
        ratio = np.divide(equity, mm, out=np.full(n, np.inf), where=mm > 0)
        return Valuation(
            equity=equity,
            mm=mm,
            im=im,
            ratio=ratio,
            liquidatable=liquidatable,
            notional=notional,
            gross=ones @ absnot,
            iso_liquidatable=iso_liq,
            free=free,
        )

    def _tier_fix_rows(self, absnot: np.ndarray, pos_mm: np.ndarray, pos_im: np.ndarray) -> None:
        over = absnot > self._cap0[:, None]
        for k in np.flatnonzero(over.any(axis=1)):
            caps, mmr, amount, lev = self._tiers[k]
            j = np.flatnonzero(over[k])
            a = absnot[k, j]
            t = np.searchsorted(caps, a, side="left")
            pos_mm[k, j] = a * mmr[t] - amount[t]
            pos_im[k, j] = a / lev[t]

    def _portfolio_margin(
        self, notional: np.ndarray, mm: np.ndarray, im: np.ndarray, idx: np.ndarray
    ) -> None:
        loss = -(self.stress @ notional).min(axis=0)
        cross_mm = mm[idx]
        pmm = np.maximum(loss, self.pm_floor * cross_mm)
        scale = np.divide(im[idx], cross_mm, out=np.ones(len(idx)), where=cross_mm > 0)
        im[idx] = pmm * scale
        mm[idx] = pmm

    def im_rate(self, weights: np.ndarray, mode: int) -> float:
        """Initial margin per USD of gross notional of an account in margin ``mode``
        holding signed ``weights`` (Σ|w| = 1), at tier-0 rates, by the rules of
        :meth:`account_margin`; its inverse is the most leverage the account can open
        with. Portfolio margin charges a directional book its worst stress-scenario
        loss, which allows less leverage than the cross-margin tiers, a hedged book more.
        """
        w = np.asarray(weights, dtype=float)
        mm = float(np.abs(w) @ self._mmr0)
        im = float(np.abs(w) @ self._inv_lev0)
        if mode == PORTFOLIO:
            _, im = self._portfolio_mm_im(w, mm, im)
        return im

    def im_rates(self, weights: np.ndarray, mode: int) -> np.ndarray:
        """:meth:`im_rate` for many accounts at once: ``weights`` of shape (markets,
        accounts), each column Σ|w| = 1.

        Examples:
            >>> from crossmargin.model.markets import CROSS, Market
            >>> led = Ledger([Market("BTC", 0.1, 0.001), Market("ETH", 0.01, 0.01)])
            >>> w = np.array([[1.0, 0.5], [0.0, -0.5]])
            >>> bool(np.allclose(led.im_rates(w, CROSS), [led.im_rate(w[:, j], CROSS) for j in range(2)]))
            True
        """
        w = np.asarray(weights, dtype=float)
        im = self._inv_lev0 @ np.abs(w)
        if mode == PORTFOLIO:
            mm = self._mmr0 @ np.abs(w)
            loss = -(self.stress @ w).min(axis=0)
            pmm = np.maximum(loss, self.pm_floor * mm)
            im = np.where(mm > 0, pmm * im / np.where(mm > 0, mm, 1.0), 0.0)
        return im

    def open_positions(self, ids: np.ndarray, m: int, lots: np.ndarray, price: float) -> None:
        """Open ``lots`` (signed, one per account) of market ``m`` at ``price`` for
        accounts that hold none of it yet, at once: what :meth:`trade` does for an opening
        fill without a fee (isolated accounts move notional / iso_leverage of cash into
        the position's margin). The caller books the other side.

        Examples:
            >>> from crossmargin.model.markets import Market
            >>> led = Ledger([Market("BTC", 0.1, 0.001)])
            >>> ids = led.open_accounts(np.array([1000.0, 1000.0]))
            >>> led.open_positions(ids, 0, np.array([10.0, -5.0]), 50_000.0)
            >>> led.pos[0, ids].tolist(), led.cost[0, ids].tolist()
            ([10.0, -5.0], [500.0, -250.0])
        """
        ids = np.asarray(ids)
        lots = np.asarray(lots, dtype=float)
        nz = lots != 0
        ids, lots = ids[nz], lots[nz]
        if not len(ids):
            return
        if self.pos[m, ids].any():
            raise ValueError("open_positions: an account already holds this market")
        self.pos[m, ids] = lots
        self.cost[m, ids] = lots * self.lot[m] * price
        iso = self.mode[ids] == ISOLATED
        if iso.any():
            a = ids[iso]
            alloc = np.abs(lots[iso]) * self.lot[m] * price / self.iso_leverage[a]
            self.cash[a] -= alloc
            self.iso_margin[m, a] += alloc
        version = self.version
        for a in ids.tolist():
            version[a] += 1

    def _portfolio_mm_im(self, notional, mm: float, im: float) -> tuple[float, float]:
        """One portfolio-margin account's (MM, IM): the worst loss over the stress grid,
        floored at ``pm_floor`` × its cross MM, with IM in the cross tiers' IM/MM ratio."""
        loss = float(-(self.stress @ np.asarray(notional)).min())
        pmm = max(loss, self.pm_floor * mm)
        return pmm, pmm * (im / mm) if mm > 0 else 0.0

    def account_margin(
        self, i: int, marks: np.ndarray, coll_prices: np.ndarray | None = None
    ) -> tuple[float, float, float]:
        """(equity, MM, IM) of one account, by the same rules as :meth:`revalue`.

        Plain Python over the few markets: the risk engine calls this for every step of
        a waterfall, where numpy's per-call overhead would dominate.
        """
        notional = (self.pos[:, i] * self.lot * marks).tolist()
        equity = float(self.cash[i]) + sum(notional) - float(self.cost[:, i].sum())
        if self.n_isolated:
            equity += float(self.iso_margin[:, i].sum()) - float(self.deficit[i])
        if len(self.collaterals):
            equity += float((self.haircut * coll_prices) @ self.coll[:, i])
        mm = im = 0.0
        for k, x in enumerate(notional):
            if x:
                a = abs(x)
                caps, mmr, amount, inv_lev = self._tier_lists[k]
                t = bisect_left(caps, a)
                mm += a * mmr[t] - amount[t]
                im += a * inv_lev[t]
        if self.mode[i] == PORTFOLIO:
            mm, im = self._portfolio_mm_im(notional, mm, im)
        return equity, mm, im

    def margin_state(
        self, i: int, marks: np.ndarray, coll_prices: np.ndarray | None = None
    ) -> tuple:
        """The order-entry check's view of account ``i`` (plain Python, like
        :meth:`account_margin`), cached until the account's balances (:attr:`version`),
        anything written directly (:attr:`epoch`) or the marks change:
        ``(key, equity, IM, IM per market, positions, lots, marks, mode)``, the
        per-market ones tuples of floats. Such a view holds no list, so the cyclic GC
        stops tracking it by its second pass, before the old generation: at 1 M traders
        the views made between two epochs reached it and set off full collections
        (``benchmarks/RESULTS.md``, eighteenth session). With the compiled book, the
        same steps run compiled (``model/_settle.pxi``)."""
        if COMPILED:
            return ledger_margin_state(self, i, marks, coll_prices)
        key = (self.version[i], self.epoch)
        hit = self._margin_cache.get(i)
        if hit is not None and hit[0] == key:
            return hit
        pos = tuple(self.pos[:, i].tolist())
        lots = self._lots
        mk = self._epoch_marks(marks)
        equity = float(self.cash[i]) - sum(self.cost[:, i].tolist())
        if self.n_isolated:
            equity += sum(self.iso_margin[:, i].tolist()) - float(self.deficit[i])
        if len(self.collaterals):
            equity += float((self.haircut * coll_prices) @ self.coll[:, i])
        ims = [0.0] * len(pos)
        for k, q in enumerate(pos):
            if q:
                x = q * lots[k] * mk[k]
                equity += x
                a = abs(x)
                caps, _, _, inv_lev = self._tier_lists[k]
                ims[k] = a * inv_lev[bisect_left(caps, a)]
        hit = (key, equity, sum(ims), tuple(ims), pos, lots, mk, int(self.mode[i]))
        self._margin_cache[i] = hit
        return hit

    def cached_views(self) -> dict[int, tuple]:
        """{account: order-entry view} of the views made or moved on in the current
        epoch (:meth:`margin_state`; stale ones among them), from the compiled path's
        slots or the Python path's dict: the same on both paths.

        Examples:
            >>> from crossmargin.model.markets import Market
            >>> led = Ledger([Market("BTC", 0.1, 0.001)])
            >>> a = led.open_account(100.0)
            >>> _ = led.margin_state(a, np.array([50_000.0]))
            >>> list(led.cached_views())
            [0]
            >>> led.touch()
            >>> led.cached_views()
            {}
        """
        if COMPILED:
            return ledger_views(self)
        return dict(self._margin_cache)

    def _epoch_marks(self, marks: np.ndarray) -> tuple:
        """``tuple(marks.tolist())``, made once for all the views of an epoch that read
        the same marks array (marks are read-only arrays, replaced with a new epoch:
        :attr:`Exchange.marks`): a view then costs four floats and a tuple less.

        Examples:
            >>> from crossmargin.model.markets import Market
            >>> led = Ledger([Market("BTC", 0.1, 0.001)])
            >>> marks = np.array([50_000.0])
            >>> led._epoch_marks(marks) is led._epoch_marks(marks)
            True
        """
        shared = self._marks_view
        if shared is not None and shared[0] == self.epoch and shared[1] is marks:
            return shared[2]
        mk = tuple(marks.tolist())
        self._marks_view = (self.epoch, marks, mk)
        return mk

    def stress_loss(self, i: int, marks: np.ndarray) -> float:
        """Worst loss of account ``i``'s positions over the stress grid (USD ≥ 0): the
        portfolio-margin scenarios (:meth:`_stress_grid`), with offsets between
        markets, and no floor. The insurance fund's carrying margin.

        Examples:
            >>> from crossmargin.model.markets import Market
            >>> led = Ledger([Market("BTC", tick=0.1, lot=0.001, stress_move=0.1)])
            >>> i = led.open_account(0.0)
            >>> led.pos[0, i] = 1000  # 1 BTC long
            >>> round(led.stress_loss(i, np.array([50_000.0])), 6)
            5000.0
        """
        notional = self.pos[:, i] * self.lot * marks
        if not notional.any():
            return 0.0
        return max(float(-(self.stress @ notional).min()), 0.0)

    def free_balance(self, coll_prices: np.ndarray | None = None) -> np.ndarray:
        """Per account, the wallet outside isolated positions (USD, negative
        included): cash + haircut collateral value − the deficit of positions closed
        beyond their margin. For an isolated account this is what its free balance
        stands on; for cross and portfolio accounts it is their equity less PnL."""
        n = self.n
        free = self.cash[:n] - self.deficit[:n]
        if len(self.collaterals):
            free = free + (self.haircut * coll_prices) @ self.coll[:, :n]
        return free

    def _after_fill(self, hit: tuple, m: int, dq: int, price: float, fee: float) -> tuple:
        """A cached :meth:`margin_state` moved on by one fill of ``dq`` lots at ``price``,
        for an account that is not isolated: equity changes by dq × lot × (mark − price)
        − fee (marking to market: what a fill costs against the mark), market ``m``'s IM
        is recomputed at its tier; the version in the key moves with the fill."""
        key, eq, im, ims, pos, lots, mk, mode = hit
        pos = list(pos)
        pos[m] += dq
        ims = list(ims)
        old = ims[m]
        a = abs(pos[m] * lots[m] * mk[m])
        if a:
            caps, _, _, inv_lev = self._tier_lists[m]
            ims[m] = a * inv_lev[bisect_left(caps, a)]
        else:
            ims[m] = 0.0
        eq += dq * lots[m] * (mk[m] - price) - fee
        return ((key[0] + 1, key[1]), eq, im - old + ims[m], tuple(ims), tuple(pos), lots, mk, mode)

    def im_after(self, m: int, ims: list, pos: list, lots: list, mk: list, dq: int) -> float:
        """IM of market ``m`` after ``dq`` more lots, from a :meth:`margin_state` view."""
        a = abs((pos[m] + dq) * lots[m] * mk[m])
        caps, _, _, inv_lev = self._tier_lists[m]
        return a * inv_lev[bisect_left(caps, a)] - ims[m]

    def tier_mm(self, m: int, absnot: float) -> float:
        """Maintenance margin of one position of |notional| ``absnot`` in market ``m``."""
        caps, mmr, amount, _ = self._tier_lists[m]
        t = bisect_left(caps, absnot)
        return absnot * mmr[t] - amount[t]

    def position_margin(self, i: int, m: int, mark: float) -> tuple[float, float]:
        """(position equity, position MM) of one isolated position."""
        notional = float(self.pos[m, i] * self.lot[m] * mark)
        equity = float(self.iso_margin[m, i] + notional - self.cost[m, i])
        return equity, self.tier_mm(m, abs(notional))

    # ---------------------------------------------------------- accounting
    def money(self) -> float:
        """USD held by all accounts: Σ (cash + isolated margin − deficit − entry cost)."""
        n = self.n
        return float(
            self.cash[:n].sum()
            + self.iso_margin[:, :n].sum()
            - self.deficit[:n].sum()
            - self.cost[:, :n].sum()
        )

    def add_isolated_margin(self, i: int, amount: float) -> None:
        """Move ``amount`` USD of free cash into account ``i``'s isolated positions,
        split in proportion to their notional (Binance's "add margin" to an isolated
        position); a no-op for an account without positions."""
        w = np.abs(self.pos[:, i] * self.lot)
        if w.sum() <= 0 or amount <= 0:
            return
        self.cash[i] -= amount
        self.iso_margin[:, i] += amount * w / w.sum()
        self.version[i] += 1

    def collateral_value(self, coll_prices: np.ndarray) -> np.ndarray:
        """Haircut value of each account's collateral tokens (USD)."""
        n = self.n
        if not len(self.collaterals):
            return np.zeros(n)
        return (self.haircut * coll_prices) @ self.coll[:, :n]

    def collateral_units(self) -> np.ndarray:
        """Total units of each collateral asset held by all accounts."""
        return self.coll[:, : self.n].sum(axis=1)

    def open_interest(self) -> np.ndarray:
        """Open interest per market in lots (Σ of long positions).

        Examples:
            >>> from crossmargin.model.markets import Market
            >>> led = Ledger([Market("BTC", 0.1, 0.001)])
            >>> a, b = led.open_account(1e6), led.open_account(1e6)
            >>> _ = led.trade(a, 0, 7, 50_000.0), led.trade(b, 0, -7, 50_000.0)
            >>> led.open_interest().tolist()
            [7.0]
        """
        if COMPILED:  # one pass, the same sums (model/_record.pxi)
            return ledger_open_interest(self)
        # max(pos, 0) without a mask (the same sums; + 0.0 turns a sum of −0.0 into 0.0)
        return np.maximum(self.pos[:, : self.n], 0.0).sum(axis=1) + 0.0
