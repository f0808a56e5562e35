"""The traders: Mesa agents whose account state lives in the exchange's ledger.

Each agent holds an account id and decides from what the model publishes each step
(index, mid, mark, realized volatility, the last revaluation). Agents are activated by
Poisson clocks drawn in one vectorized pass by the model; an agent that is not drawn
costs nothing.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import mesa
import numpy as np
from pydantic import BaseModel

from .markets import ISOLATED
from .orderbook import BUY, GTC, IOC, POST_ONLY, SELL

if TYPE_CHECKING:
    from .model import CrossMarginModel


class Trader(mesa.Agent):
    """Base class: an account on the exchange and helpers to size orders."""

    model: CrossMarginModel
    activation_rate: float = 0.0

    def __init__(
        self, model: CrossMarginModel, account: int, capital: float, *, cfg: BaseModel | None = None
    ) -> None:
        super().__init__(model)
        self.account = account
        self.capital = capital
        self.cfg = cfg
        # Activations per step: the agent type's config, else the class's own rate.
        self.activation_rate = getattr(cfg, "activation_rate", self.activation_rate)

    def lots(self, m: int, usd: float, price: float) -> int:
        """USD size → whole lots (at least 1)."""
        return max(1, int(usd / (self.model.exchange.markets[m].lot * price)))

    def equity(self) -> float:
        """Equity at the last revaluation."""
        return float(self.model.val.equity[self.account])

    def gross(self) -> float:
        """Gross notional at the last revaluation."""
        return float(self.model.val.gross[self.account])

    def position(self, m: int) -> float:
        return float(self.model.exchange.ledger.pos[m, self.account])

    def room(self, max_leverage: float) -> float:
        """USD of extra gross notional allowed by a leverage cap."""
        return max(0.0, max_leverage * self.equity() - self.gross())

    def act(self) -> None:  # pragma: no cover - overridden
        """One activation."""


class MarketMaker(Trader):
    """Ladder quotes around a reference price (a blend of index and mid).

    The half-spread widens with realized volatility; quotes are skewed against
    inventory; a level that was hit refills with probability ``replenish_rate`` per
    step (the resilience knob: cf. Large 2007 on how books replenish after large
    trades); the maker pulls all quotes when volatility, drawdown or inventory limits
    are breached and returns after a cool-down. Quotes are post-only, and only levels
    whose price changed are re-sent.
    """

    def __init__(self, model, account, capital, cfg, *, markets: list[int] | None = None) -> None:
        super().__init__(model, account, capital, cfg=cfg)
        k = len(model.exchange.markets)
        self.markets = list(range(k)) if markets is None else markets
        self.quotes: list[dict[tuple[int, int], tuple[int, int]]] = [{} for _ in range(k)]
        self.ref_ticks = np.zeros(k, dtype=np.int64)
        self.out_until = np.zeros(k, dtype=np.int64)  # withdrawn in market m until this step
        self.start_equity = capital
        self.withdrawals = 0
        # Makers differ in risk appetite, so they do not all pull quotes at once.
        self.vol_limit = cfg.withdraw_vol * float(model.rng.uniform(0.5, 2.0))
        self.vol_gate = np.full(k, self.vol_limit)

    def withdraw(self, m: int | None, until: int) -> None:
        """Cancel quotes (all markets when ``m`` is None) and stay out until ``until``."""
        ex = self.model.exchange
        for mk in self.markets if m is None else [m]:
            for oid, _p in self.quotes[mk].values():
                ex.cancel(self.account, mk, oid)
            self.quotes[mk].clear()
            self.ref_ticks[mk] = 0
            self.out_until[mk] = max(self.out_until[mk], until)
        self.withdrawals += 1

    def _stopped_out(self, t: int) -> bool:
        """A drawdown beyond ``withdraw_loss`` of capital pulls every quote for the
        cool-down (and re-anchors the drawdown); True if it did."""
        cfg = self.cfg
        eq = self.equity()
        if (self.start_equity - eq) > cfg.withdraw_loss * self.capital:
            self.withdraw(None, t + cfg.cooldown)
            self.start_equity = eq  # re-anchor after the cool-down
            return True
        return False

    def act(self) -> None:
        t = self.model.t
        if self._stopped_out(t):
            return
        for m in self.markets:
            if t < self.out_until[m]:
                continue
            if self._pulls(m):
                self.withdraw(m, t + self.cfg.cooldown)
                continue
            self._quote(m)

    def _vol(self, m: int) -> float:
        """Volatility per step that the maker reads (``vol_source``)."""
        model = self.model
        return float(model.vol[m] if self.cfg.vol_source == "mark" else model.index_vol[m])

    def _pulls(self, m: int) -> bool:
        """Whether volatility makes the maker pull its quotes in market ``m``.

        ``calm`` re-entry: whenever volatility is above the maker's limit. ``cooldown``
        re-entry: only when it is above a gate that starts at the limit, is raised to
        1.5 × the volatility that last pulled the quotes, and falls back with volatility
        (min(gate, 1.5 × vol), never below the limit), so the maker comes back after its
        cool-down into a market that is calming down, not only into a calm one.
        """
        vol = self._vol(m)
        if self.cfg.reentry == "calm":
            return vol > self.vol_limit
        gate = max(self.vol_limit, min(self.vol_gate[m], 1.5 * vol))
        self.vol_gate[m] = gate
        if vol > gate:
            self.vol_gate[m] = 1.5 * vol
            return True
        return False

    def _quote(self, m: int) -> None:
        model, cfg, ex = self.model, self.cfg, self.model.exchange
        spec = ex.markets[m]
        mid = model.mid[m]
        index = model.index[m]
        ref = index if math.isnan(mid) else cfg.index_weight * index + (1 - cfg.index_weight) * mid
        inv = self.position(m) * spec.lot * ref
        limit = cfg.inventory_limit * self.capital
        vol = self._vol(m)
        half = ref * (cfg.half_spread_bps * 1e-4 + cfg.vol_widen * vol)
        ref -= cfg.skew * (inv / limit) * half
        gap = ref * cfg.level_gap_bps * 1e-4
        ref_ticks = round(ref / spec.tick)
        gap_ticks = max(1, round(gap / spec.tick))
        book = ex.books[m]
        quotes = self.quotes[m]
        requote = abs(ref_ticks - self.ref_ticks[m]) * 2 > gap_ticks
        if requote:
            self.ref_ticks[m] = ref_ticks
        half_ticks = max(1, round(half / spec.tick))
        size = cfg.size_usd * model.config.markets[m].liquidity
        if cfg.reentry == "cooldown" and vol > self.vol_limit:
            size *= self.vol_limit / vol  # a risk budget: smaller in a wilder market
        qty = self.lots(m, size, ref)
        rng = model.rng
        account = self.account
        base = int(self.ref_ticks[m])  # a Python int keeps the book on its fast path
        for side in (BUY, SELL):
            if (side == BUY and inv > limit) or (side == SELL and inv < -limit):
                for lvl in range(cfg.levels):
                    q = quotes.pop((side, lvl), None)
                    if q is not None:
                        ex.cancel(self.account, m, q[0])
                continue
            for lvl in range(cfg.levels):
                price = base - side * (half_ticks + lvl * gap_ticks)
                if price <= 0:
                    continue
                q = quotes.get((side, lvl))
                live = q is not None and q[0] in book
                if live and q[1] == price:
                    continue
                if not live and q is not None and not requote and rng.random() > cfg.replenish_rate:
                    continue  # a hit level refills only at the replenishment rate
                if live:
                    ex.cancel(account, m, q[0])
                ex.limit(account, m, side, price, qty, tif=POST_ONLY)
                if book.last_id in book:  # rested (a rejected order leaves no id)
                    quotes[(side, lvl)] = (book.last_id, price)
                else:
                    quotes.pop((side, lvl), None)


class LiquidityEntrant(MarketMaker):
    """A market maker that quotes a market only while it pays: it enters when the
    spread exceeds ``entry_spread_bps`` or, with ``entry_funding``, when the predicted
    funding rate's size exceeds it (funding pays whoever holds against the crowd, as
    basis traders and market makers do after a crash), and leaves once the spread has
    stayed under ``exit_spread_bps`` for ``min_stay`` steps with funding no longer
    paying (:class:`~.scenario.EntrantConfig`)."""

    def __init__(self, model, account, capital, cfg, *, markets: list[int] | None = None) -> None:
        super().__init__(model, account, capital, cfg, markets=markets)
        k = len(model.exchange.markets)
        self.active = np.zeros(k, dtype=bool)
        self.calm_steps = np.zeros(k, dtype=np.int64)

    def act(self) -> None:
        model, cfg = self.model, self.cfg
        t = model.t
        if self._stopped_out(t):
            return
        funding = None if cfg.entry_funding is None else np.abs(model.predicted_funding())
        for m in self.markets:
            if t < self.out_until[m]:
                continue
            spread = model.spread_bps[m]  # as marked at the end of the last step
            paid = funding is not None and funding[m] > cfg.entry_funding
            if not self.active[m]:
                if spread <= cfg.entry_spread_bps and not paid:
                    continue
                self.active[m] = True
                self.calm_steps[m] = 0
            elif spread < cfg.exit_spread_bps and not paid:
                self.calm_steps[m] += 1
                if self.calm_steps[m] >= cfg.min_stay:
                    self.active[m] = False
                    self.withdraw(m, t + 1)
                    continue
            else:
                self.calm_steps[m] = 0
            if self._pulls(m):
                self.withdraw(m, t + cfg.cooldown)
                continue
            self._quote(m)


class PegArbitrageur(Trader):
    """Buys the synthetic dollar on this venue's book when it trades below its
    redemption value by more than twice the fee and redeems it at the pool; the cash
    comes back ``redeem_delay`` steps later (redemption takes time elsewhere), so the
    arbitrage is limited by its capital and that delay. Mints and sells when the token
    trades above. The depth and duration of a depeg come from these mechanics.
    """

    activation_rate = 1.0

    def __init__(self, model, account, capital, cfg) -> None:
        super().__init__(model, account, capital, cfg=cfg)
        self.pending: list[tuple[int, float]] = []  # (due step, escrowed units)
        self.redeemed = 0.0
        self.minted = 0.0

    def act(self) -> None:
        model, cfg, ex = self.model, self.cfg, self.model.exchange
        c = 0
        while self.pending and self.pending[0][0] <= model.t:
            _, units = self.pending.pop(0)
            self.redeemed += ex.settle_redemption(self.account, c, units, cfg.redeem_fee)
        book = ex.spot_books[c]
        tick, lot = ex.collaterals[c].tick, ex.collaterals[c].lot
        value = ex.redemption_value(c)
        cash = float(ex.ledger.cash[self.account])
        buy_below = math.floor(value * (1 - 2 * cfg.redeem_fee) / tick)
        ask = book.best_ask
        if ask is not None and ask <= buy_below and cash > 0:
            lots = int(cash / (ask * tick * lot))
            if lots > 0:
                ex.spot_limit(self.account, c, BUY, buy_below, lots, tif=IOC)
                units = ex.escrow(self.account, c, float(ex.ledger.coll[c, self.account]))
                if units > 0:
                    self.pending.append((model.t + cfg.redeem_delay, units))
            return
        sell_above = math.ceil(value * (1 + 2 * cfg.redeem_fee) / tick)
        bid = book.best_bid
        if bid is not None and bid >= sell_above and cash > 0:
            units = min(book.total_qty(BUY) * lot, cash / (value * (1 + cfg.redeem_fee)))
            lots = int(units / lot)
            if lots > 0 and ex.mint(self.account, c, lots * lot, cfg.redeem_fee) > 0:
                self.minted += lots * lot
                ex.spot_limit(self.account, c, SELL, sell_above, lots, tif=IOC)


class PegKeeper(Trader):
    """Quotes the collateral token against cash on its own thin spot book, around its
    peg, skewing its bids down as it accumulates tokens (limited capital)."""

    activation_rate = 3.0

    def __init__(self, model, account, capital, cfg) -> None:
        super().__init__(model, account, capital, cfg=cfg)
        self.orders: list[int] = []
        self.start_tokens = 0.0

    def act(self) -> None:
        ex, cfg = self.model.exchange, self.cfg
        c = 0
        book = ex.spot_books[c]
        tokens = float(ex.ledger.coll[c, self.account])
        # Inventory skew: every book's worth of tokens bought lowers its bids by 4%.
        excess = (tokens - self.start_tokens) / max(cfg.book_depth, 1.0)
        ref = cfg.peg * max(1 - 0.04 * max(excess, 0.0), 0.2)
        if self.orders and all(o in book for o in self.orders):
            return  # the ladder is intact
        for oid in self.orders:
            ex.spot_cancel(self.account, c, oid)
        self.orders = []
        per_level = cfg.book_depth / cfg.book_levels
        for lvl in range(cfg.book_levels):
            off = (lvl + 1) * cfg.book_gap_bps * 1e-4
            bid = round(ref * (1 - off) / cfg.tick)
            ask = round(ref * (1 + off) / cfg.tick)
            qty = max(1, int(per_level / (ref * cfg.lot)))
            if float(ex.ledger.cash[self.account]) > qty * ref * cfg.lot:
                ex.spot_limit(self.account, c, BUY, bid, qty)
                if book.last_id in book:
                    self.orders.append(book.last_id)
            if float(ex.ledger.coll[c, self.account]) >= qty * cfg.lot:
                ex.spot_limit(self.account, c, SELL, ask, qty)
                if book.last_id in book:
                    self.orders.append(book.last_id)


class NoiseTrader(Trader):
    """Zero-intelligence order flow (Farmer, Patelli & Zovko 2005): limit orders at a
    uniformly random distance behind the opposite best quote, market orders and
    cancellations, each with its own probability."""

    def __init__(self, model, account, capital, cfg) -> None:
        super().__init__(model, account, capital, cfg=cfg)
        self.orders: list[tuple[int, int]] = []

    def act(self) -> None:
        model, cfg, ex = self.model, self.cfg, self.model.exchange
        rng = model.rng
        u = rng.random()
        if u >= cfg.limit_share + cfg.market_share:
            if self.orders:
                m, oid = self.orders.pop(int(rng.integers(len(self.orders))))
                ex.cancel(self.account, m, oid)
            return
        m = int(rng.integers(len(ex.markets)))
        price = model.mid[m] if not math.isnan(model.mid[m]) else model.index[m]
        side = BUY if rng.random() < 0.5 else SELL
        pos_usd = self.position(m) * ex.markets[m].lot * price
        if abs(pos_usd) > 2 * self.capital:  # keep inventory bounded: lean against it
            side = SELL if pos_usd > 0 else BUY
        qty = self.lots(m, cfg.size_usd * rng.exponential(), price)
        if u < cfg.market_share:
            ex.market_order(self.account, m, side, qty)
            return
        book = ex.books[m]
        spec = ex.markets[m]
        opposite = book.best_ask if side == BUY else book.best_bid
        anchor = opposite if opposite is not None else round(price / spec.tick)
        span = max(2, int(price * cfg.offset_bps * 1e-4 / spec.tick))
        limit = anchor - side * int(rng.integers(1, span))
        if limit <= 0:
            return
        ex.limit(self.account, m, side, limit, qty)
        if book.last_id in book:
            self.orders.append((m, book.last_id))
            if len(self.orders) > cfg.max_orders:
                m0, oid = self.orders.pop(0)
                ex.cancel(self.account, m0, oid)


class Fundamentalist(Trader):
    """Trades the book toward the index (basis arbitrage) with limited capital, so a
    gap between the book and the world can persist when the arbitrageurs are full."""

    def act(self) -> None:
        model, cfg, ex = self.model, self.cfg, self.model.exchange
        m = int(model.rng.integers(len(ex.markets)))
        mid, index = model.mid[m], model.index[m]
        if math.isnan(mid):
            return
        gap = (mid - index) / index
        if abs(gap) * 1e4 < cfg.threshold_bps:
            return
        side = SELL if gap > 0 else BUY
        pos = self.position(m)
        reducing = pos * side < 0
        usd = cfg.size_usd * min(abs(gap) * 1e4 / max(cfg.threshold_bps, 1.0), 3.0)
        if not reducing:
            usd = min(usd, self.room(cfg.max_leverage))
            if usd <= 0:
                return
        spec = ex.markets[m]
        limit = round(index / spec.tick)
        ex.market_order(self.account, m, side, self.lots(m, usd, index), limit=limit)


class MomentumTrader(Trader):
    """Trend following: buys after a rise of more than ``threshold`` over ``lookback``
    steps, sells after a fall."""

    def act(self) -> None:
        model, cfg, ex = self.model, self.cfg, self.model.exchange
        m = int(model.rng.integers(len(ex.markets)))
        r = model.trailing_return(m, cfg.lookback)
        if abs(r) < cfg.threshold:
            return
        side = BUY if r > 0 else SELL
        pos = self.position(m)
        usd = cfg.size_usd
        if pos * side >= 0:
            usd = min(usd, self.room(cfg.max_leverage))
            if usd <= 0:
                return
        price = model.mark[m]
        ex.market_order(self.account, m, side, self.lots(m, usd, price))


class LeveragedTrader(Trader):
    """One account over several markets, targeting a leverage drawn from a heavy-tailed
    distribution.

    Leverage targeting (Adrian & Shin 2010; Thurner, Farmer & Geanakoplos 2012): the
    trader buys as equity rises and sells as it falls, pro-cyclically. On a margin
    call (margin ratio below ``call_ratio``) it tops up from limited off-exchange cash,
    which costs ``borrow_rate`` per step, or, when that is gone, de-risks by
    ``derisk_share`` before the exchange liquidates it.
    """

    def __init__(
        self, model, account, capital, cfg, *, weights: np.ndarray, leverage: float
    ) -> None:
        super().__init__(model, account, capital, cfg=cfg)
        self.weights = weights  # signed, Σ|w| = 1
        self.target_leverage = leverage
        self.reserve = cfg.reserve_share * capital
        self.borrowed = 0.0
        self.last_active = 0

    def act(self) -> None:
        model, cfg, ex = self.model, self.cfg, self.model.exchange
        t = model.t
        if self.borrowed > 0 and t > self.last_active:
            # Interest is owed off-exchange; it is paid by withdrawing what the account
            # has available, never more (an account at zero pays nothing here).
            cost = self.borrowed * cfg.borrow_rate * (t - self.last_active)
            paid = min(cost, ex.available(self.account))
            if paid > 0:
                ex.ledger.deposit(self.account, -paid)
        self.last_active = t
        eq = self.equity()
        if eq <= 0:
            return
        mm = float(model.val.mm[self.account])
        if mm > 0 and eq < cfg.call_ratio * mm:
            need = cfg.call_ratio * mm * 1.2 - eq
            top = min(need, self.reserve)
            if top > 0:
                ex.ledger.deposit(self.account, top)
                if ex.ledger.mode[self.account] == ISOLATED:
                    ex.ledger.add_isolated_margin(self.account, top)
                self.reserve -= top
                self.borrowed += top
                model.top_ups += top
            if top < need:
                self._derisk()
            return
        lev = self.gross() / eq
        target = self.target_leverage
        if abs(lev - target) <= cfg.rebalance_band * target:
            return
        self._rebalance(target * eq)

    def _derisk(self) -> None:
        ex = self.model.exchange
        for m in np.flatnonzero(ex.ledger.pos[:, self.account]):
            pos = int(ex.ledger.pos[m, self.account])
            qty = max(1, int(abs(pos) * self.cfg.derisk_share))
            ex.market_order(self.account, int(m), SELL if pos > 0 else BUY, min(qty, abs(pos)))
        self.model.derisk_count += 1

    def _rebalance(self, target_gross: float) -> None:
        model, ex = self.model, self.model.exchange
        for m in np.flatnonzero(self.weights):
            price = model.mark[m]
            lot = ex.markets[m].lot
            want = int(self.weights[m] * target_gross / (lot * price))
            have = int(ex.ledger.pos[m, self.account])
            delta = want - have
            if delta:
                ex.market_order(self.account, int(m), BUY if delta > 0 else SELL, abs(delta))


class CarryDesk(Trader):
    """A basis desk that holds the other side of the initial open interest, hedged
    off-exchange (so passive here); it earns funding and can itself be liquidated."""

    def act(self) -> None:  # passive
        return


AGENT_TYPES = (MarketMaker, NoiseTrader, Fundamentalist, MomentumTrader, LeveragedTrader)
__all__ = [
    "AGENT_TYPES",
    "GTC",
    "IOC",
    "CarryDesk",
    "Fundamentalist",
    "LeveragedTrader",
    "MarketMaker",
    "MomentumTrader",
    "NoiseTrader",
    "PegKeeper",
    "Trader",
]
