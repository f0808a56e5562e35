"""Agents that hold accounts on several venues: one owner, one account per venue, their
collateral moved between venues by the owner's treasury (:mod:`.treasury`).

* :class:`Arbitrageur`: trades a gap between two venues' books when it is wider than
  both taker fees and a threshold: the same spot asset on two spot venues, the same
  perpetual on two perpetual venues, or spot against perpetual (the basis). Capital is
  finite (Brunnermeier & Pedersen 2009: its margin cannot exceed its capital): a leg it
  cannot fund or has no units for is not traded, and each leg's inventory is capped.
* :class:`HedgedTrader`: long a perpetual on one venue and short the same on another
  (a funding or basis trade), each leg leveraged on its venue. When one leg is cut
  by a liquidation it cuts the other to match (on 10 October 2025 the accounts
  Hyperliquid auto-deleveraged had a median leverage of 0.18×: hedged desks cut on one
  venue while their hedge sat on another).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .agents import Trader
from .orderbook import BUY, IOC, SELL

if TYPE_CHECKING:
    from .model import CrossMarginModel
    from .scenario import CrossAgentsConfig
    from .venue import Venue

__all__ = ["SWEEPS", "Arbitrageur", "HedgedTrader"]

SWEEPS = 20
"""Trades an arbitrageur makes at most in one activation while the gap still pays."""


class Arbitrageur(Trader):
    """A cross-venue arbitrageur (see the module docstring).

    Each activation it picks a market at random and looks at every pair of its venues
    (spot–spot, perp–perp, spot–perp); where the best bid of one is above the best ask
    of the other by more than ``arbitrage_bps`` plus both taker fees, the widest such
    gap, it buys on the cheap venue and sells on the rich one, IOC at those prices,
    the second leg sized to what the first filled, and goes on (up to :data:`SWEEPS`
    trades) while the gap still pays. A leg that would take its
    inventory beyond 3× its capital there is not traded.

    Args:
        model: The model.
        venues: The venues it trades on.
        accounts: Its account on each of them.
        capital: Capital per venue account, USD.
        cfg: The cross-venue agents' settings.
        owner: Its owner id.
    """

    activation_rate = 0.5

    def __init__(
        self,
        model: CrossMarginModel,
        venues: list[Venue],
        accounts: list[int],
        capital: float,
        cfg: CrossAgentsConfig,
        *,
        owner: int,
    ) -> None:
        super().__init__(model, accounts[0], capital, cfg=cfg, venue=venues[0])
        self.activation_rate = cfg.arbitrage_rate
        # Its account on each venue it trades, by venue code.
        self.accounts = {v.code: a for v, a in zip(venues, accounts, strict=True)}
        self.owner = owner
        self.pairs = [(a.code, b.code) for a in venues for b in venues if a.code < b.code]
        self.trades = 0
        # Units it started with per (spot venue, market): its inventory is what it holds
        # beyond them.
        self.base: dict[tuple[int, int], int] = {}

    def act(self) -> None:
        model = self.model
        venues = model.world.venues
        cfg = self.cfg
        rng = model.rng
        if not self.pairs:
            return
        m = int(rng.integers(len(venues[self.pairs[0][0]].exchange.markets)))
        touch = {code: _touch(venues[code], m) for code in self.accounts if not venues[code].halted}
        best, trade = 0.0, None
        for a, b in self.pairs:
            qa, qb = touch.get(a), touch.get(b)
            if qa is None or qb is None:
                continue
            (bid_a, ask_a), (bid_b, ask_b) = qa, qb
            edge = cfg.arbitrage_bps * 1e-4 + venues[a].exchange.fees.taker
            edge += venues[b].exchange.fees.taker
            for cheap, rich, ask, bid in ((a, b, ask_a, bid_b), (b, a, ask_b, bid_a)):
                gap = bid / ask - 1 - edge
                if gap > best:
                    best, trade = gap, (venues[cheap], venues[rich], ask, bid)
        if trade is None:
            return
        cheap, rich, _, _ = trade
        edge = cfg.arbitrage_bps * 1e-4 + cheap.exchange.fees.taker + rich.exchange.fees.taker
        for _ in range(SWEEPS):  # sweep the gap while it pays and inventory allows
            qa, qb = _touch(cheap, m), _touch(rich, m)
            if qa is None or qb is None or qb[0] <= qa[1] * (1 + edge):
                return
            if not self._trade(m, cheap, rich, qa[1], qb[0]):
                return

    def _trade(self, m: int, cheap: Venue, rich: Venue, ask: float, bid: float) -> bool:
        """Buy on ``cheap`` at its ask, sell on ``rich`` at its bid (IOC); whether both
        legs traded."""
        cfg = self.cfg
        lot = float(cheap.exchange.markets[m].lot)
        qty = max(1, int(cfg.arbitrage_size_usd / (lot * ask)))
        buy_acct, sell_acct = self.accounts[cheap.code], self.accounts[rich.code]
        cap = 3.0 * self.capital / (lot * ask)  # inventory per leg, lots
        held_buy = float(cheap.exchange.ledger.pos[m, buy_acct])
        held_sell = float(rich.exchange.ledger.pos[m, sell_acct])
        inv_buy = held_buy - self.base.get((cheap.code, m), 0)
        inv_sell = held_sell - self.base.get((rich.code, m), 0)
        qty = min(qty, int(cap - inv_buy), int(cap + inv_sell))
        if rich.kind == "spot":
            qty = min(qty, int(held_sell))  # no shorting on a spot venue
        if qty <= 0:
            return False
        led = cheap.exchange.ledger
        before = int(led.pos[m, buy_acct])
        tick = cheap.exchange.markets[m].tick
        cheap.exchange.limit(buy_acct, m, BUY, round(ask / tick), qty, tif=IOC)
        got = int(led.pos[m, buy_acct]) - before
        if got <= 0:
            return False
        tick = rich.exchange.markets[m].tick
        sold = rich.exchange.limit(sell_acct, m, SELL, round(bid / tick), got, tif=IOC)
        self.trades += 1
        return sold > 0


class HedgedTrader(Trader):
    """Long a perpetual on one venue, short it on another (see the module docstring).

    Each activation it compares its two legs and, when one is smaller (a liquidation
    or ADL cut it), cuts the other to match by a market order: a hedge broken on one
    venue becomes forced flow on the other.

    Args:
        model: The model.
        legs: (venue, account) of its long leg and of its short leg.
        capital: Capital per leg, USD.
        owner: Its owner id.
    """

    activation_rate = 0.2

    def __init__(
        self,
        model: CrossMarginModel,
        legs: list[tuple[Venue, int]],
        capital: float,
        *,
        owner: int,
    ) -> None:
        (v0, a0), _ = legs
        super().__init__(model, a0, capital, venue=v0)
        self.legs = legs
        self.owner = owner
        self.cuts = 0

    def act(self) -> None:
        (va, aa), (vb, ab) = self.legs
        if va.halted or vb.halted:
            return
        pa = va.exchange.ledger.pos[:, aa]
        pb = vb.exchange.ledger.pos[:, ab]
        for m in np.flatnonzero((pa != 0) | (pb != 0)):
            la, lb = int(pa[m]), int(pb[m])
            excess = abs(la) - abs(lb)
            if excess > 0:
                va.exchange.market_order(aa, int(m), SELL if la > 0 else BUY, excess)
                self.cuts += 1
            elif excess < 0:
                vb.exchange.market_order(ab, int(m), SELL if lb > 0 else BUY, -excess)
                self.cuts += 1


def _touch(venue: Venue, m: int) -> tuple[float, float] | None:
    """(best bid, best ask) of ``venue``'s book ``m`` in USD, None if either is missing."""
    book = venue.exchange.books[m]
    bid, ask = book.best_bid, book.best_ask
    if bid is None or ask is None:
        return None
    tick = venue.exchange.markets[m].tick
    return bid * tick, ask * tick
