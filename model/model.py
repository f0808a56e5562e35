"""CrossMarginModel: the Mesa model that ties the world, the exchange and the agents.

One step is one minute::

    shocks (Mesa events fired just before the step)
    → the world's index moves → agents act (orders match as they arrive)
    → the vault and the fund work their inventory into the book
    → funding on its interval → mark (the minute's sample) → cascade rounds
    → every negative balance booked → collect data
"""

from __future__ import annotations

import math
from functools import partial
from typing import Any

import mesa
import networkx as nx
import numpy as np
import pandas as pd

from .agents import (
    CarryDesk,
    Fundamentalist,
    LeveragedTrader,
    LeveragedTraders,
    LiquidityEntrant,
    MarketMaker,
    MomentumTrader,
    NoiseTrader,
    PegArbitrageur,
    PegKeeper,
    Trader,
)
from .collect import (
    AGENT_KINDS,
    REJECTION_COLUMNS,
    FrameCollector,
    StepRecorder,
)
from .contagion import build_cascade_graph, build_exposure_graph, cascade_metrics
from .events import LIQUIDATION_KINDS
from .exchange import Exchange, FeeSchedule
from .index import IndexProcess
from .markets import ISOLATED, MARGIN_MODES, Collateral, MarginTier, Market
from .measures import (
    accounts_liquidated,
    depth_retained,
    half_life,
    liquidation_count,
    long_share,
    loss_borne,
    max_drawdown,
)
from .pools import SyntheticDollarPool
from .risk import LiquidationPolicy, RiskEngine
from .scenario import STEPS_PER_DAY, Scenario, ShockConfig
from .shocks import Shock, make_shock

_VOL_HALFLIFE = 30  # steps, EMA of squared mid returns (the makers' volatility gauge)
_KIND_OF = {
    MarketMaker: 0,
    LiquidityEntrant: 0,  # a market maker that enters when spreads pay
    NoiseTrader: 1,
    Fundamentalist: 2,
    MomentumTrader: 3,
    LeveragedTrader: 4,
    CarryDesk: 5,
    PegKeeper: 6,
    PegArbitrageur: 9,
}
VECTOR_TYPES = (NoiseTrader, Fundamentalist, MomentumTrader, LeveragedTrader)
"""Agent types whose decisions are made for all active members at once."""


class CrossMarginModel(mesa.Model):
    """Agent-based model of cross-margin liquidation contagion.

    Args:
        scenario: A :class:`~model.scenario.Scenario` (default: ``Scenario()``).
        rng: Seed of the model's random generator (default: ``scenario.seed``).
        **overrides: Scenario fields to change, dotted keys written with ``__``
            (``liquidation__fee=0.01``), so that Mesa's ``batch_run`` can sweep them.
    """

    def __init__(
        self, scenario: Scenario | None = None, *, rng: Any = None, **overrides: Any
    ) -> None:
        """Build the market of ``scenario``: books, ledger, pools, agents and shocks.

        Args:
            scenario: A :class:`~crossmargin.model.scenario.Scenario` (default:
                ``Scenario()``, a small calm market).
            rng: Seed of the model's random generator (default: ``scenario.seed``); an
                int different from it is written into the resolved scenario.
            **overrides: Scenario fields to change, dotted keys written with ``__``
                (``liquidation__fee=0.01``), so that Mesa's ``batch_run`` can sweep them.

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=3), rng=5, margin_mode="isolated")
            >>> m.config.seed, m.config.margin_mode
            (5, 'isolated')
        """
        scenario = scenario or Scenario()
        if overrides:
            scenario = scenario.replace(**overrides)
        if rng is None:
            rng = scenario.seed
        elif isinstance(rng, int | np.integer) and rng != scenario.seed:
            scenario = scenario.replace(seed=int(rng))  # the resolved scenario names its seed
        super().__init__(rng=rng)
        self.config = scenario
        self.t = 0
        # The world's prices get their own stream, drawn first, so that runs that differ
        # only in policy (margin mode, mark rule, ...) see the same index path.
        self.world = IndexProcess(scenario, np.random.default_rng(int(self.rng.integers(2**63))))
        self._build_exchange(scenario)
        k = len(scenario.markets)
        self.index = self.world.published.copy()
        self.mark = self.index.copy()
        self.mid = self.index.copy()
        self.vol = np.zeros(k)  # EWMA volatility per step of the mark
        self.index_vol = np.zeros(k)  # the same of the index (the fair price elsewhere)
        self.spread_bps = np.zeros(k)  # each book's quoted spread at the last marking
        self._sigma_minute = np.array([mk.volatility for mk in scenario.markets]) / math.sqrt(
            STEPS_PER_DAY
        )
        self._sampled_mark = self.mark.copy()  # the last once-per-minute sample
        self._sampled_index = self.index.copy()
        self._mark_hist = [self.mark.copy()]
        self.basis = np.zeros(k)
        self.premium_sum = np.zeros(k)
        self.premium_n = 0  # premium samples since the last funding payment
        self.funding_rate = np.zeros(k)
        self.top_ups = 0.0
        self.derisk_count = 0
        self.exchange.marks = self.mark.copy()
        self.exchange.index = self.index.copy()
        self._build_agents(scenario)
        self.exchange.update_collateral_prices()
        self.val = self.exchange.revalue()
        self.val_prev = self.val
        self.shocks: list[Shock] = [make_shock(self, cfg) for cfg in scenario.shocks]
        for shock in self.shocks:
            self.schedule_event(shock.fire, at=shock.cfg.step - 0.5)
        self.active_shocks: list[tuple[int, int]] = []  # (event id, last step it is blamed)
        self.halted_until = 0  # trading is halted up to and including this step
        self.root_causes: dict[int, float] = {}
        self.edge_weights: dict[tuple[int, int], float] = {}
        self._last_recovery = 1.0
        self.recorder = StepRecorder(self)
        self.datacollector = FrameCollector(self.recorder.keys, capacity=scenario.steps)
        self.record = np.zeros(len(self.recorder.keys))  # this step's row
        self._agent_rows: list[dict] = []
        self.running = True

    # Mesa's base class keeps its own Scenario object; ``scenario`` is ours (pydantic),
    # also available as ``config``, the name the model uses internally.
    @property
    def scenario(self) -> Scenario:  # type: ignore[override]
        """The validated scenario this model was built from."""
        return self.config

    @scenario.setter
    def scenario(self, value: Any) -> None:
        self._mesa_scenario = value

    # ------------------------------------------------------------ building
    def _build_exchange(self, sc: Scenario) -> None:
        markets = [
            Market(
                m.name,
                m.tick,
                m.lot,
                tuple(
                    MarginTier(t.max_notional, t.mmr, t.max_leverage) for t in sc.effective_tiers(m)
                ),
                stress_move=m.stress_move,
            )
            for m in sc.markets
        ]
        collaterals, pool, pool_index = [], None, None
        if sc.collateral is not None:
            c = sc.collateral
            collaterals.append(
                Collateral(
                    c.name,
                    c.haircut,
                    c.price_source,
                    tick=c.tick,
                    lot=c.lot,
                    one_sided=c.one_sided,
                    peg=c.peg,
                )
            )
            pool = SyntheticDollarPool(
                supply=c.supply, reserves=c.supply * c.peg * (1 - c.vault_stake), vault_shares=0.0
            )
            pool_index = 0
        self.exchange = Exchange(
            markets,
            collaterals,
            fees=FeeSchedule(sc.fees.maker, sc.fees.taker),
            insurance_fund=sc.insurance_fund,
            vault_capital=sc.vault_capital,
            vault_max_leverage=sc.vault_max_leverage,
            insurance_floor=sc.liquidation.insurance_floor,
            order_band=sc.order_band,
            price_band=sc.price_band,
            synthetic_dollar=pool,
            synthetic_dollar_index=pool_index,
            capacity=2048,
        )
        ex = self.exchange
        self._vault_paid_in = sc.vault_capital
        if pool is not None and ex.vault is not None:
            c = sc.collateral
            stake = c.supply * c.peg * c.vault_stake
            # The dollar pool owns part of the vault (bought at NAV 1 with its backing).
            pool.vault_shares = ex.vault.deposit(-2, stake, ex.vault.total_shares)
            ex.ledger.deposit(ex.vault.account, stake)
            ex.ledger.deposits -= stake  # moved from the pool's backing, not new money
            ex.seeded += stake
            self._vault_paid_in += stake
        if pool is not None:
            ex.coll_index[0] = sc.collateral.peg
        liq = sc.liquidation
        self.risk = RiskEngine(
            ex,
            LiquidationPolicy(
                step_share=liq.step_share,
                target_ratio=liq.target_ratio,
                full_ratio=liq.full_ratio,
                max_partial_steps=liq.max_partial_steps,
                fee=liq.fee,
                max_slippage=liq.max_slippage,
                backstop=liq.backstop,
                fund_takeover=liq.fund_takeover,
                shortfall=liq.shortfall,
                adl_price=liq.adl_price,
                unwind_share=liq.unwind_share,
                unwind_band=liq.unwind_band,
                fund_max_hold=liq.fund_max_hold,
                pool_buffer=liq.pool_buffer,
            ),
        )

    def _build_agents(self, sc: Scenario) -> None:
        ex, a = self.exchange, sc.agents
        led = ex.ledger
        mode = MARGIN_MODES[sc.margin_mode]
        for _ in range(a.market_makers.count):
            acct = led.open_account(a.market_makers.capital)
            MarketMaker(self, acct, a.market_makers.capital, a.market_makers)
        for _ in range(a.noise.count):
            NoiseTrader(self, led.open_account(a.noise.capital), a.noise.capital, a.noise)
        for _ in range(a.fundamentalists.count):
            cfg = a.fundamentalists
            Fundamentalist(self, led.open_account(cfg.capital), cfg.capital, cfg=cfg)
        for _ in range(a.momentum.count):
            cfg = a.momentum
            MomentumTrader(self, led.open_account(cfg.capital), cfg.capital, cfg=cfg)
        self._build_leveraged(sc, mode)
        if sc.collateral is not None:
            c = sc.collateral
            keeper_tokens = 4 * c.book_depth / c.peg
            acct = led.open_account(8 * c.book_depth, collateral={0: keeper_tokens})
            keeper = PegKeeper(self, acct, 8 * c.book_depth, c)
            keeper.start_tokens = keeper_tokens
            self.peg_keeper = keeper
            if c.arbitrage_capital > 0:
                acct = led.open_account(c.arbitrage_capital)
                PegArbitrageur(self, acct, c.arbitrage_capital, c)
        for _ in range(a.entrants.count):  # last, so the others' accounts never move
            acct = led.open_account(a.entrants.capital)
            LiquidityEntrant(self, acct, a.entrants.capital, a.entrants)
        kind = np.full(led.n, -1, dtype=np.int64)
        for ag in self.agents:
            kind[ag.account] = _KIND_OF[type(ag)]
        kind[ex.insurance.account] = AGENT_KINDS.index("insurance_fund")
        if ex.vault is not None:
            kind[ex.vault.account] = AGENT_KINDS.index("backstop_vault")
        self._account_kind = kind
        # One vectorized Poisson draw per step activates agents: p = 1 − exp(−rate).
        self._actors: list[Trader] = [ag for ag in self.agents if ag.activation_rate > 0]
        rates = np.array([ag.activation_rate for ag in self._actors])
        self._p_active = 1.0 - np.exp(-rates)
        # Vectorized types decide per type (type index per actor; −1: decides alone).
        self._vector_types = [t for t in VECTOR_TYPES if t in self.agents_by_type]
        self._actor_types = np.array(
            [
                self._vector_types.index(type(a)) if type(a) in self._vector_types else -1
                for a in self._actors
            ],
            dtype=np.int64,
        )
        self._actor_type = self._actor_types.tolist()
        self._actor_row = np.zeros(len(self._actors), dtype=np.int64)

    def _build_leveraged(self, sc: Scenario, mode: int) -> None:
        """The leveraged traders, their state as arrays (:class:`LeveragedTraders`), and
        their initial positions opened against a basis desk at the index price; every
        draw and every position for all traders at once."""
        ex, rng, cfg = self.exchange, self.rng, sc.agents.leveraged
        led = ex.ledger
        n = cfg.count
        k = len(sc.markets)
        self.leveraged = LeveragedTraders(k)
        if n == 0:
            return
        capital = cfg.capital_median * rng.lognormal(0.0, cfg.capital_sigma, n)
        # Heavy right tail: below the median lognormal-ish, above it Pareto(α).
        u = rng.random(n)
        lev = np.where(
            u < 0.5,
            cfg.leverage_median * np.exp(rng.normal(0, 0.5, n).clip(-2, 0)),
            cfg.leverage_median * (1 - (u - 0.5) * 2) ** (-1 / cfg.leverage_tail),
        )
        lev = np.clip(lev, 1.0, cfg.max_leverage)
        # Nobody can target more than the exchange allows on tier 0 of its markets.
        caps = np.array([sc.effective_tiers(m)[0].max_leverage for m in sc.markets])
        price = self.index
        token_share = cfg.collateral_share if sc.collateral is not None else 0.0
        peg = sc.collateral.peg if sc.collateral is not None else 1.0
        cash = capital * (1 - token_share)
        units = capital * token_share / peg
        coll = {0: units} if sc.collateral is not None else None
        ids = led.open_accounts(cash, mode=mode, iso_leverage=lev, collateral=coll)
        weights = self._portfolios(cfg, n, sc)
        # Within each market's tier-0 leverage and the account's own initial margin
        # (binding for portfolio margin, whose IM is a stress-scenario loss).
        cap = np.where(weights != 0, caps[:, None], np.inf).min(axis=0)
        lev = np.minimum(lev, np.minimum(0.9 * cap, 0.9 / led.im_rates(weights, mode)))
        led.iso_leverage[ids] = lev  # isolated margin allocated at the capped leverage
        rows = self.leveraged.add(ids, capital, lev, cfg.reserve_share * capital, weights)
        for j in range(n):
            LeveragedTrader(self, int(ids[j]), float(capital[j]), cfg, row=int(rows[j]))
        # Open the initial positions against a basis desk at the index price.
        haircut = sc.collateral.haircut if sc.collateral is not None else 1.0
        eq = capital * (1 - token_share + token_share * haircut)
        pos = np.trunc(weights * (lev * eq) / (led.lot * price)[:, None])
        desk_lots = pos.sum(axis=1)
        net_notional = float(np.abs(desk_lots * led.lot * price).sum())
        # The leverage cap binds the desk too.
        desk_lev = min(sc.agents.carry_leverage, 0.9 * (sc.leverage_cap or math.inf))
        desk_cap = max(net_notional / desk_lev, 1.0)
        desk = led.open_account(desk_cap)
        self.carry_desk = CarryDesk(self, desk, desk_cap)
        for m in range(k):
            led.open_positions(ids, m, pos[m], float(price[m]))
            if desk_lots[m]:
                led.trade(desk, m, -int(desk_lots[m]), float(price[m]))

    def _portfolios(self, cfg, n: int, sc: Scenario) -> np.ndarray:
        """Signed weights (Σ|w| = 1 per trader), shape (markets, traders), over
        ``markets_per_trader`` markets each.

        ``naive``: markets at random, each long with probability ``long_bias``.
        ``correlation_aware``: after a random first market, each next one is the market
        least correlated with those chosen (a negatively correlated one is taken in the
        same direction, a highly correlated one as a hedge in the opposite direction),
        weights inverse to volatility: the diversification lever of cross margin. The
        rest of the portfolio follows from the first market, so it is built once per
        market and the traders draw only their first market and its side.
        """
        rng = self.rng
        k = len(sc.markets)
        per = min(cfg.markets_per_trader, k)
        if cfg.portfolio == "naive" or per == 1:
            chosen = np.argsort(rng.random((n, k)), axis=1)[:, :per]
            sign = np.where(rng.random((n, per)) < cfg.long_bias, 1.0, -1.0)
            w = np.zeros((n, k))
            np.put_along_axis(w, chosen, sign, axis=1)
            return (w / per).T
        corr = sc.correlation_matrix()
        vol = np.array([m.volatility for m in sc.markets])
        template = np.zeros((k, k))  # row: the first market; a long first position
        for first in range(k):
            w = template[first]
            w[first] = 1.0
            chosen = [first]
            while len(chosen) < per:
                rest = [m for m in range(k) if m not in chosen]
                score = [corr[m, chosen].mean() for m in rest]
                m = rest[int(np.argmin(np.abs(score)))]
                w[m] = -1.0 if float(np.mean(score)) > 0.5 else 1.0
                chosen.append(m)
            w[chosen] = w[chosen] / vol[chosen]
            template[first] = w / np.abs(w).sum()
        first = rng.integers(k, size=n)
        sign = np.where(rng.random(n) < cfg.long_bias, 1.0, -1.0)
        return (template[first] * sign[:, None]).T

    # ----------------------------------------------------------------- step
    def step(self) -> None:
        """One minute of trading (shocks were fired by Mesa events just before); during
        a halt only the world moves and the step is recorded."""
        self.t += 1
        self.exchange.step = self.t
        self.exchange.compact_trades()
        self.exchange.volume[:] = 0.0
        self._move_world()
        if self.t > self.halted_until:
            self._agents_act()
            self.risk.unwind()
            if self.t % self.config.funding.interval == 0:
                self._pay_funding()
            self._mark(sample=True)
            self._pool_events(0)
            self._cascade()
            self._book_losses()
        self._collect()
        if self.t >= self.config.steps:
            self.running = False

    def _move_world(self) -> None:
        """The outside world moves; with ``index_venue_weight`` w the index this venue
        uses is exp((1 − w) log world + w log mark): the venue in its own oracle basket
        (Hyperliquid's oracle is a weighted median of venues' prices)."""
        world = self.world.step()
        w = self.config.index_venue_weight
        if w > 0:
            self.index = np.exp((1 - w) * np.log(world) + w * np.log(self.mark))
        else:
            self.index = world.copy()
        self.exchange.index = self.index

    def _agents_act(self) -> None:
        """Poisson clocks: one vectorized draw picks who acts; the agent types whose
        decisions are a formula decide for all their active members in one vectorized
        computation each; then every active agent enters its orders in a random order."""
        rng = self.rng
        drawn = np.flatnonzero(rng.random(len(self._actors)) < self._p_active)
        order = rng.permutation(drawn)
        actors, kind, row = self._actors, self._actor_type, self._actor_row
        plans: list[tuple] = []
        kinds = self._actor_types[drawn]
        for t, cls in enumerate(self._vector_types):
            sel = drawn[kinds == t]
            row[sel] = np.arange(len(sel))
            plans.append(cls.decide(self, [actors[i] for i in sel]) if len(sel) else ())
        for i in order.tolist():
            t = kind[i]
            if t < 0:
                actors[i].act()
            else:
                actors[i].execute(plans[t], row[i])

    def _funding_rate(self, premium: np.ndarray) -> np.ndarray:
        """Binance's formula F = P + clamp(I − P, ±clamp), capped, for premium P."""
        f = self.config.funding
        return np.clip(premium + np.clip(f.interest - premium, -f.clamp, f.clamp), -f.cap, f.cap)

    def predicted_funding(self) -> np.ndarray:
        """Per market, the rate the next funding payment would have if its interval ended
        now: the formula on the premium averaged so far (the "estimated funding rate"
        venues display). Positive: longs pay shorts.

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=2, agents={"leveraged": {"count": 5}}))
            >>> m.predicted_funding().tolist()  # no premium sampled yet: the interest rate
            [0.0001, 0.0001]
        """
        return self._funding_rate(self.premium_sum / max(self.premium_n, 1))

    def _pay_funding(self) -> None:
        """Longs pay shorts (or the reverse) F × notional at mark, Binance's formula
        F = P + clamp(I − P, ±clamp) with P the average premium of the interval."""
        rate = self._funding_rate(self.premium_sum / self.config.funding.interval)
        self.funding_rate = rate
        self.premium_sum[:] = 0.0
        self.premium_n = 0
        led = self.exchange.ledger
        n = led.n
        per_position = led.pos[:, :n] * (led.lot * self.mark * rate)[:, None]
        pay = per_position.sum(axis=0)
        if led.n_isolated:
            # An isolated position pays (or earns) funding out of its own margin.
            iso = led.mode[:n] == ISOLATED
            led.iso_margin[:, :n][:, iso] -= per_position[:, iso]
            pay[iso] = 0.0
        led.cash[:n] -= pay
        led.epoch += 1
        # Σ pay is zero up to float rounding (every long has a short): the exchange
        # absorbs the rounding so that the books balance exactly.
        self.exchange.fee_pool += float(per_position.sum())

    def _mark(self, *, sample: bool = False) -> None:
        """Mark prices by the scenario's rule, then collateral prices and pool clearing.

        With ``sample`` (once per minute) the funding premium and the makers'
        volatility gauge take their sample; cascade rounds re-mark without one.
        """
        ex = self.exchange
        k = len(ex.markets)
        mid = np.full(k, np.nan)
        last = np.full(k, np.nan)
        spread = self.spread_bps
        for m, book in enumerate(ex.books):
            tick = ex.markets[m].tick
            if book.mid is not None:
                mid[m] = book.mid * tick
                spread[m] = 1e4 * book.spread / book.mid
            else:
                spread[m] = math.inf
            if book.last_price is not None:
                last[m] = book.last_price * tick
        self.mid = mid
        fallback = np.where(np.isnan(mid), np.where(np.isnan(last), self.index, last), mid)
        alpha = 1 - 0.5 ** (1 / self.config.basis_halflife)
        gap = np.nan_to_num(mid - self.index)
        self.basis = (1 - alpha) * self.basis + alpha * gap
        rule = self.config.mark_rule
        if rule == "index":
            mark = self.index.copy()
        elif rule == "book_mid":
            mark = fallback
        elif rule == "last_trade":
            mark = np.where(np.isnan(last), fallback, last)
        else:  # median of (index + basis, mid, last), as Binance and Hyperliquid do
            comps = np.vstack(
                [self.index + self.basis, fallback, np.where(np.isnan(last), fallback, last)]
            )
            mark = np.median(comps, axis=0)
        clamp = self.config.mark_clamp
        if clamp is not None:
            mark = np.clip(mark, self.index * (1 - clamp), self.index * (1 + clamp))
        self.mark = mark
        ex.marks = mark.copy()
        if sample:
            r = np.log(mark / self._sampled_mark)
            a = 1 - 0.5 ** (1 / _VOL_HALFLIFE)
            self.vol = np.sqrt((1 - a) * self.vol**2 + a * r**2)
            if self.config.margin_vol_scale > 0:
                self._scale_margins()
            ri = np.log(self.index / self._sampled_index)
            self.index_vol = np.sqrt((1 - a) * self.index_vol**2 + a * ri**2)
            self._sampled_index = self.index.copy()
            self.premium_sum += (mark - self.index) / self.index
            self.premium_n += 1
            self._sampled_mark = mark.copy()
        ex.clear_pools()
        ex.update_collateral_prices()

    def _scale_margins(self) -> None:
        """Risk-based margin: MM and IM rates × clip(1 + k (σ̂/σ − 1), 1, cap), with σ̂
        the mark's realized volatility per minute and σ the market's own."""
        sc = self.config
        ratio = self.vol / self._sigma_minute
        scale = np.clip(1 + sc.margin_vol_scale * (ratio - 1), 1.0, sc.margin_vol_cap)
        self.exchange.ledger.set_margin_scale(np.round(scale, 3))  # changes only when it moves

    def trailing_return(self, m: int, lookback: int) -> float:
        """Log return of market ``m``'s mark over the last ``lookback`` steps."""
        hist = self._mark_hist
        past = hist[max(0, len(hist) - 1 - lookback)]
        return float(np.log(self.mark[m] / past[m]))

    # ------------------------------------------------------------- cascade
    def _cascade(self) -> None:
        """Liquidate every account under maintenance margin, re-mark, clear pools, and
        repeat until none is left or the round cap is hit. Round k's liquidations are
        attributed to round k−1's forced flow (round 0: the active shock or the market)."""
        ex = self.exchange
        self.val_prev = self.val
        self.round_marks = [self.mark.copy()]
        prev_forced: list[int] = []
        pools = ex.pool_accounts
        for rnd in range(self.config.liquidation.max_rounds):
            first = len(ex.events)
            marks_before = self.mark.copy()
            coll_before = ex.coll_prices.copy()
            val = self.val = ex.revalue()
            # The pools' own risk rules first (never the client waterfall).
            acted = self.risk.pool_risk(
                step=self.t,
                round=rnd,
                blame=partial(self._attribute, rnd=rnd, prev_forced=prev_forced),
            )
            if acted:
                val = ex.revalue()
            if self.risk.cover_isolated_wallets(val):
                val = ex.revalue()
            self.val = val
            liq = np.flatnonzero(val.liquidatable)
            liq = liq[~np.isin(liq, pools)]
            if not len(liq) and len(ex.events) == first:
                break
            liq = liq[np.argsort(val.ratio[liq], kind="stable")]
            for acct in liq:
                causes = self._attribute(int(acct), rnd, prev_forced)
                self.risk.liquidate(int(acct), step=self.t, round=rnd, causes=tuple(causes))
            self.risk.settle(step=self.t, round=rnd)
            self._mark()
            self.round_marks.append(self.mark.copy())
            self._blame = (marks_before, self.mark.copy(), coll_before, ex.coll_prices.copy())
            self._pool_events(rnd)
            kinds = ex.events.column("kind")
            prev_forced = [
                e
                for e in range(first, len(ex.events))
                if kinds[e] in ("partial", "full", "pool_shortfall", "pool_derisk")
            ]
        else:  # the round cap was hit: value what the last round left
            self.val = ex.revalue()
        self._mark_hist.append(self.mark.copy())
        if len(self._mark_hist) > 512:
            del self._mark_hist[:256]

    def _book_losses(self) -> None:
        """Book every negative balance the cascade left (the risk engine's last pass,
        repeated while it books anything: charging a shortfall to the profitable can
        leave one of them a float's width below zero), then revalue for the record."""
        val, booked = self.val, False
        for _ in range(4):
            if not self.risk.resolve(
                step=self.t, round=self.config.liquidation.max_rounds, val=val
            ):
                break
            val, booked = None, True
        if booked:
            self.val = self.exchange.revalue()
            if self.risk.book_dust(self.val):
                self.val = self.exchange.revalue()

    def _attribute(
        self, acct: int, rnd: int, prev_forced: list[int], *, record: bool = True
    ) -> list[int]:
        """Cause events of a liquidation and the loss each caused (kept in ``edge_weights``
        for the event about to be added, unless ``record`` is false)."""
        ex = self.exchange
        led = ex.ledger
        weights: dict[int, float] = {}
        if rnd > 0 and prev_forced:
            before, after, cb, ca = self._blame
            move = (after - before) * led.lot * led.pos[:, acct]  # P&L per market
            coll_move = (ca - cb) * led.coll[:, acct] * ex.ledger.haircut if len(ca) else []
            markets = ex.events.column("market")
            notional = ex.events.column("notional")
            kinds = ex.events.column("kind")
            total = np.zeros(len(ex.markets))
            for e in prev_forced:
                if kinds[e] != "pool_shortfall" and markets[e] >= 0:
                    total[markets[e]] += notional[e]
            for e in prev_forced:
                if kinds[e] == "pool_shortfall":
                    loss = -float(np.sum(coll_move)) if len(coll_move) else 0.0
                elif markets[e] < 0:  # a pool's de-risking over several markets
                    loss = -float(move.sum()) if kinds[e] == "pool_derisk" else 0.0
                else:
                    m = markets[e]
                    loss = -float(move[m]) * notional[e] / total[m] if total[m] > 0 else 0.0
                if loss > 0:
                    weights[e] = loss
        if not weights:
            eq_drop = (
                float(self.val_prev.equity[acct] - self.val.equity[acct])
                if acct < len(self.val_prev.equity)
                else 0.0
            )
            active = [eid for eid, until in self.active_shocks if self.t <= until]
            for eid in active:
                weights[eid] = max(eq_drop, 0.0) / len(active)
        if record:
            first = len(ex.events)
            for e, w in weights.items():
                self.edge_weights[(e, first)] = w
        return sorted(weights)

    def _pool_events(self, rnd: int) -> None:
        """Record the path of the pool's recovery rate: a ``pool_shortfall`` when
        clearing writes its creditors down further, a ``pool_recovery`` (negative loss)
        when the rate rises again. The loss borne by the pool's creditors is the net
        write-down at the end (:meth:`summary`), not the sum of the falls."""
        ex = self.exchange
        if ex.usdx is None:
            return
        rec = ex.pool_recovery.get("usdx", 1.0)
        last = self._last_recovery
        if rec < last - 1e-9:
            loss = (last - rec) * ex.usdx.supply
            ex.events.add("pool_shortfall", step=self.t, round=rnd, loss=loss, price=rec)
        elif rec > last + 1e-9:
            gain = (rec - last) * ex.usdx.supply
            ex.events.add("pool_recovery", step=self.t, round=rnd, loss=-gain, price=rec)
        self._last_recovery = rec

    # ------------------------------------------------------------------ data
    def _collect(self) -> None:
        """This step's row of the model frame (:class:`~.collect.StepRecorder`)."""
        self.recorder.record(self.record)
        self.datacollector.collect(self)
        if self.config.collect_agents:
            self._agent_rows += self.recorder.agent_rows()

    # ------------------------------------------------------------- public
    def add_shock(self, shock: ShockConfig | dict[str, Any]) -> None:
        """Schedule one more shock in a running model (e.g. on a copy of it, to branch
        one history into several what-ifs with common random numbers).

        Args:
            shock: a :class:`ShockConfig` or its fields; its step must be after the
                current one and not after the scenario's last.

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=4, agents={"leveraged": {"count": 5}}))
            >>> m.run_for(1)
            >>> m.add_shock({"kind": "index_jump", "step": 3, "size": -0.1})
            >>> m.run_for(3)
            >>> int((m.events["kind"] == "shock").sum())
            1
        """
        cfg = shock if isinstance(shock, ShockConfig) else ShockConfig(**shock)
        if not self.t < cfg.step <= self.config.steps:
            raise ValueError(
                f"step: {cfg.step} is not after the current step {self.t} and at most "
                f"the last step {self.config.steps}"
            )
        s = make_shock(self, cfg)
        self.shocks.append(s)  # the model keeps the callback's object alive
        self.schedule_event(s.fire, at=cfg.step - 0.5)

    def withdraw(self, account: int, amount: float) -> None:
        """Take ``amount`` USD of cash out of ``account`` (money out, so the books still
        reconcile); the account may go below its margin and is then liquidated in the
        next step like any other. Used to make one account fail on purpose.

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=2, agents={"leveraged": {"count": 5}}))
            >>> before = float(m.accounts()["equity"].iloc[0])
            >>> m.withdraw(0, 100.0)
            >>> round(before - float(m.accounts()["equity"].iloc[0]), 6)
            100.0
        """
        self.exchange.ledger.deposit(account, -float(amount))
        self.val = self.exchange.revalue()

    @property
    def events(self) -> pd.DataFrame:
        """Every risk-engine action and shock, one row each."""
        return self.exchange.events.to_frame()

    @property
    def trades(self) -> pd.DataFrame:
        """Every fill and off-book transfer."""
        return self.exchange.trades_frame()

    def model_frame(self, *, long: bool = False) -> pd.DataFrame:
        """The per-step data: one row per step (wide), or with ``long=True`` one row per
        step, market and variable (columns ``t``, ``market``, ``variable``, ``value``;
        ``market`` is ``"all"`` for the venue-wide columns), ready for seaborn's
        ``relplot(..., row="variable", hue="market")``. Column meanings: docs/outputs.md.

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=2, agents={"leveraged": {"count": 5}}))
            >>> m.run_for(2)
            >>> f = m.model_frame(long=True)
            >>> list(f.columns), sorted(set(f["market"]))[:2]
            (['t', 'market', 'variable', 'value'], ['BTC', 'ETH'])
        """
        df = self.datacollector.frame()
        df["t"] = df["t"].astype("int64")
        if not long:
            return df
        markets = self.market_frame().melt(["t", "market"], var_name="variable")
        venue = [
            c for c in df.columns if c != "t" and c.split("_")[0] not in self.config.market_names
        ]
        rest = df[["t", *venue]].melt("t", var_name="variable").assign(market="all")
        out = pd.concat([markets, rest[["t", "market", "variable", "value"]]], ignore_index=True)
        return out.astype({"value": "float64"})

    def market_frame(self) -> pd.DataFrame:
        """The per-market columns of :meth:`model_frame` in long ("tidy") form, ready
        for seaborn: one row per step and market, columns ``t``, ``market`` and one per
        quantity (``index``, ``mark``, ``mid``, ``last``, ``spread``, ``depth1``, ...).

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=3, agents={"leveraged": {"count": 5}}))
            >>> m.run_for(3)
            >>> f = m.market_frame()
            >>> len(f), list(f.columns[:4])
            (6, ['t', 'market', 'index', 'mark'])
        """
        df = self.model_frame()
        parts = []
        for name in self.config.market_names:
            cols = [c for c in df.columns if c.startswith(f"{name}_")]
            part = df[["t", *cols]].rename(columns={c: c.removeprefix(f"{name}_") for c in cols})
            part.insert(1, "market", name)
            parts.append(part)
        return pd.concat(parts, ignore_index=True).sort_values(["t", "market"], ignore_index=True)

    def agent_frame(self) -> pd.DataFrame:
        """Per-agent rows (only with ``collect_agents = true``)."""
        return pd.DataFrame(self._agent_rows)

    def _kinds(self) -> np.ndarray:
        """Agent kind per account (:data:`AGENT_KINDS` index; −1 for accounts opened
        from outside the model, e.g. by a user's script)."""
        n = self.exchange.ledger.n
        if len(self._account_kind) < n:
            pad = np.full(n - len(self._account_kind), -1, dtype=np.int64)
            self._account_kind = np.concatenate([self._account_kind, pad])
        return self._account_kind

    def accounts(self) -> pd.DataFrame:
        """One row per account at the current marks: the exchange's books as a user
        (or an outside check) reads them.

        Columns: ``account``, ``agent_type`` (:data:`AGENT_KINDS`), ``margin_mode``,
        ``equity`` (USD, negative while under water), ``available`` (free balance as
        it is, negative included: cross/portfolio equity − IM − open-order margin;
        isolated, the wallet outside its positions, cash + haircut collateral value −
        deficit − open-order margin), ``maintenance_margin``, ``initial_margin``,
        ``gross_notional``, ``leverage`` (gross / equity; inf at equity ≤ 0 with
        positions), ``bad_debt_booked`` (USD written off for this account).

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=2, agents={"leveraged": {"count": 5}}))
            >>> m.run_for(2)
            >>> list(m.accounts().columns)[:3]
            ['account', 'agent_type', 'margin_mode']
        """
        ex, led = self.exchange, self.exchange.ledger
        val = ex.revalue()
        n = led.n
        iso = led.mode[:n] == ISOLATED
        om = np.zeros(n)
        for a, x in ex.order_margin.items():
            om[a] = x
        wallet = led.free_balance(ex.coll_prices)
        free = np.where(iso, wallet, val.equity - val.im) - om
        lev = np.divide(
            val.gross,
            val.equity,
            out=np.where(val.gross > 0, np.inf, 0.0),
            where=val.equity > 0,
        )
        modes = {v: k for k, v in MARGIN_MODES.items()}
        kind = self._kinds()
        return pd.DataFrame(
            {
                "account": np.arange(n, dtype=np.int64),
                "agent_type": [AGENT_KINDS[k] if k >= 0 else "other" for k in kind[:n]],
                "margin_mode": [modes[int(x)] for x in led.mode[:n]],
                "equity": val.equity,
                "available": free,
                "maintenance_margin": val.mm,
                "initial_margin": val.im,
                "gross_notional": val.gross,
                "leverage": lev,
                "bad_debt_booked": led.bad_debt_booked[:n].copy(),
            }
        )

    def pool_writedown(self) -> float | None:
        """The net write-down of the synthetic-dollar pool's creditors now (USD):
        (1 − recovery rate) × tokens outstanding; None without such a pool. Falls and
        rises along the way are the ``pool_shortfall`` / ``pool_recovery`` events.

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=2, agents={"leveraged": {"count": 5}}))
            >>> m.pool_writedown() is None
            True
        """
        ex = self.exchange
        if ex.usdx is None:
            return None
        return (1.0 - float(ex.pool_recovery.get("usdx", 1.0))) * float(ex.usdx.supply)

    @property
    def cascade_graph(self) -> nx.DiGraph:
        """The DAG of events: who caused whose loss, and how much."""
        return build_cascade_graph(self.exchange.events, self.edge_weights)

    @property
    def exposure_graph(self) -> nx.Graph:
        """Accounts, pools and markets; positions and claims as weighted edges."""
        return build_exposure_graph(self)

    def summary(self) -> dict[str, Any]:
        """Headline results of the run (JSON-ready)."""
        ex = self.exchange
        df = self.model_frame()
        ev = ex.events
        kinds = np.array(ev.column("kind"), dtype=object)
        notional = np.array(ev.column("notional"))
        names = self.config.market_names
        g = self.cascade_graph
        cm = cascade_metrics(g)
        first_shock = min((s.cfg.step for s in self.shocks), default=None)
        vault_pnl = float(df["vault_pnl"].iloc[-1]) if len(df) else 0.0
        fund_pnl = float(df["fund_pnl"].iloc[-1]) if len(df) else 0.0
        out: dict[str, Any] = {
            "scenario": self.config.name,
            "seed": int(self._seed) if isinstance(self._seed, int | np.integer) else None,
            "steps": int(self.t),
            "n_accounts": int(ex.ledger.n),
            "n_agents": len(self.agents),
            "liquidations": liquidation_count(ev),
            "accounts_liquidated": accounts_liquidated(ev),
            "liquidated_notional": float(notional[np.isin(kinds, LIQUIDATION_KINDS)].sum()),
            "long_share": long_share(ev),
            "bankruptcies": int(self.risk.bankruptcies),
            "backstop_notional": float(notional[kinds == "backstop"].sum()),
            "takeover_notional": float(notional[kinds == "takeover"].sum()),
            "insurance_fund_start": float(ex.insurance.start),
            "insurance_fund_end": float(df["insurance_fund"].iloc[-1])
            if len(df)
            else ex.insurance.start,
            "insurance_fund_min": float(min(df["insurance_fund"].min(), ex.insurance.start))
            if len(df)
            else ex.insurance.start,
            "adl_events": int((kinds == "adl").sum()),
            "fund_paid": float(self.risk.fund_paid),
            "adl_charged": float(self.risk.adl_charged),
            "socialized_loss": float(self.risk.socialized_loss),
            "bad_debt": float(self.risk.bad_debt),
            "vault_pnl": vault_pnl,
            "fund_fees": float(ex.insurance.fees_in),
            "fund_pnl": fund_pnl,
            "loss_borne": loss_borne(
                ev, vault_pnl=vault_pnl, fund_pnl=fund_pnl, pool_writedown=self.pool_writedown()
            ),
            "orders_rejected": {
                c.removeprefix("rejected_"): int(df[c].sum()) for c in REJECTION_COLUMNS
            },
            "unbooked_negative_equity": float(df["unbooked_negative_equity"].iloc[-1])
            if len(df)
            else 0.0,
            "max_unbooked_negative_equity": float(df["unbooked_negative_equity"].max())
            if len(df)
            else 0.0,
            "state_error": float(ex.state_error()),
            "max_drawdown": {n: max_drawdown(df[f"{n}_mark"].to_numpy()) for n in names},
            "cascade_max_depth": cm["max_depth"],
            "cascade_largest_size": cm["largest_size"],
            "cascade_mean_branching": cm["mean_branching"],
            "resilience_half_life": {
                n: half_life(df[f"{n}_depth1"].to_numpy(), first_shock - 1)
                if first_shock is not None
                else None
                for n in names
            },
            "depth_retained_1h": {
                n: depth_retained(df[f"{n}_depth1"].to_numpy(), first_shock - 1)
                if first_shock is not None
                else None
                for n in names
            },
            "trades": int(ex.n_trades),
            "top_ups": float(self.top_ups),
            "conservation_error": float(ex.conservation_error()),
        }
        return out
