"""The traders: Mesa agents whose account state lives in the exchange's ledger.

Each agent holds an account id and decides from what the model publishes each step
(index, mid, mark, realized volatility, the last revaluation). Agents are activated by
Poisson clocks drawn in one vectorized pass by the model; an agent that is not drawn
costs nothing.
"""

from __future__ import annotations

import functools
import math
from typing import TYPE_CHECKING

import mesa
import numpy as np
from pydantic import BaseModel

from .markets import ISOLATED
from .orderbook import BUY, COMPILED, GTC, IOC, SELL, OrderBook

if COMPILED:  # the quoting rule and the ladder's diff compiled beside the book
    from ._book import (
        entrant_act,
        fundamentalist_decide,
        ladder_diff,
        leveraged_decide,
        maker_act,
        maker_quote,
        momentum_decide,
        noise_execute,
    )

if TYPE_CHECKING:
    from .model import CrossMarginModel
    from .venue import Venue


_MAKER_RULE = (
    "_act_rule",
    "_capital_capacity",
    "_stopped_out",
    "_pulls",
    "_vol",
    "_quote_rule",
    "_diff",
    "_pick_off",
    "equity",
)
"""The methods of :class:`MarketMaker` its compiled twins follow (``model/_maker.pxi``)."""
_ENTRANT_RULE = ("_entry_rule", "_quote")
"""The methods of :class:`LiquidityEntrant` its compiled twin follows (``entrant_act``
of ``model/_maker.pxi``), beside :data:`_MAKER_RULE`."""
_NOISE_RULE = ("_execute_rule", "position", "lots")
"""The methods of :class:`NoiseTrader` its compiled twin follows (``model/_noise.pxi``)."""
_FUNDAMENTALIST_RULE = ("decide", "_decide_rule")
"""The class methods of :class:`Fundamentalist` its compiled twin follows
(``model/_decide.pxi``; with the module's ``_room`` and ``_lots``)."""
_MOMENTUM_RULE = ("decide", "_decide_rule")
"""The class methods of :class:`MomentumTrader` its compiled twin follows (the same
file, the same helpers)."""
_LEVERAGED_RULE = ("decide", "_decide_rule")
"""The class methods of :class:`LeveragedTrader` its compiled twin follows (the same
file)."""


def _keeps(cls: type, base: type, names: tuple[str, ...]) -> bool:
    """Whether ``cls`` keeps ``base``'s methods ``names`` (overrides none of them)."""
    return all(getattr(cls, name) is getattr(base, name) for name in names)


@functools.cache
def _keeps_rule(cls: type, base: type, names: tuple[str, ...]) -> bool:
    """:func:`_keeps` for class methods (a new bound method at every lookup): no class
    from ``cls`` up to ``base`` defines one of ``names``."""
    for k in cls.__mro__:
        if k is base:
            return True
        if any(name in vars(k) for name in names):
            return False
    return True


class Trader(mesa.Agent):
    """Base class: an account on the exchange and helpers to size orders."""

    model: CrossMarginModel
    activation_rate: float = 0.0

    def __init__(
        self,
        model: CrossMarginModel,
        account: int,
        capital: float,
        *,
        cfg: BaseModel | None = None,
        venue: Venue | None = None,
    ) -> None:
        super().__init__(model)
        self.account = account
        self.capital = capital
        self.cfg = cfg
        # The venue its account is on (default: the model's home venue).
        self.venue: Venue = venue if venue is not None else model.world.home
        # Activations per step: the agent type's config, else the class's own rate.
        self.activation_rate = getattr(cfg, "activation_rate", self.activation_rate)

    def lots(self, m: int, usd: float, price: float) -> int:
        """USD size → whole lots (at least 1)."""
        return max(1, int(usd / (self.venue.exchange.markets[m].lot * price)))

    def equity(self) -> float:
        """Equity at the last revaluation."""
        return float(self.venue.val.equity[self.account])

    def gross(self) -> float:
        """Gross notional at the last revaluation."""
        return float(self.venue.val.gross[self.account])

    def position(self, m: int) -> float:
        return float(self.venue.exchange.ledger.pos[m, self.account])

    def room(self, max_leverage: float) -> float:
        """USD of extra gross notional allowed by a leverage cap."""
        return max(0.0, max_leverage * self.equity() - self.gross())

    vectorized: bool = False
    """Whether the type decides for all its active members at once (:meth:`decide`,
    :meth:`execute`); the model then calls those instead of :meth:`act`."""

    @classmethod
    def decide(cls, venue: Venue, agents: list[Trader]) -> tuple:
        """The decisions of ``agents`` (all of this type on ``venue``, active this step)
        in one vectorized computation: a plan with one row per agent, in their order."""
        raise NotImplementedError

    def execute(self, plan: tuple, r: int) -> None:
        """Enter the orders of row ``r`` of ``plan`` (when this agent's turn comes)."""
        raise NotImplementedError

    def act(self) -> None:
        """One activation: for a vectorized type, its decision alone, then its orders."""
        if not self.vectorized:  # pragma: no cover - overridden
            return
        self.execute(type(self).decide(self.venue, [self]), 0)


class MarketMaker(Trader):
    """Ladder quotes around a reference price (a blend of index and mid).

    **Capacity.** With ``capacity = "cooldown"`` (the default) a maker pulls its quotes
    when volatility, drawdown or inventory limits are breached and returns after a
    cool-down. With ``capacity = "capital"`` it never leaves for volatility (its spread
    widens with it): its quote size is its capital capacity ((equity / capital)², none
    after losing ``withdraw_loss``) times its inventory headroom, so depth falls with
    its losses and inventory and comes back only with its capital.

    The half-spread widens with realized volatility; quotes are skewed against
    inventory; a level that was hit refills with probability ``replenish_rate`` per
    step (the resilience knob: cf. Large 2007 on how books replenish after large
    trades); the maker pulls all quotes when volatility, drawdown or inventory limits
    are breached and returns after a cool-down. Quotes are post-only.

    **The ladder lives on a price grid** of ``level_gap_bps`` (in whole ticks, fixed
    from the price when the maker first quotes a market and re-derived only after the
    price has moved by a quarter): the bids are the ``levels`` grid prices nearest to
    the reference at least half-spread − half a gap below it, the asks likewise above,
    so the innermost quote is on average half a spread from the reference, as a
    ladder re-anchored whenever the reference drifts half a gap would be. When the
    reference, the spread or the skew move, the levels that leave the ladder are
    cancelled and those that enter it are placed; **every level still in the ladder
    keeps its resting order, and with it its queue priority** (and its size, even if
    the maker would now quote another size). A level still in the ladder whose order
    was filled refills with probability ``replenish_rate``; a level that newly enters
    is placed at once. Only positive prices are quoted (a wide spread skewed far enough
    can push the lower levels, or the reference itself, to zero or below).
    """

    def __init__(
        self, model, account, capital, cfg, *, markets: list[int] | None = None, venue=None
    ) -> None:
        super().__init__(model, account, capital, cfg=cfg, venue=venue)
        k = len(self.venue.exchange.markets)
        self.markets = list(range(k)) if markets is None else markets
        # The inventory it aims to hold (lots per market): 0 on a perpetual venue, the
        # units it started with on a spot venue.
        self.base_inventory = [0] * k
        # Per market: {signed price in ticks: order id} of the ladder as quoted (a bid
        # at +price, an ask at -price: one int key instead of a (side, price) pair).
        self.quotes: list[dict[int, int]] = [{} for _ in range(k)]
        self._grid = [0] * k  # grid spacing in ticks (0: not set)
        self._grid_price = [0.0] * k  # the price the grid was derived at
        # Constants of the quoting rule: (tick, lot, quote size in USD) per market.
        self._spec = [
            (mk.tick, mk.lot, cfg.size_usd * sc.liquidity)
            for mk, sc in zip(self.venue.exchange.markets, self.venue.config.markets, strict=True)
        ]
        self._limit = cfg.inventory_limit * capital
        self._half_bps = cfg.half_spread_bps * 1e-4
        self._shrinks = cfg.reentry == "cooldown"
        self._take_stale = cfg.take_stale
        self._by_capital = cfg.capacity == "capital"
        self._capacity = 1.0  # share of its quote size it carries (capacity = "capital")
        self._levels = range(cfg.levels)
        self.out_until = np.zeros(k, dtype=np.int64)  # withdrawn in market m until this step
        self.start_equity = capital
        self.withdrawals = 0
        # Makers differ in risk appetite, so they do not all pull quotes at once.
        self.vol_limit = cfg.withdraw_vol * float(model.rng.uniform(0.5, 2.0))
        self.vol_gate = np.full(k, self.vol_limit)
        # The compiled rule runs only for a class that keeps the Python rule it follows.
        self._compiled = _keeps(type(self), MarketMaker, _MAKER_RULE)

    def withdraw(self, m: int | None, until: int) -> None:
        """Cancel quotes (all markets when ``m`` is None) and stay out until ``until``."""
        ex = self.venue.exchange
        for mk in self.markets if m is None else [m]:
            for oid in self.quotes[mk].values():
                ex.cancel(self.account, mk, oid)
            self.quotes[mk].clear()
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
        """One activation by the rule of :meth:`_act_rule`; with the compiled book the
        same rule runs compiled (``maker_act`` of ``model/_maker.pxi``), unless a
        subclass overrides a method it follows."""
        if COMPILED and self._compiled:
            maker_act(self)
        else:
            self._act_rule()

    def _act_rule(self) -> None:
        """One activation: with ``capacity = "capital"`` its capacity, then its quotes in
        every market; else its stop-loss (:meth:`_stopped_out`), then in each market not
        in a cool-down its volatility gate (:meth:`_pulls`) and its quotes. This is the
        rule to read and change; ``model/_maker.pxi`` follows it line by line."""
        t = self.model.t
        if self._by_capital:
            self._capacity = self._capital_capacity()
            view = self._view()
            for m in self.markets:
                self._quote(m, view)
            return
        if self._stopped_out(t):
            return
        view = self._view()
        for m in self.markets:
            if t < self.out_until[m]:
                continue
            if self._pulls(m):
                self.withdraw(m, t + self.cfg.cooldown)
                continue
            self._quote(m, view)

    def _capital_capacity(self) -> float:
        """``capacity = "capital"``: the share of its quote size a maker can carry, its
        equity over its capital squared (Brunnermeier & Pedersen 2009: a liquidity
        provider's position is bounded by its capital, and a loss cuts it by more than
        the loss), 0 once it has lost ``withdraw_loss`` of its capital; it comes back
        only as the maker's equity does."""
        ratio = self.equity() / self.capital
        if ratio <= 1 - self.cfg.withdraw_loss:
            return 0.0
        return min(ratio, 1.0) ** 2

    def _view(self) -> tuple:
        """What the maker reads this activation, as plain floats: each market's mid,
        index, volatility (``vol_source``) and the maker's position."""
        venue = self.venue
        vol = venue.vol if self.cfg.vol_source == "mark" else venue.index_vol
        pos = venue.exchange.ledger.pos[:, self.account].tolist()
        if venue.kind == "spot":
            pos = [p - b for p, b in zip(pos, self.base_inventory, strict=True)]
        return (venue.mid.tolist(), venue.index.tolist(), vol.tolist(), pos)

    def _vol(self, m: int) -> float:
        """Volatility per step that the maker reads (``vol_source``)."""
        venue = self.venue
        return float(venue.vol[m] if self.cfg.vol_source == "mark" else venue.index_vol[m])

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

    def _quote(self, m: int, view: tuple | None = None) -> None:
        """Quote market ``m`` from ``view`` (:meth:`_view`, read now if not given) by the
        rule of :meth:`_quote_rule`; with the compiled book the same rule runs compiled
        (``maker_quote`` of ``model/_maker.pxi``: the same steps, floats and draws)."""
        if view is None:
            view = self._view()
        if COMPILED and self._compiled:
            maker_quote(self, m, view)
        else:
            self._quote_rule(m, view)

    def _quote_rule(self, m: int, view: tuple) -> None:
        """The quoting rule (the class docstring): the reference price, the half-spread
        widened by volatility, the inventory skew, the ladder's grid, the levels wanted,
        their diff against the ladder as quoted (:meth:`_diff`) and the update sent to
        the exchange (:meth:`~.exchange.Exchange.requote`). This is the rule to read and
        change; ``model/_maker.pxi`` follows it line by line."""
        model, cfg, ex = self.model, self.cfg, self.venue.exchange
        mids, indexes, vols, pos = view
        tick, lot, size = self._spec[m]
        mid = mids[m]
        index = indexes[m]
        w = cfg.index_weight
        ref = index if mid != mid else w * index + (1 - w) * mid
        inv = pos[m] * lot * ref
        limit = self._limit
        vol = vols[m]
        half = ref * (self._half_bps + cfg.vol_widen * vol)
        if self._by_capital:  # beyond its limit it quotes one side; the skew stops there
            ref -= cfg.skew * max(-1.0, min(1.0, inv / limit)) * half
        else:
            ref -= cfg.skew * (inv / limit) * half
        g = self._grid[m]
        if not g or abs(ref / self._grid_price[m] - 1.0) > 0.25:
            g = max(1, round(ref * cfg.level_gap_bps * 1e-4 / tick))
            self._grid[m] = g
            self._grid_price[m] = ref
        # Innermost grid prices at least half − g/2 from the reference, in ticks.
        inner = half / tick - 0.5 * g
        bid0 = math.floor((ref / tick - inner) / g) * g
        ask0 = math.ceil((ref / tick + inner) / g) * g
        if ask0 <= bid0:
            ask0 = bid0 + g
        if self._take_stale:
            self._pick_off(m, bid0, ask0, inv, max(1, int(size / (lot * ref))))
        if self._shrinks and vol > self.vol_limit:
            size *= self.vol_limit / vol  # a risk budget: smaller in a wilder market
        sizes = None
        if self._by_capital:
            # Capacity from capital, and headroom in inventory per side: the side that
            # adds to the inventory shrinks towards its limit, the other keeps its size.
            size *= self._capacity
            sizes = {
                BUY: size * max(0.0, 1.0 - max(inv, 0.0) / limit),
                SELL: size * max(0.0, 1.0 - max(-inv, 0.0) / limit),
            }
        levels = self._levels
        want: list[int] = []  # signed prices, inner levels first, bids then asks
        if not inv > limit:
            want += [bid0 - k * g for k in levels if bid0 - k * g > 0]
        if not inv < -limit:
            want += [-(ask0 + k * g) for k in levels if ask0 + k * g > 0]
        quotes = self.quotes[m]
        if COMPILED and self._compiled:  # the same diff compiled (model/_ladder.pxi)
            cancels, new = ladder_diff(quotes, want, ex.books[m], model.rng, cfg.replenish_rate)
        else:
            cancels, new = self._diff(quotes, want, ex.books[m])
        if not new and not cancels:
            return
        ladder = [(BUY, k) if k > 0 else (SELL, -k) for k in new]
        if sizes is None:
            qty = max(1, int(size / (lot * ref)))
            placed = ex.requote(self.account, m, cancels, ladder, qty)
        else:  # one size per side, in one call; a side without capacity places nothing
            buy, sell = (int(sizes[side] / (lot * ref)) for side in (BUY, SELL))
            go = [k for k in ladder if (buy if k[0] == BUY else sell) >= 1]
            done = ex.requote(self.account, m, cancels, go, buy, sell_qty=sell)
            ids = dict(zip(go, done, strict=True))
            placed = [ids.get(k, 0) for k in ladder]
        for key, oid in zip(new, placed, strict=True):
            if oid:
                quotes[key] = oid
            else:
                quotes.pop(key, None)

    def _diff(self, quotes: dict, want: list[int], book: OrderBook) -> tuple[list, list]:
        """The orders of the levels that left the ladder (popped from ``quotes``, to
        cancel) and the levels of ``want`` to place: an untouched level keeps its order
        and its queue place; a hit one refills only at the replenishment rate. The
        compiled book's twin is ``ladder_diff`` (``model/_ladder.pxi``)."""
        cancels = []
        if quotes:
            keep = set(want)
            for key in [k for k in quotes if k not in keep]:  # levels that left the ladder
                cancels.append(quotes.pop(key))
        new = []
        rng = self.model.rng
        refill = self.cfg.replenish_rate
        for key in want:
            oid = quotes.get(key)
            if oid is not None:
                if oid in book:  # the order still rests
                    continue
                if rng.random() > refill:
                    continue
            new.append(key)
        return cancels, new

    def _pick_off(self, m: int, bid0: int, ask0: int, inv: float, qty: int) -> None:
        """Take a resting order the reference left behind: sell into a bid at or above
        the maker's own ask, buy an ask at or below its bid, IOC at its own price (a
        positive one), one quote's size, within its inventory limit."""
        ex = self.venue.exchange
        book = ex.books[m]
        bid, ask = book.best_bid, book.best_ask
        if bid is not None and bid >= ask0 > 0 and inv > -self._limit:
            ex.limit(self.account, m, SELL, ask0, qty, tif=IOC)
        elif ask is not None and ask <= bid0 and inv < self._limit:
            ex.limit(self.account, m, BUY, bid0, qty, tif=IOC)

    @property
    def grid(self) -> np.ndarray:
        """The ladder's grid spacing per market, in ticks (0 where it has not quoted)."""
        return np.array(self._grid, dtype=np.int64)


class LiquidityEntrant(MarketMaker):
    """A market maker that quotes a market only while it pays: it enters when the
    spread exceeds ``entry_spread_bps`` or, with ``entry_funding``, when the predicted
    funding rate's size exceeds it (funding pays whoever holds against the crowd, as
    basis traders and market makers do after a crash), and leaves once the spread has
    stayed under ``exit_spread_bps`` for ``min_stay`` steps with funding no longer
    paying (:class:`~.scenario.EntrantConfig`)."""

    def __init__(
        self, model, account, capital, cfg, *, markets: list[int] | None = None, venue=None
    ) -> None:
        super().__init__(model, account, capital, cfg, markets=markets, venue=venue)
        k = len(self.venue.exchange.markets)
        self.active = np.zeros(k, dtype=bool)
        self.calm_steps = np.zeros(k, dtype=np.int64)
        # The compiled activation quotes as the compiled maker does: it needs both rules.
        self._entrant_compiled = self._compiled and _keeps(
            type(self), LiquidityEntrant, _ENTRANT_RULE
        )

    def act(self) -> None:
        """One activation by the rule of :meth:`_entry_rule`; with the compiled book the
        same rule runs compiled (``entrant_act`` of ``model/_maker.pxi``), unless a
        subclass overrides a method it follows."""
        if COMPILED and self._entrant_compiled:
            entrant_act(self)
        else:
            self._entry_rule()

    def _entry_rule(self) -> None:
        """One activation: its stop-loss, then per market its entry or exit, its
        volatility gate and its quotes. What it quotes from (:meth:`_view`) is read once,
        at the first market it quotes: quoting one market moves neither another market's
        position nor the marks, mids and volatilities, which change only at a marking.
        This is the rule to read and change; ``model/_maker.pxi`` follows it line by
        line."""
        model, cfg = self.model, self.cfg
        t = model.t
        if self._stopped_out(t):
            return
        funding = None if cfg.entry_funding is None else np.abs(self.venue.predicted_funding())
        view = None
        for m in self.markets:
            if t < self.out_until[m]:
                continue
            spread = self.venue.spread_bps[m]  # as marked at the end of the last step
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
            if view is None:
                view = self._view()
            self._quote(m, view)


class PegArbitrageur(Trader):
    """Buys the synthetic dollar on this venue's book when it trades below its
    redemption value by more than twice the fee and redeems it at the pool; the cash
    comes back ``redeem_delay`` steps later (redemption takes time elsewhere), so the
    arbitrage is limited by its capital and that delay. Mints and sells when the token
    trades above. The depth and duration of a depeg come from these mechanics.
    """

    activation_rate = 1.0

    def __init__(self, model, account, capital, cfg, *, venue=None) -> None:
        super().__init__(model, account, capital, cfg=cfg, venue=venue)
        self.pending: list[tuple[int, float]] = []  # (due step, escrowed units)
        self.redeemed = 0.0
        self.minted = 0.0

    def act(self) -> None:
        model, cfg, ex = self.model, self.cfg, self.venue.exchange
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

    def __init__(self, model, account, capital, cfg, *, venue=None) -> None:
        super().__init__(model, account, capital, cfg=cfg, venue=venue)
        self.orders: list[int] = []
        self.start_tokens = 0.0

    def act(self) -> None:
        ex, cfg = self.venue.exchange, self.cfg
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
    cancellations, each with its own probability.

    The random draws of all noise traders active in a step are made at once
    (:meth:`decide`); each then enters its order when its turn comes
    (:meth:`execute`), priced off the book as it stands at that moment.
    """

    vectorized = True

    def __init__(self, model, account, capital, cfg, *, venue=None) -> None:
        super().__init__(model, account, capital, cfg=cfg, venue=venue)
        self.orders: list[tuple[int, int]] = []
        # The compiled turn runs only for a class that keeps the Python rule it follows.
        self._compiled = _keeps(type(self), NoiseTrader, _NOISE_RULE)

    @classmethod
    def decide(cls, venue: Venue, agents: list[Trader]) -> np.ndarray:
        """One draw per random choice for every active noise trader, one row each:
        (action draw, market, side draw, size factor, offset draw, which order to
        cancel), a C-contiguous float array of shape (n, 6) (the market, a small whole
        number, exact as a float). One row is one agent's six draws side by side (48
        bytes): at a million traders a turn reads them in one place, not as six list
        items in six places, and the plan holds no Python objects for the garbage
        collector to walk."""
        rng = venue.rng
        n = len(agents)
        k = len(venue.exchange.markets)
        return np.column_stack(
            (
                rng.random(n),
                rng.integers(k, size=n),
                rng.random(n),
                rng.exponential(size=n),
                rng.random(n),
                rng.random(n),
            )
        )

    def execute(self, plan: np.ndarray, r: int) -> None:
        """Enter row ``r`` of ``plan`` by the rule of :meth:`_execute_rule`; with the
        compiled book the same rule runs compiled (``noise_execute`` of
        ``model/_noise.pxi``: the same steps, floats and orders), unless a subclass
        overrides a method it follows."""
        if COMPILED and self._compiled:
            noise_execute(self, plan, r)
        else:
            self._execute_rule(plan, r)

    def _execute_rule(self, plan: np.ndarray, r: int) -> None:
        """A noise trader's turn: cancel one of its resting orders (chosen by the plan's
        draw), or size an order from its draws, leaning against its inventory beyond
        twice its capital, and send it as a market order or as a limit order a random
        number of ticks behind the opposite best quote (at least one, fewer than
        ``offset_bps`` of the price); it keeps at most ``max_orders`` resting, the
        oldest cancelled first. This is the rule to read and change;
        ``model/_noise.pxi`` follows it line by line."""
        venue, cfg, ex = self.venue, self.cfg, self.venue.exchange
        u, market, side_draw, size_factor, offset_draw, pick = plan[r].tolist()
        if u >= cfg.limit_share + cfg.market_share:
            if self.orders:
                m, oid = self.orders.pop(int(pick * len(self.orders)))
                ex.cancel(self.account, m, oid)
            return
        m = int(market)
        mid = venue.mid.item(m)
        price = mid if not math.isnan(mid) else venue.index.item(m)
        side = BUY if side_draw < 0.5 else SELL
        pos_usd = self.position(m) * ex.markets[m].lot * price
        if abs(pos_usd) > 2 * self.capital:  # keep inventory bounded: lean against it
            side = SELL if pos_usd > 0 else BUY
        qty = self.lots(m, cfg.size_usd * size_factor, price)
        if u < cfg.market_share:
            ex.market_order(self.account, m, side, qty)
            return
        book = ex.books[m]
        spec = ex.markets[m]
        opposite = book.best_ask if side == BUY else book.best_bid
        anchor = opposite if opposite is not None else round(price / spec.tick)
        span = max(2, int(price * cfg.offset_bps * 1e-4 / spec.tick))
        limit = anchor - side * (1 + int(offset_draw * (span - 1)))  # 1 .. span − 1
        if limit <= 0:
            return
        ex.limit(self.account, m, side, limit, qty)
        if book.last_id in book:
            self.orders.append((m, book.last_id))
            if len(self.orders) > cfg.max_orders:
                m0, oid = self.orders.pop(0)
                ex.cancel(self.account, m0, oid)


def _room(venue: Venue, accounts: np.ndarray, max_leverage: float) -> np.ndarray:
    """USD of extra gross notional a leverage cap allows each account (last revaluation)."""
    val = venue.val
    return np.maximum(0.0, max_leverage * val.equity[accounts] - val.gross[accounts])


def _lots(venue: Venue, m: np.ndarray, usd: np.ndarray, price: np.ndarray) -> np.ndarray:
    """USD sizes → whole lots (at least 1), market by market (:meth:`Trader.lots`); 1
    where the price is missing (NaN: a book without a mark or mid yet), whose rows the
    callers do not act on."""
    lot = venue.exchange.ledger.lot[m]
    q = usd / (lot * price)
    return np.maximum(1, np.where(np.isfinite(q), q, 0.0).astype(np.int64))


class Fundamentalist(Trader):
    """Trades the book toward its anchor with limited capital (a leverage cap), so a gap
    between the book and the anchor can persist when they are full. On a perpetual
    venue the anchor is the index (basis arbitrage); on a spot venue of a world of
    venues it is the latent value (:mod:`.world`): the informed traders, who know what
    the asset is worth, a value that order flow moves too.

    Every active fundamentalist's decision (market, gap, side, size within its
    leverage room) is one vectorized computation per step (:meth:`decide`) from what
    the model published at the last marking; its order enters the book in its turn.
    """

    vectorized = True

    @classmethod
    def decide(cls, venue: Venue, agents: list[Trader]) -> tuple:
        """The plan of ``agents`` by the rule of :meth:`_decide_rule`; with the compiled
        book the same rule runs compiled (``fundamentalist_decide`` of
        ``model/_decide.pxi``: the same draw, floats and plan), unless a subclass
        overrides it."""
        if COMPILED and _keeps_rule(cls, Fundamentalist, _FUNDAMENTALIST_RULE):
            return fundamentalist_decide(venue, agents)
        return cls._decide_rule(venue, agents)

    @classmethod
    def _decide_rule(cls, venue: Venue, agents: list[Trader]) -> tuple:
        """Per active fundamentalist: a market drawn at random; the gap of its mid to the
        anchor; act beyond ``threshold_bps``, against the gap, with USD up to three
        times ``size_usd`` as the gap grows (within the leverage room unless the order
        reduces the position), a limit at the anchor. This is the rule to read and
        change; ``model/_decide.pxi`` follows it line by line."""
        cfg = agents[0].cfg
        ex = venue.exchange
        accounts = np.fromiter((a.account for a in agents), np.int64, len(agents))
        m = venue.rng.integers(len(ex.markets), size=len(agents))
        mid, index = venue.mid[m], venue.anchor[m]
        gap = (mid - index) / index  # NaN without a mid; never infinite (index > 0)
        size = np.abs(gap)
        act = ~np.isnan(mid) & (size * 1e4 >= cfg.threshold_bps)
        side = np.where(gap > 0, SELL, BUY)
        reducing = ex.ledger.pos[m, accounts] * side < 0
        size = np.where(np.isnan(size), 0.0, size)  # np.nan_to_num's result, at less cost
        usd = cfg.size_usd * np.minimum(size * 1e4 / max(cfg.threshold_bps, 1.0), 3.0)
        usd = np.where(reducing, usd, np.minimum(usd, _room(venue, accounts, cfg.max_leverage)))
        act &= usd > 0
        lots = _lots(venue, m, usd, index)
        ticks = np.array([mk.tick for mk in ex.markets])[m]
        limit = np.rint(index / ticks).astype(np.int64)
        return act.tolist(), m.tolist(), side.tolist(), lots.tolist(), limit.tolist()

    def execute(self, plan: tuple, r: int) -> None:
        if plan[0][r]:
            m = plan[1][r]
            self.venue.exchange.market_order(
                self.account, m, plan[2][r], plan[3][r], limit=plan[4][r]
            )


class MomentumTrader(Trader):
    """Trend following: buys after a rise of more than ``threshold`` over ``lookback``
    steps, sells after a fall (decided for all active members at once, as
    :class:`Fundamentalist`)."""

    vectorized = True

    @classmethod
    def decide(cls, venue: Venue, agents: list[Trader]) -> tuple:
        """The plan of ``agents`` by the rule of :meth:`_decide_rule`; with the compiled
        book the same rule runs compiled (``momentum_decide`` of ``model/_decide.pxi``:
        the same draw, floats and plan), unless a subclass overrides it."""
        if COMPILED and _keeps_rule(cls, MomentumTrader, _MOMENTUM_RULE):
            return momentum_decide(venue, agents)
        return cls._decide_rule(venue, agents)

    @classmethod
    def _decide_rule(cls, venue: Venue, agents: list[Trader]) -> tuple:
        """Per active trader: a market drawn at random; its log return over
        ``lookback`` marks; act beyond ``threshold``, with the trend, ``size_usd``
        (within the leverage room when adding to the position). This is the rule to
        read and change; ``model/_decide.pxi`` follows it line by line."""
        cfg = agents[0].cfg
        ex = venue.exchange
        accounts = np.fromiter((a.account for a in agents), np.int64, len(agents))
        m = venue.rng.integers(len(ex.markets), size=len(agents))
        hist = venue.mark_hist
        past = hist[max(0, len(hist) - 1 - cfg.lookback)]
        r = np.log(venue.mark[m] / past[m])
        act = np.abs(r) >= cfg.threshold
        side = np.where(r > 0, BUY, SELL)
        adding = ex.ledger.pos[m, accounts] * side >= 0
        usd = np.where(
            adding,
            np.minimum(cfg.size_usd, _room(venue, accounts, cfg.max_leverage)),
            cfg.size_usd,
        )
        act &= usd > 0
        lots = _lots(venue, m, usd, venue.mark[m])
        return act.tolist(), m.tolist(), side.tolist(), lots.tolist()

    def execute(self, plan: tuple, r: int) -> None:
        if plan[0][r]:
            self.venue.exchange.market_order(self.account, plan[1][r], plan[2][r], plan[3][r])


class LeveragedTraders:
    """The state of every leveraged trader of a model as arrays (one row per trader,
    in the order they were created): what the vectorized decision reads and writes.
    Each :class:`LeveragedTrader` is a Mesa agent whose attributes are views of its row.
    """

    def __init__(self, n_markets: int) -> None:
        self.n = 0
        self.account = np.zeros(0, dtype=np.int64)
        self.capital = np.zeros(0)
        self.target_leverage = np.zeros(0)
        self.reserve = np.zeros(0)
        self.borrowed = np.zeros(0)
        self.last_active = np.zeros(0, dtype=np.int64)
        self.weights = np.zeros((n_markets, 0))

    def add(
        self,
        accounts: np.ndarray,
        capital: np.ndarray,
        leverage: np.ndarray,
        reserve: np.ndarray,
        weights: np.ndarray,
    ) -> np.ndarray:
        """Append traders; return their rows."""
        k = len(accounts)
        rows = np.arange(self.n, self.n + k)
        self.account = np.concatenate([self.account, np.asarray(accounts, dtype=np.int64)])
        self.capital = np.concatenate([self.capital, capital])
        self.target_leverage = np.concatenate([self.target_leverage, leverage])
        self.reserve = np.concatenate([self.reserve, reserve])
        self.borrowed = np.concatenate([self.borrowed, np.zeros(k)])
        self.last_active = np.concatenate([self.last_active, np.zeros(k, dtype=np.int64)])
        self.weights = np.concatenate([self.weights, weights], axis=1)
        self.n += k
        return rows


class LeveragedTrader(Trader):
    """One account over several markets, targeting a leverage drawn from a heavy-tailed
    distribution.

    Leverage targeting (Adrian & Shin 2010; Thurner, Farmer & Geanakoplos 2012): the
    trader buys as equity rises and sells as it falls, pro-cyclically. On a margin
    call (margin ratio below ``call_ratio``) it tops up from limited off-exchange cash,
    which costs ``borrow_rate`` per step, or, when that is gone, de-risks by
    ``derisk_share`` before the exchange liquidates it.

    The decision of every active leveraged trader (interest, margin call, top-up,
    de-risking or rebalancing to target) is one vectorized computation per step over
    the rows of :class:`LeveragedTraders` (:meth:`decide`), from the last revaluation;
    each trader's orders then enter the book in its turn (:meth:`execute`).
    """

    vectorized = True

    def __init__(self, model, account, capital, cfg, *, row: int, venue=None) -> None:
        super().__init__(model, account, capital, cfg=cfg, venue=venue)
        self.row = row

    @property
    def state(self) -> LeveragedTraders:
        return self.venue.leveraged

    @property
    def weights(self) -> np.ndarray:
        """Signed portfolio weights per market (Σ|w| = 1)."""
        return self.state.weights[:, self.row]

    @property
    def target_leverage(self) -> float:
        return float(self.state.target_leverage[self.row])

    @property
    def reserve(self) -> float:
        """Off-exchange cash left for top-ups (USD)."""
        return float(self.state.reserve[self.row])

    @property
    def borrowed(self) -> float:
        """Cash topped up so far, on which interest is owed (USD)."""
        return float(self.state.borrowed[self.row])

    @classmethod
    def decide(cls, venue: Venue, agents: list[Trader]) -> tuple:
        """The plan of ``agents`` by the rule of :meth:`_decide_rule`; with the compiled
        book the same rule runs compiled (``leveraged_decide`` of ``model/_decide.pxi``,
        which runs this rule itself on a step with interest owed or a margin call),
        unless a subclass overrides it."""
        if COMPILED and _keeps_rule(cls, LeveragedTrader, _LEVERAGED_RULE):
            return leveraged_decide(venue, agents)
        return cls._decide_rule(venue, agents)

    @classmethod
    def _decide_rule(cls, venue: Venue, agents: list[Trader]) -> tuple:
        """Interest, margin calls and top-ups are applied at once; return per trader
        its action (0 nothing, 1 de-risk, 2 rebalance) and the lots to trade per market.
        This is the rule to read and change; ``model/_decide.pxi`` follows it."""
        st: LeveragedTraders = venue.leveraged
        cfg = agents[0].cfg
        ex, led, val = venue.exchange, venue.exchange.ledger, venue.val
        rows = np.fromiter((a.row for a in agents), np.int64, len(agents))
        acct = st.account[rows]
        t = venue.t
        # Interest is owed off-exchange; it is paid by withdrawing what the account has
        # available, never more (an account at zero pays nothing here).
        owes = (st.borrowed[rows] > 0) & (t > st.last_active[rows])
        if owes.any():
            r_owe = rows[owes]
            a_owe = acct[owes]
            cost = st.borrowed[r_owe] * cfg.borrow_rate * (t - st.last_active[r_owe])
            iso = led.mode[a_owe] == ISOLATED
            free = np.where(iso, led.cash[a_owe], val.equity[a_owe] - val.im[a_owe])
            om = ex.order_margin
            if om:
                free = free - np.array([om.get(int(a), 0.0) for a in a_owe])
            paid = np.minimum(cost, np.maximum(free, 0.0))
            _deposit(led, a_owe, -paid)
        st.last_active[rows] = t
        eq = val.equity[acct]
        mm = val.mm[acct]
        action = np.zeros(len(rows), dtype=np.int8)
        live = eq > 0
        call = live & (mm > 0) & (eq < cfg.call_ratio * mm)
        if call.any():
            need = cfg.call_ratio * mm[call] * 1.2 - eq[call]
            r_call = rows[call]
            top = np.minimum(need, st.reserve[r_call])
            pos = top > 0
            if pos.any():
                a_top = acct[call][pos]
                _deposit(led, a_top, top[pos])
                for a, x in zip(a_top.tolist(), top[pos].tolist(), strict=True):
                    if led.mode[a] == ISOLATED:
                        led.add_isolated_margin(a, x)
                st.reserve[r_call[pos]] -= top[pos]
                st.borrowed[r_call[pos]] += top[pos]
                venue.model.top_ups += float(top[pos].sum())
            action[np.flatnonzero(call)[top < need]] = 1
        rebalance = live & ~call
        delta = np.zeros((len(ex.markets), len(rows)), dtype=np.int64)
        if rebalance.any():
            target = st.target_leverage[rows]
            lev = np.divide(val.gross[acct], eq, out=np.zeros(len(rows)), where=live)
            off = rebalance & (np.abs(lev - target) > cfg.rebalance_band * target)
            if off.any():
                a_off = acct[off]
                gross = target[off] * eq[off]
                price = (led.lot * venue.mark)[:, None]
                want = (st.weights[:, rows[off]] * gross / price).astype(np.int64)
                have = led.pos[:, a_off].astype(np.int64)
                delta[:, off] = np.where(st.weights[:, rows[off]] != 0, want - have, 0)
                action[off] = 2
        # The rows that do not rebalance share one list of zeros (execute only reads a
        # row): at a million traders, 20,000 lists a step fewer for the collector.
        deltas = [[0] * len(ex.markets)] * len(rows)
        moves = np.flatnonzero(action == 2)
        for j, d in zip(moves.tolist(), delta.T[moves].tolist(), strict=True):
            deltas[j] = d
        return action.tolist(), deltas

    def execute(self, plan: tuple, r: int) -> None:
        action = plan[0][r]
        if not action:
            return
        ex = self.venue.exchange
        if action == 1:
            self._derisk()
            return
        for m, d in enumerate(plan[1][r]):
            if d:
                ex.market_order(self.account, m, BUY if d > 0 else SELL, abs(d))

    def _derisk(self) -> None:
        ex = self.venue.exchange
        for m in np.flatnonzero(ex.ledger.pos[:, self.account]):
            pos = int(ex.ledger.pos[m, self.account])
            qty = max(1, int(abs(pos) * self.cfg.derisk_share))
            ex.market_order(self.account, int(m), SELL if pos > 0 else BUY, min(qty, abs(pos)))
        self.model.derisk_count += 1


def _deposit(led, accounts: np.ndarray, amounts: np.ndarray) -> None:
    """External cash in (negative: out) for several distinct accounts at once, booked as
    :meth:`Ledger.deposit` books one."""
    led.cash[accounts] += amounts
    led.deposits += float(amounts.sum())
    version = led.version
    for a in accounts.tolist():
        version[a] += 1


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
    "LeveragedTraders",
    "MarketMaker",
    "MomentumTrader",
    "NoiseTrader",
    "PegKeeper",
    "Trader",
]
