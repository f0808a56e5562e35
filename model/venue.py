"""A venue: one exchange with its books, ledger, risk engine, pools, marking and funding.

A perpetual venue marks its markets by its own rule (``mark_rule``) against the index
it is given each step (the world's exogenous index in a single-venue world, the rule
over its constituent spot venues in a multi-venue one), pays funding on its interval,
liquidates through its own waterfall (:mod:`.risk`) in cascade rounds and books every
negative balance. A spot venue has books for assets that trade against cash with no
leverage and no shorting (the order-entry check of :class:`~.exchange.Exchange` in
``spot`` mode), its mark is its mid, and it has no funding and no liquidations.

Every venue writes into the world's one event log (its events carry the venue), so a
cascade graph links events of different venues.
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from .agents import LeveragedTraders, Trader
from .collect import AGENT_KINDS
from .contagion import EDGE_KINDS
from .events import VenueEvents
from .exchange import Exchange, FeeSchedule
from .markets import ISOLATED, Collateral, MarginTier, Market
from .pools import SyntheticDollarPool
from .risk import LiquidationPolicy, RiskEngine
from .scenario import STEPS_PER_DAY, Scenario

if TYPE_CHECKING:
    from .model import CrossMarginModel

__all__ = ["Venue"]

_PRICE = EDGE_KINDS.index("price")
_COLLATERAL = EDGE_KINDS.index("collateral")

_VOL_HALFLIFE = 30  # steps, EMA of squared mid returns (the makers' volatility gauge)


class Venue:
    """One exchange of the world.

    Args:
        model: The model it belongs to (its clock, random stream and shared state).
        config: The venue's scenario: the world's markets with this venue's own rules,
            fees, pools and agents (for a single-venue world, the scenario itself).
        name: The venue's name (events and frames carry it).
        code: Its index among the world's venues.
        kind: ``perp`` or ``spot``.
        prices: The index at the start (USD per unit, one per market).
        events: The world's event log seen from this venue.
    """

    def __init__(
        self,
        model: CrossMarginModel,
        config: Scenario,
        *,
        name: str,
        code: int,
        kind: str,
        prices: np.ndarray,
        events: VenueEvents,
    ) -> None:
        self.model = model
        self.config = config
        self.name = name
        self.code = code
        self.kind = kind
        self._build_exchange(config, events)
        k = len(config.markets)
        self.index = np.array(prices, dtype=float)
        self.mark = self.index.copy()
        self.mid = self.index.copy()
        self.vol = np.zeros(k)  # EWMA volatility per step of the mark
        self.index_vol = np.zeros(k)  # the same of the index (the fair price elsewhere)
        self.spread_bps = np.zeros(k)  # each book's quoted spread at the last marking
        self._sigma_minute = np.array([mk.volatility for mk in config.markets]) / math.sqrt(
            STEPS_PER_DAY
        )
        self._sampled_mark = self.mark.copy()  # the last once-per-minute sample
        self._sampled_index = self.index.copy()
        self.mark_hist = [self.mark.copy()]
        self.basis = np.zeros(k)
        self.premium_sum = np.zeros(k)
        self.premium_n = 0  # premium samples since the last funding payment
        self.funding_rate = np.zeros(k)
        self.exchange.marks = self.mark.copy()
        self.exchange.index = self.index.copy()
        self.halted_until = 0  # trading is halted up to and including this step
        self.index_frozen = np.zeros(k, dtype=bool)  # an oracle outage (a world of venues)
        # What informed traders anchor on: the index on a perpetual venue, the latent
        # value on a spot venue in a world of venues (set by the world each step).
        self.anchor = self.index
        self.round_marks: list[np.ndarray] = [self.mark.copy()]
        self.account_kind = np.zeros(0, dtype=np.int64)
        self.owner = np.zeros(0, dtype=np.int64)  # owner id per account (−1: none)
        # Accounts of agents that live on several venues: account → (kind, owner).
        self.extra_kinds: dict[int, tuple[int, int]] = {}
        self.val = self.exchange.revalue()
        self.val_prev = self.val
        self._blame: tuple = ()
        self._flow: _ForcedFlow | None = None  # the last round's forced flow (attribute)
        self._last_recovery = 1.0
        self.leveraged = LeveragedTraders(k)  # the leveraged traders' state as arrays
        self.peg_keeper: Trader | None = None
        self.carry_desk: Trader | None = None

    @property
    def rng(self) -> np.random.Generator:
        """The model's random stream (agents draw from it)."""
        return self.model.rng

    @property
    def t(self) -> int:
        """The model's clock."""
        return self.model.t

    @property
    def halted(self) -> bool:
        """Whether trading is halted this step."""
        return self.model.t <= self.halted_until

    def quote(self) -> np.ndarray:
        """Per market, the book's mid, else its last trade, else NaN: the price an
        oracle reads from this venue."""
        ex = self.exchange
        out = np.full(len(ex.markets), np.nan)
        for m, book in enumerate(ex.books):
            tick = ex.markets[m].tick
            if book.mid is not None:
                out[m] = book.mid * tick
            elif book.last_price is not None:
                out[m] = book.last_price * tick
        return out

    # ------------------------------------------------------------ building
    def _build_exchange(self, sc: Scenario, events: VenueEvents) -> None:
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
            # The pool's stake in the backstop vault is bought with part of its backing;
            # without a vault the whole backing stays in reserves.
            stake = c.vault_stake if sc.vault_capital > 0 else 0.0
            pool = SyntheticDollarPool(
                supply=c.supply, reserves=c.supply * c.peg * (1 - stake), vault_shares=0.0
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
            events=events,
            spot=self.kind == "spot",
        )
        ex = self.exchange
        self.vault_paid_in = sc.vault_capital
        if pool is not None and ex.vault is not None:
            c = sc.collateral
            stake = c.supply * c.peg * c.vault_stake
            # The dollar pool owns part of the vault (bought at NAV 1 with its backing).
            pool.vault_shares = ex.vault.deposit(-2, stake, ex.vault.total_shares)
            ex.ledger.deposit(ex.vault.account, stake)
            ex.ledger.deposits -= stake  # moved from the pool's backing, not new money
            ex.seeded += stake
            self.vault_paid_in += stake
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
                adl_rank=liq.adl_rank,
                unwind_share=liq.unwind_share,
                unwind_band=liq.unwind_band,
                fund_max_hold=liq.fund_max_hold,
                pool_buffer=liq.pool_buffer,
            ),
        )

    def set_kinds(self, kinds: np.ndarray, owners: np.ndarray) -> None:
        """The agent kind (:data:`~.collect.AGENT_KINDS` index) and owner of every
        account opened so far; pools take their own kinds."""
        ex = self.exchange
        kinds = np.asarray(kinds, dtype=np.int64).copy()
        kinds[ex.insurance.account] = AGENT_KINDS.index("insurance_fund")
        if ex.vault is not None:
            kinds[ex.vault.account] = AGENT_KINDS.index("backstop_vault")
        self.account_kind = kinds
        self.owner = np.asarray(owners, dtype=np.int64).copy()

    # --------------------------------------------------------------- a step
    def set_index(self, index: np.ndarray) -> None:
        """The index this venue sees this step (its exchange prices collateral and the
        vault and fund anchor their unwinding on it)."""
        self.index = np.asarray(index, dtype=float)
        self.exchange.index = self.index

    def open(self, t: int) -> None:
        """The start of a step: the exchange's clock, its trade log compacted, the
        minute's volume and signed flow reset."""
        ex = self.exchange
        ex.step = t
        ex.compact_trades()
        ex.volume[:] = 0.0
        ex.flow[:] = 0.0
        ex.lots_traded[:] = 0.0
        ex.informed_flow[:] = 0.0

    def settle(self, t: int) -> None:
        """After the agents (nothing during a halt): pools unwind, funding on its
        interval, the minute's mark, the pool's path, cascade rounds, every negative
        balance booked."""
        if t <= self.halted_until:
            return
        self.risk.unwind()
        if self.kind == "perp" and t % self.config.funding.interval == 0:
            self.pay_funding()
        self.remark(sample=True)
        self.pool_events(t, 0)
        if self.kind == "perp":
            self.cascade(t)
            self.book_losses(t)
        else:
            self.val_prev = self.val
            self.val = self.exchange.revalue()
            self.round_marks = [self.mark.copy()]
            self.mark_hist.append(self.mark.copy())
            if len(self.mark_hist) > 512:
                del self.mark_hist[:256]

    # ------------------------------------------------------------- funding
    def funding_rate_of(self, premium: np.ndarray) -> np.ndarray:
        """Binance's formula F = P + clamp(I − P, ±clamp), capped, for premium P."""
        f = self.config.funding
        return np.clip(premium + np.clip(f.interest - premium, -f.clamp, f.clamp), -f.cap, f.cap)

    def predicted_funding(self) -> np.ndarray:
        """Per market, the rate the next funding payment would have if its interval ended
        now: the formula on the premium averaged so far (the "estimated funding rate"
        venues display). Positive: longs pay shorts."""
        return self.funding_rate_of(self.premium_sum / max(self.premium_n, 1))

    def pay_funding(self) -> None:
        """Longs pay shorts (or the reverse) F × notional at mark, Binance's formula
        F = P + clamp(I − P, ±clamp) with P the average premium of the interval."""
        rate = self.funding_rate_of(self.premium_sum / self.config.funding.interval)
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
        led.touch()
        # Σ pay is zero up to float rounding (every long has a short): the exchange
        # absorbs the rounding so that the books balance exactly.
        self.exchange.fee_pool += float(per_position.sum())

    # ------------------------------------------------------------- marking
    def remark(self, *, sample: bool = False) -> None:
        """Mark prices by the venue's rule, then collateral prices and pool clearing.

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
        gap = mid - self.index  # NaN without a mid, else finite: np.nan_to_num, cheaper
        gap[np.isnan(gap)] = 0.0
        self.basis = (1 - alpha) * self.basis + alpha * gap
        rule = self.config.mark_rule if self.kind == "perp" else "book_mid"
        if rule == "index":
            mark = self.index.copy()
        elif rule == "book_mid":
            mark = fallback
        elif rule == "last_trade":
            mark = np.where(np.isnan(last), fallback, last)
        else:  # median of (index + basis, mid, last), as Binance and Hyperliquid do
            a, b = self.index + self.basis, fallback
            c = np.where(np.isnan(last), fallback, last)
            # The middle of three, element by element: the value np.median picks, at a
            # fraction of its cost (NaN propagates as there).
            mark = np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
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
        hist = self.mark_hist
        past = hist[max(0, len(hist) - 1 - lookback)]
        return float(np.log(self.mark[m] / past[m]))

    # ------------------------------------------------------------- cascade
    def cascade(self, t: int) -> None:
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
                step=t, round=rnd, blame=partial(self.attribute, rnd=rnd, prev_forced=prev_forced)
            )
            if acted:
                val = ex.revalue()
            if self.risk.cover_isolated_wallets(val):
                val = ex.revalue()
            self.val = val
            liq = np.flatnonzero(val.liquidatable)
            if len(liq):  # most rounds liquidate nobody: skip isin's setup
                liq = liq[~np.isin(liq, pools)]
            if not len(liq) and len(ex.events) == first:
                break
            liq = liq[np.argsort(val.ratio[liq], kind="stable")]
            for acct in liq:
                causes = self.attribute(int(acct), rnd, prev_forced)
                self.risk.liquidate(int(acct), step=t, round=rnd, causes=tuple(causes))
            self.risk.settle(step=t, round=rnd)
            self.remark()
            self.round_marks.append(self.mark.copy())
            self._blame = (marks_before, self.mark.copy(), coll_before, ex.coll_prices.copy())
            self.pool_events(t, rnd)
            kinds = ex.events.column("kind")
            prev_forced = [
                e
                for e in range(first, len(ex.events))
                if kinds[e] in ("partial", "full", "pool_shortfall", "pool_derisk")
            ]
        else:  # the round cap was hit: value what the last round left
            self.val = ex.revalue()
        self.mark_hist.append(self.mark.copy())
        if len(self.mark_hist) > 512:
            del self.mark_hist[:256]

    def book_losses(self, t: int) -> None:
        """Book every negative balance the cascade left (the risk engine's last pass,
        repeated while it books anything: charging a shortfall to the profitable can
        leave one of them a float's width below zero), then revalue for the record."""
        val, booked = self.val, False
        for _ in range(4):
            if not self.risk.resolve(step=t, round=self.config.liquidation.max_rounds, val=val):
                break
            val, booked = None, True
        if booked:
            self.val = self.exchange.revalue()
            if self.risk.book_dust(self.val):
                self.val = self.exchange.revalue()

    def attribute(
        self, acct: int, rnd: int, prev_forced: list[int], *, record: bool = True
    ) -> list[int]:
        """Cause events of a liquidation and the loss each caused (kept in the model's
        ``edge_weights`` for the event about to be added, unless ``record`` is false):
        round k > 0, the forced flow of round k − 1 that moved what the account holds;
        round 0, what the world blames (:meth:`CrossMarginModel.blame`)."""
        ex = self.exchange
        led = ex.ledger
        if rnd > 0 and prev_forced:
            flow = self._forced_flow(prev_forced)
            before, after, cb, ca = self._blame
            move = (after - before) * led.lot * led.pos[:, acct]  # P&L per market
            loss = np.zeros(len(flow.events))
            # Forced orders in a market: the account's loss there, shared by notional.
            loss[flow.priced] = -move[flow.market] * flow.notional / flow.total
            if len(flow.shortfall) and len(ca):  # a pool's write-down moved collateral
                coll_move = (ca - cb) * led.coll[:, acct] * led.haircut
                loss[flow.shortfall] = -float(np.sum(coll_move))
            if len(flow.derisk):  # a pool's de-risking over several markets
                loss[flow.derisk] = -float(move.sum())
            hit = loss > 0
            if hit.any():
                causes = flow.events[hit]
                if record:
                    self.model.edge_weights.record_sorted(
                        len(ex.events), causes, loss[hit], flow.kind[hit]
                    )
                return flow.ids[hit].tolist()  # the round's int objects, not new ones
        eq_drop = (
            float(self.val_prev.equity[acct] - self.val.equity[acct])
            if acct < len(self.val_prev.equity)
            else 0.0
        )
        weights, kinds_of = self.model.blame(self, acct, max(eq_drop, 0.0))
        if record:
            self.model.edge_weights.record(len(ex.events), weights, kinds_of)
        return sorted(weights)

    def _forced_flow(self, forced: list[int]) -> _ForcedFlow:
        """The round's forced events as arrays for :meth:`attribute` (kept while the
        round's list is the same object)."""
        if self._flow is None or self._flow.source is not forced:
            self._flow = _ForcedFlow(forced, self.exchange.events, len(self.exchange.markets))
        return self._flow

    def pool_events(self, t: int, rnd: int) -> None:
        """Record the path of the pool's recovery rate: a ``pool_shortfall`` when
        clearing writes its creditors down further, a ``pool_recovery`` (negative loss)
        when the rate rises again. The loss borne by the pool's creditors is the net
        write-down at the end, not the sum of the falls."""
        ex = self.exchange
        if ex.usdx is None:
            return
        rec = ex.pool_recovery.get("usdx", 1.0)
        last = self._last_recovery
        if rec < last - 1e-9:
            loss = (last - rec) * ex.usdx.supply
            ex.events.add("pool_shortfall", step=t, round=rnd, loss=loss, price=rec)
        elif rec > last + 1e-9:
            gain = (rec - last) * ex.usdx.supply
            ex.events.add("pool_recovery", step=t, round=rnd, loss=-gain, price=rec)
        self._last_recovery = rec

    # ------------------------------------------------------------- reading
    def kinds(self) -> np.ndarray:
        """Agent kind per account (:data:`~.collect.AGENT_KINDS` index; −1 for accounts
        opened from outside the model, e.g. by a user's script)."""
        n = self.exchange.ledger.n
        if len(self.account_kind) < n:
            old = len(self.account_kind)
            pad = np.full(n - old, -1, dtype=np.int64)
            self.account_kind = np.concatenate([self.account_kind, pad])
            self.owner = np.concatenate([self.owner, pad])
            for a, (kind, owner) in self.extra_kinds.items():
                if a >= old:
                    self.account_kind[a], self.owner[a] = kind, owner
            if self.exchange.custody >= old:
                self.account_kind[self.exchange.custody] = AGENT_KINDS.index("custody")
        return self.account_kind

    def pool_writedown(self) -> float | None:
        """The net write-down of the synthetic-dollar pool's creditors now (USD):
        (1 − recovery rate) × tokens outstanding; None without such a pool."""
        ex = self.exchange
        if ex.usdx is None:
            return None
        return (1.0 - float(ex.pool_recovery.get("usdx", 1.0))) * float(ex.usdx.supply)

    def __repr__(self) -> str:
        return f"Venue({self.name!r}, {self.kind}, {len(self.exchange.markets)} markets)"

    def describe(self) -> dict[str, Any]:
        """Name, kind and markets."""
        return {"name": self.name, "kind": self.kind, "markets": self.config.market_names}


class _ForcedFlow:
    """One round's forced events, as :meth:`Venue.attribute` reads them for every
    account the next round liquidates: ids ascending; ``priced``, the positions of
    those in a market whose total forced notional is positive, with their ``market``,
    ``notional`` and that ``total`` (summed in the round's order); ``shortfall`` (a pool's
    write-down: collateral) and ``derisk`` (a pool's de-risking over several markets);
    each event's edge ``kind`` code (:data:`~.contagion.EDGE_KINDS`)."""

    __slots__ = (
        "derisk",
        "events",
        "ids",
        "kind",
        "market",
        "notional",
        "priced",
        "shortfall",
        "source",
        "total",
    )

    def __init__(self, forced: list[int], events: VenueEvents, n_markets: int) -> None:
        self.source = forced
        order = sorted(forced)
        markets = events.column("market")
        notional = events.column("notional")
        kinds = events.column("kind")
        total = np.zeros(n_markets)
        for e in forced:  # in the round's order: the sums' rounding as the rule's
            if kinds[e] != "pool_shortfall" and markets[e] >= 0:
                total[markets[e]] += notional[e]
        priced, market, shortfall, derisk = [], [], [], []
        for i, e in enumerate(order):
            if kinds[e] == "pool_shortfall":
                shortfall.append(i)
            elif markets[e] < 0:
                if kinds[e] == "pool_derisk":
                    derisk.append(i)
            elif total[markets[e]] > 0:
                priced.append(i)
                market.append(markets[e])
        self.events = np.array(order, dtype=np.int64)
        # The ids as the round's own int objects: a day of a million traders hangs tens
        # of millions of causes off a few hundred thousand ids, and a new int for each
        # would cost 32 bytes an edge (0.9 GB on that day).
        self.ids = np.array(order, dtype=object)
        self.priced = np.array(priced, dtype=np.intp)
        self.market = np.array(market, dtype=np.intp)
        self.notional = np.array([float(notional[order[i]]) for i in priced], dtype=float)
        self.total = total[self.market]
        self.shortfall = np.array(shortfall, dtype=np.intp)
        self.derisk = np.array(derisk, dtype=np.intp)
        self.kind = np.full(len(order), _PRICE, dtype=np.uint8)
        self.kind[self.shortfall] = _COLLATERAL
