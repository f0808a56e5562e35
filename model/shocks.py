"""Exogenous shocks, each fired by a Mesa event half a step before its step.

Callbacks are bound methods of shock objects that the model keeps alive (Mesa holds
event callbacks by weak reference). Every shock records a ``shock`` event, the root of
the cascade it sets off.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .agents import MarketMaker
from .collect import AGENT_KINDS
from .orderbook import SELL
from .scenario import ShockConfig

if TYPE_CHECKING:
    from .model import CrossMarginModel

__all__ = ["ATTRIBUTION_WINDOW", "Shock", "make_shock"]

ATTRIBUTION_WINDOW = 60
"""Steps after a shock ends during which round-0 liquidations are blamed on it."""


class Shock:
    """Base class: records the shock event (on the venue it hits), then applies
    :meth:`apply`."""

    def __init__(self, model: CrossMarginModel, cfg: ShockConfig) -> None:
        self.model = model
        self.cfg = cfg
        names = model.config.market_names
        if cfg.market is not None:
            self.mask = np.array([n == cfg.market for n in names])
        else:
            self.mask = np.array([cfg.markets == "all" or n in cfg.markets for n in names])
        self.venue = model.venue(cfg.venue)  # the venue it hits (default: the home venue)
        self.event_id = -1

    def fire(self) -> None:
        """Mesa event callback."""
        m = self.model
        ex = self.venue.exchange
        sel = np.flatnonzero(self.mask)
        market = int(sel[0]) if len(sel) == 1 else -1
        self.event_id = ex.events.add(
            "shock", step=self.cfg.step, round=0, market=market, qty=self.cfg.size
        )
        m.active_shocks.append(
            (self.event_id, self.cfg.step + self.cfg.duration + ATTRIBUTION_WINDOW)
        )
        self.apply()

    def apply(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class IndexJump(Shock):
    """The world's price moves by ``size`` (−0.1 = −10%), scaled by each market's beta,
    at once or spread over ``duration`` steps."""

    def apply(self) -> None:
        m = self.model
        beta = np.array([mk.beta for mk in m.config.markets]) if self.cfg.beta_scaled else 1.0
        move = math.log1p(self.cfg.size) * beta * self.mask
        m.world.news.jump(np.asarray(move, dtype=float), self.cfg.duration)


class VolRegime(Shock):
    """Volatility × ``size`` for ``duration`` steps (0: for the rest of the run)."""

    def apply(self) -> None:
        self.model.world.news.vol_mult[self.mask] *= self.cfg.size
        if self.cfg.duration > 0:
            self.model.schedule_event(self.end, after=self.cfg.duration)

    def end(self) -> None:
        self.model.world.news.vol_mult[self.mask] /= self.cfg.size


class MarketMakerWithdrawal(Shock):
    """A ``size`` share of the market makers pull their quotes for ``duration`` steps."""

    def apply(self) -> None:
        m = self.model
        makers = [a for a in m.agents_by_type.get(MarketMaker, []) if a.venue is self.venue]
        n = round(self.cfg.size * len(makers))
        if not n:
            return
        chosen = m.rng.choice(len(makers), size=n, replace=False)
        until = self.cfg.step + self.cfg.duration
        for i in sorted(chosen):
            for k in np.flatnonzero(self.mask):
                makers[i].withdraw(int(k), until)


class Depeg(Shock):
    """Sell pressure on the collateral token's own book: ``size`` tokens market-sold
    over ``duration`` steps by a holder that exits (on 10 October 2025 USDe traded at
    $0.65 on Binance's own book while it held near $1 elsewhere)."""

    def apply(self) -> None:
        self.seller = self.venue.exchange.ledger.open_account(0.0, collateral={0: self.cfg.size})
        self.left = self.cfg.size
        self.per_step = self.cfg.size / max(self.cfg.duration, 1)
        self.sell()

    def sell(self) -> None:
        ex = self.venue.exchange
        lot = ex.collaterals[0].lot
        qty = int(min(self.per_step, self.left) / lot)
        if qty > 0:
            ex.spot_market(self.seller, 0, SELL, qty)
        self.left -= self.per_step
        if self.left > 1e-9:
            self.model.schedule_event(self.sell, after=1)


class OracleFreeze(Shock):
    """The index the exchange sees stays stale for ``duration`` steps (an oracle outage):
    the news a single venue reads, or in a world of venues the index of the venue hit."""

    def apply(self) -> None:
        frozen = self.venue.index_frozen if self.model.world.multi else self.model.world.news.frozen
        frozen |= self.mask
        self.model.schedule_event(self.end, after=max(self.cfg.duration, 1))

    def end(self) -> None:
        frozen = self.venue.index_frozen if self.model.world.multi else self.model.world.news.frozen
        frozen &= ~self.mask


class Halt(Shock):
    """Trading halted for ``duration`` steps: agents do not trade, the risk engine does
    not liquidate and funding is not paid, while the index moves on (BitMEX halted on
    12 March 2020 from 02:16 to 02:40 UTC); at the end the books reopen on whatever
    the index did meanwhile."""

    def apply(self) -> None:
        v = self.venue
        v.halted_until = max(v.halted_until, self.cfg.step + max(self.cfg.duration, 1) - 1)


class SellProgram(Shock):
    """A seller works ``notional`` USD of one market on one venue over ``duration``
    minutes, in equal slices by market orders at the start of each minute (an impact
    study's metaorder, or a fund's forced exit); what a slice could not sell within the
    venue's order band is added to the next. On a spot venue it sells units it
    brings in (deposited from outside at the price of the moment, with 10% to spare);
    on a perpetual venue it sells short from an account holding the notional in cash
    (1× leverage)."""

    def apply(self) -> None:
        v, cfg = self.venue, self.cfg
        ex = v.exchange
        self.market = int(np.flatnonzero(self.mask)[0])
        m = self.market
        price = float(v.mark[m])
        lot = float(ex.markets[m].lot)
        self.total = max(1, round(cfg.notional / (lot * price)))
        if v.kind == "spot":
            self.seller = ex.ledger.open_account(0.0)
            ex.deposit_units(self.seller, m, int(1.1 * self.total) + 1, price)
        else:
            self.seller = ex.ledger.open_account(cfg.notional)
        v.extra_kinds[self.seller] = (AGENT_KINDS.index("seller"), -1)
        self.steps = max(cfg.duration, 1)
        self.k = 0
        self.sold = 0
        self.sell()

    def sell(self) -> None:
        """One slice, then the next a minute later."""
        ex = self.venue.exchange
        self.k += 1
        # What the schedule says should be sold by now, less what was: a slice the book
        # could not take is carried into the next one.
        q = (self.total * self.k) // self.steps - self.sold
        if q > 0 and not self.venue.halted:
            before = int(ex.ledger.pos[self.market, self.seller])
            ex.market_order(self.seller, self.market, SELL, q)
            self.sold += before - int(ex.ledger.pos[self.market, self.seller])
        if self.k < self.steps:
            self.model.schedule_event(self.sell, after=1)


class WithdrawalHalt(Shock):
    """The venue lets no collateral out for ``duration`` minutes: the treasuries'
    transfers from it wait (:mod:`.treasury`)."""

    def apply(self) -> None:
        tr = self.model.world.treasury
        code = self.venue.code
        tr.halted_until[code] = max(
            tr.halted_until[code], self.cfg.step + max(self.cfg.duration, 1) - 1
        )


_KINDS = {
    "index_jump": IndexJump,
    "vol_regime": VolRegime,
    "mm_withdrawal": MarketMakerWithdrawal,
    "depeg": Depeg,
    "oracle_freeze": OracleFreeze,
    "halt": Halt,
    "sell_program": SellProgram,
    "withdrawal_halt": WithdrawalHalt,
}


def make_shock(model: CrossMarginModel, cfg: ShockConfig) -> Shock:
    """The shock object for a scenario entry.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=10, shocks=[]))
        >>> cfg = ShockConfig(kind="index_jump", step=5, size=-0.08, duration=15)
        >>> type(make_shock(m, cfg)).__name__
        'IndexJump'
    """
    return _KINDS[cfg.kind](model, cfg)
