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
from .orderbook import SELL
from .scenario import ShockConfig

if TYPE_CHECKING:
    from .model import CrossMarginModel

ATTRIBUTION_WINDOW = 60
"""Steps after a shock ends during which round-0 liquidations are blamed on it."""


class Shock:
    """Base class: records the shock event, then applies :meth:`apply`."""

    def __init__(self, model: CrossMarginModel, cfg: ShockConfig) -> None:
        self.model = model
        self.cfg = cfg
        names = model.config.market_names
        self.mask = np.array([cfg.markets == "all" or n in cfg.markets for n in names])
        self.event_id = -1

    def fire(self) -> None:
        """Mesa event callback."""
        m = self.model
        ex = m.exchange
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
        m.world.jump(np.asarray(move, dtype=float), self.cfg.duration)


class VolRegime(Shock):
    """Volatility × ``size`` for ``duration`` steps (0: for the rest of the run)."""

    def apply(self) -> None:
        self.model.world.vol_mult[self.mask] *= self.cfg.size
        if self.cfg.duration > 0:
            self.model.schedule_event(self.end, after=self.cfg.duration)

    def end(self) -> None:
        self.model.world.vol_mult[self.mask] /= self.cfg.size


class MarketMakerWithdrawal(Shock):
    """A ``size`` share of the market makers pull their quotes for ``duration`` steps."""

    def apply(self) -> None:
        m = self.model
        makers = list(m.agents_by_type.get(MarketMaker, []))
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
        m = self.model
        self.seller = m.exchange.ledger.open_account(0.0, collateral={0: self.cfg.size})
        self.left = self.cfg.size
        self.per_step = self.cfg.size / max(self.cfg.duration, 1)
        self.sell()

    def sell(self) -> None:
        ex = self.model.exchange
        lot = ex.collaterals[0].lot
        qty = int(min(self.per_step, self.left) / lot)
        if qty > 0:
            ex.spot_market(self.seller, 0, SELL, qty)
        self.left -= self.per_step
        if self.left > 1e-9:
            self.model.schedule_event(self.sell, after=1)


class OracleFreeze(Shock):
    """The index the exchange sees stays stale for ``duration`` steps (an oracle outage)."""

    def apply(self) -> None:
        self.model.world.frozen |= self.mask
        self.model.schedule_event(self.end, after=max(self.cfg.duration, 1))

    def end(self) -> None:
        self.model.world.frozen &= ~self.mask


class Halt(Shock):
    """Trading halted for ``duration`` steps: agents do not trade, the risk engine does
    not liquidate and funding is not paid, while the index moves on (BitMEX halted on
    12 March 2020 from 02:16 to 02:40 UTC); at the end the books reopen on whatever
    the index did meanwhile."""

    def apply(self) -> None:
        m = self.model
        m.halted_until = max(m.halted_until, self.cfg.step + max(self.cfg.duration, 1) - 1)


_KINDS = {
    "index_jump": IndexJump,
    "vol_regime": VolRegime,
    "mm_withdrawal": MarketMakerWithdrawal,
    "depeg": Depeg,
    "oracle_freeze": OracleFreeze,
    "halt": Halt,
}


def make_shock(model: CrossMarginModel, cfg: ShockConfig) -> Shock:
    """The shock object for a scenario entry."""
    return _KINDS[cfg.kind](model, cfg)
