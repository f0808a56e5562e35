"""The risk engine: the liquidation waterfall.

For an account whose equity is below its maintenance margin (or an isolated
position below its own), in order:

1. **liquidation**: the account enters the waterfall and its resting orders are
   cancelled (this head event carries the causes and, at the end, the totals);
2. **partial** liquidation: IOC orders into the book for ``step_share`` of every
   position at a time until the margin ratio is back at ``target_ratio``
   (Hyperliquid liquidates large positions 20% at a time; Bybit steps positions down
   through risk-limit tiers), paying a liquidation fee to the insurance fund, capped
   at the equity left (dYdX caps its penalty at 1.5%);
3. **full** liquidation of every position when the margin ratio is below
   ``full_ratio``, or when partial steps stop filling;
   every forced IOC order is limited at the account's bankruptcy price, so the book
   takes only what it can absorb at better than bankruptcy (when the account is
   already under water, at the mark ∓ ``max_slippage`` instead, as Binance's
   liquidation engine does);
4. **backstop**: what the book could not absorb is taken over by the backstop vault
   at the bankruptcy price (Hyperliquid's HLP takes over accounts and keeps the
   remaining margin), or at the mark when the account is already bankrupt; without
   a vault (or when it is full) the rest goes into the book at up to
   ``max_slippage`` from the mark while the insurance fund can pay for it;
5. **insurance**: a shortfall (negative equity with no positions left) is paid by
   the insurance fund as far as it can;
6. **adl** or **socialized** loss when the fund is empty: positions nobody else
   took are closed against the opposite positions ranked by PnL% × effective
   leverage (Bybit and BitMEX; only profitable positions are touched) at the
   bankruptcy price, and a remaining shortfall is charged to the same ranking (ADL)
   or pro rata to all profitable accounts (socialized loss, as on BitMEX before
   2016 and early OKEx).

Every action is an event in the exchange's :class:`~model.events.EventLog`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from model.exchange import Exchange
from model.markets import ISOLATED
from model.orderbook import BUY, SELL

_EPS = 1e-9


@dataclass(frozen=True)
class LiquidationPolicy:
    """Knobs of the waterfall (see the module docstring).

    Args:
        step_share: Share of each position closed per partial step (1.0 = no partials).
        target_ratio: Partial liquidation stops once equity ≥ target_ratio × MM.
        full_ratio: Below this margin ratio the whole portfolio is closed at once.
        max_partial_steps: Partial steps per account per round before going full.
        fee: Liquidation fee rate on the notional closed, paid to the insurance fund.
        max_slippage: Price band for forced orders of an account already bankrupt.
        backstop: Whether the backstop vault takes over what the book cannot absorb.
        shortfall: ``"adl"`` (auto-deleveraging) or ``"socialized"`` when the fund is empty.
    """

    step_share: float = 0.25
    target_ratio: float = 1.25
    full_ratio: float = 0.5
    max_partial_steps: int = 4
    fee: float = 0.002
    max_slippage: float = 0.05
    backstop: bool = True
    shortfall: str = "adl"

    def __post_init__(self) -> None:
        if not 0 < self.step_share <= 1:
            raise ValueError(f"liquidation.step_share: must be in (0, 1], got {self.step_share}")
        if self.target_ratio < 1:
            raise ValueError(f"liquidation.target_ratio: must be >= 1, got {self.target_ratio}")
        if not 0 <= self.full_ratio <= 1:
            raise ValueError(f"liquidation.full_ratio: must be in [0, 1], got {self.full_ratio}")
        if self.fee < 0 or self.max_slippage <= 0:
            raise ValueError("liquidation.fee must be >= 0 and max_slippage > 0")
        if self.shortfall not in ("adl", "socialized"):
            raise ValueError(
                f"liquidation.shortfall: must be 'adl' or 'socialized', got {self.shortfall!r}"
            )


class RiskEngine:
    """Runs the waterfall on one exchange and records every step as an event."""

    def __init__(self, exchange: Exchange, policy: LiquidationPolicy | None = None) -> None:
        self.ex = exchange
        self.policy = policy or LiquidationPolicy()
        self.bankruptcies = 0
        self.socialized_loss = 0.0
        self.bad_debt = 0.0

    # ------------------------------------------------------------------ API
    def liquidate(
        self, account: int, *, step: int, round: int, causes: tuple[int, ...] = ()
    ) -> list[int]:
        """Run the waterfall on one account; return the ids of the events it produced."""
        ex = self.ex
        first = len(ex.events)
        # The head event carries the outside causes; the rest of the waterfall hangs
        # off it, so the cascade graph has one entry point per liquidation.
        eq0 = self._margin(account)[0]
        n_live = ex.cancel_all(account)
        ex.events.add(
            "liquidation", step=step, round=round, account=account, qty=n_live, causes=causes
        )
        ctx = (step, round, (first,))
        if ex.ledger.mode[account] == ISOLATED:
            for m in np.flatnonzero(ex.ledger.pos[:, account]):
                eq, mm = ex.ledger.position_margin(account, int(m), float(ex.marks[m]))
                if eq < mm:
                    self._liquidate_isolated(account, int(m), ctx)
        else:
            self._liquidate_cross(account, ctx)
        kinds, accts = ex.events.column("kind"), ex.events.column("account")
        notional = sum(
            ex.events.column("notional")[e]
            for e in range(first + 1, len(ex.events))
            if accts[e] == account and kinds[e] in ("partial", "full", "backstop")
        )
        ex.events.update(first, notional=notional, loss=max(eq0 - self._margin(account)[0], 0.0))
        return list(range(first, len(ex.events)))

    # -------------------------------------------------------------- helpers
    def _margin(self, account: int) -> tuple[float, float]:
        eq, mm, _ = self.ex.account_margin(account)
        return eq, mm

    def _bankruptcy_prices(self, account: int, equity: float, markets: np.ndarray) -> np.ndarray:
        """Per-market bankruptcy prices: the account's equity is split over its positions
        in proportion to their maintenance margin, and each price is where that share is
        used up (mark − share / (position × lot))."""
        ex = self.ex
        led = ex.ledger
        pos = led.pos[markets, account]
        notional = np.abs(pos * led.lot[markets] * ex.marks[markets])
        mm = np.array([led.tier_mm(int(m), a) for m, a in zip(markets, notional, strict=True)])
        w = mm / mm.sum() if mm.sum() > 0 else np.full(len(markets), 1 / len(markets))
        return ex.marks[markets] - equity * w / (pos * led.lot[markets])

    def _limit_ticks(self, m: int, side: int, price: float) -> int:
        tick = self.ex.markets[m].tick
        # A forced sell may not go below ``price``, a forced buy not above it.
        return (
            max(1, math.ceil(price / tick - _EPS))
            if side == SELL
            else math.floor(price / tick + _EPS)
        )

    def _force(self, account: int, m: int, qty: int, limit_price: float) -> int:
        """IOC order closing ``qty`` lots (signed: what to trade) of market ``m``; lots filled."""
        side = BUY if qty > 0 else SELL
        limit = self._limit_ticks(m, side, limit_price)
        if limit <= 0:
            return 0
        self.ex.forced = True
        try:
            return self.ex.market_order(account, m, side, abs(qty), limit=limit)
        finally:
            self.ex.forced = False

    def _fill_event(
        self, kind: str, ctx, account: int, m: int, filled: int, notional: float, loss: float
    ) -> None:
        """Record a forced fill (``partial`` or ``full``) at its average price."""
        step, rnd, causes = ctx
        self.ex.events.add(
            kind,
            step=step,
            round=rnd,
            account=account,
            market=m,
            qty=filled,
            notional=notional,
            price=notional / (filled * float(self.ex.ledger.lot[m])),
            loss=loss,
            causes=causes,
        )

    def _filled_notional(self, m: int, first_trade: int) -> float:
        cols = self.ex._trade_cols
        prices, qtys = cols["price"][first_trade:], cols["qty"][first_trade:]
        return sum(p * q for p, q in zip(prices, qtys, strict=True)) * float(self.ex.ledger.lot[m])

    def _charge_fee(self, account: int, notional: float, equity: float) -> float:
        """Liquidation fee to the insurance fund, capped at the equity left."""
        fee = min(self.policy.fee * notional, max(equity, 0.0))
        if fee > 0:
            self.ex.ledger.cash[account] -= fee
            self.ex.ledger.fees[account] += fee
            self.ex.insurance.receive(fee)
        return fee

    def _book_pass(self, account: int, share: float, kind: str, ctx) -> bool:
        """One pass of forced IOC orders for ``share`` of every position; True if anything filled."""
        ex, led = self.ex, self.ex.ledger
        eq, _ = self._margin(account)
        markets = np.flatnonzero(led.pos[:, account])
        if not len(markets):
            return False
        if eq > 0:
            limits = self._bankruptcy_prices(account, eq, markets)
        else:
            sgn = np.sign(led.pos[markets, account])
            limits = ex.marks[markets] * (1 - sgn * self.policy.max_slippage)
        any_fill = False
        for m, limit in zip(markets, limits, strict=True):
            m = int(m)
            pos = int(led.pos[m, account])
            qty = max(1, math.ceil(abs(pos) * share - _EPS)) if share < 1 else abs(pos)
            qty = min(qty, abs(pos))
            eq_before, _ = self._margin(account)
            n0 = ex.n_trades
            filled = self._force(account, m, -qty if pos > 0 else qty, float(limit))
            if filled:
                any_fill = True
                notional = self._filled_notional(m, n0)
                self._charge_fee(account, notional, self._margin(account)[0])
                eq_after, _ = self._margin(account)
                self._fill_event(
                    kind, ctx, account, m, filled, notional, max(eq_before - eq_after, 0.0)
                )
        return any_fill

    # ------------------------------------------------------------ waterfall
    def _liquidate_cross(self, account: int, ctx) -> None:
        pol = self.policy
        eq, mm = self._margin(account)
        if mm <= 0:
            return
        bankrupt_at_start = eq <= 0
        if eq / mm >= pol.full_ratio and pol.step_share < 1 and not bankrupt_at_start:
            for _ in range(pol.max_partial_steps):
                if not self._book_pass(account, pol.step_share, "partial", ctx):
                    break
                eq, mm = self._margin(account)
                if mm <= 0 or eq >= pol.target_ratio * mm:
                    return
        eq, mm = self._margin(account)
        if mm > 0 and eq < mm:
            self._book_pass(account, 1.0, "full", ctx)
            self._remainder(account, ctx)
        if bankrupt_at_start or self._margin(account)[0] < -_EPS:
            self.bankruptcies += 1
        self._shortfall(account, ctx, loss=-self._margin(account)[0])

    def _liquidate_isolated(self, account: int, m: int, ctx) -> None:
        """An isolated position is liquidated alone; its losses never reach the account's
        other cash: whatever it loses beyond its allocated margin is a shortfall."""
        ex, led = self.ex, self.ex.ledger
        cash0 = float(led.cash[account])
        margin0 = float(led.iso_margin[m, account])
        peq, _ = led.position_margin(account, m, float(ex.marks[m]))
        pos = int(led.pos[m, account])
        if peq > 0:
            limit = ex.marks[m] - peq / (pos * led.lot[m])
        else:
            limit = ex.marks[m] * (1 - np.sign(pos) * self.policy.max_slippage)
        n0 = ex.n_trades
        filled = self._force(account, m, -pos, float(limit))
        if filled:
            notional = self._filled_notional(m, n0)
            peq_after, _ = led.position_margin(account, m, float(ex.marks[m]))
            released_so_far = float(led.cash[account]) - cash0
            # The position's equity now: what it released to cash plus what is left open.
            fee = self._charge_fee(account, notional, released_so_far + peq_after)
            self._fill_event("full", ctx, account, m, filled, notional, fee)
        left = int(led.pos[m, account])
        if left:
            peq, _ = led.position_margin(account, m, float(ex.marks[m]))
            price = ex.marks[m] - peq / (left * led.lot[m]) if peq > 0 else float(ex.marks[m])
            self._take_over(account, m, left, float(price), ctx)
        # Whatever the position lost beyond its margin is a shortfall of the position.
        released = float(led.cash[account]) - cash0  # margin released + realized PnL − fees
        if led.pos[m, account] == 0 and released < 0:
            if peq <= 0 or margin0 + released < 0:
                self.bankruptcies += 1
            self._shortfall(account, ctx, loss=-released)

    def _remainder(self, account: int, ctx) -> None:
        """Positions the book could not absorb: backstop vault, else ADL."""
        ex, led = self.ex, self.ex.ledger
        markets = np.flatnonzero(led.pos[:, account])
        if not len(markets):
            return
        eq, _ = self._margin(account)
        prices = self._bankruptcy_prices(account, eq, markets) if eq > 0 else ex.marks[markets]
        for m, price in zip(markets, prices, strict=True):
            left = int(led.pos[m, account])
            if left:
                self._take_over(account, int(m), left, float(price), ctx)

    def _vault_can_take(self, m: int, qty: int) -> bool:
        ex = self.ex
        if not self.policy.backstop or ex.vault is None:
            return False
        v = ex.vault.account
        eq, _, im = ex.account_margin(v)
        add = abs(qty) * ex.markets[m].lot * ex.marks[m] / ex.vault_max_leverage
        return eq - im >= add

    def _take_over(self, account: int, m: int, qty: int, price: float, ctx) -> None:
        """Close ``qty`` lots (the signed position) of ``m`` that the book did not take at
        better than bankruptcy: the backstop vault takes them at ``price`` if it can
        carry them; else, while the insurance fund has money, they go into the book at
        up to ``max_slippage`` from the mark (the fund pays any shortfall); what is left
        after that, or everything once the fund is empty, is auto-deleveraged."""
        ex, led = self.ex, self.ex.ledger
        step, rnd, causes = ctx
        lot = led.lot[m]
        if self._vault_can_take(m, qty):
            eq0, _ = self._margin(account)
            ex.transfer_position(account, ex.vault.account, m, qty, price)
            eq1, _ = self._margin(account)
            ex.events.add(
                "backstop",
                step=step,
                round=rnd,
                account=account,
                market=m,
                qty=abs(qty),
                notional=abs(qty) * lot * price,
                price=price,
                loss=max(eq0 - eq1, 0.0),
                causes=causes,
            )
            return
        if ex.insurance.balance > 0:
            band = float(ex.marks[m]) * (1 - np.sign(qty) * self.policy.max_slippage)
            eq0, _ = self._margin(account)
            n0 = ex.n_trades
            filled = self._force(account, m, -qty, band)
            if filled:
                notional = self._filled_notional(m, n0)
                self._fill_event(
                    "full",
                    ctx,
                    account,
                    m,
                    filled,
                    notional,
                    max(eq0 - self._margin(account)[0], 0.0),
                )
            qty = int(led.pos[m, account])
            if not qty:
                return
            eq, _ = self._margin(account)
            price = float(ex.marks[m] - eq / (qty * lot)) if eq > 0 else float(ex.marks[m])
        self._adl(account, m, qty, price, ctx)

    def adl_ranking(self, m: int, side: int, *, exclude: int = -1) -> np.ndarray:
        """Accounts holding a profitable position of sign ``side`` in market ``m``, best
        ADL candidate first: PnL% × effective leverage (Bybit, BitMEX)."""
        ex, led = self.ex, self.ex.ledger
        n = led.n
        pos = led.pos[m, :n]
        cand = np.flatnonzero(np.sign(pos) == side)
        cand = cand[cand != exclude]
        if not len(cand):
            return cand
        notional = pos[cand] * led.lot[m] * ex.marks[m]
        cost = led.cost[m, cand]
        upnl = notional - cost
        prof = upnl > 0
        cand, upnl, cost = cand[prof], upnl[prof], cost[prof]
        if not len(cand):
            return cand
        val = ex.ledger.revalue(ex.marks, ex.coll_prices)
        eq = val.equity[cand]
        lev = np.divide(val.gross[cand], eq, out=np.full(len(cand), np.inf), where=eq > 0)
        score = upnl / np.abs(cost) * lev
        order = np.lexsort((cand, -score))
        return cand[order]

    def _adl(self, account: int, m: int, qty: int, price: float, ctx) -> None:
        """Close the bankrupt position against ranked profitable opposite positions."""
        ex, led = self.ex, self.ex.ledger
        step, rnd, causes = ctx
        lot = led.lot[m]
        mark = float(ex.marks[m])
        remaining = abs(qty)
        for cp in self.adl_ranking(m, -int(np.sign(qty)), exclude=account):
            if remaining == 0:
                break
            cp = int(cp)
            take = int(min(remaining, abs(led.pos[m, cp])))
            signed = take if qty > 0 else -take
            ex.transfer_position(account, cp, m, signed, price)
            remaining -= take
            # Loss to the counterparty relative to closing at the mark.
            loss = max(0.0, (price - mark) * signed * lot)
            ex.events.add(
                "adl",
                step=step,
                round=rnd,
                account=cp,
                market=m,
                qty=take,
                notional=take * lot * price,
                price=price,
                loss=loss,
                causes=causes,
            )
        if remaining:
            # Nobody left to take it: dump into the book at any price.
            signed = -remaining if qty > 0 else remaining
            self.ex.forced = True
            try:
                self.ex.market_order(account, m, BUY if signed > 0 else SELL, remaining)
            finally:
                self.ex.forced = False

    def _shortfall(self, account: int, ctx, *, loss: float) -> None:
        """Pay a negative balance: insurance fund, then ADL haircut or socialized loss."""
        ex, led = self.ex, self.ex.ledger
        step, rnd, causes = ctx
        if loss <= _EPS:
            return
        paid = ex.insurance.pay(loss)
        if paid > 0:
            led.cash[account] += paid
            ex.events.add(
                "insurance", step=step, round=rnd, account=account, loss=paid, causes=causes
            )
        rest = loss - paid
        if rest <= _EPS:
            return
        val = ex.revalue()
        n = led.n
        upnl = (val.notional - led.cost[:, :n]).clip(min=0).sum(axis=0)
        upnl[account] = 0.0
        if ex.vault is not None:
            upnl[ex.vault.account] = max(upnl[ex.vault.account], 0.0)
        payers = np.flatnonzero(upnl > 0)
        if not len(payers):
            self.bad_debt += rest
            ex.events.add(
                "bad_debt", step=step, round=rnd, account=account, loss=rest, causes=causes
            )
            return
        if self.policy.shortfall == "socialized":
            total = float(upnl[payers].sum())
            take = min(rest, total)
            shares = upnl[payers] / total * take
            led.cash[payers] -= shares
            led.cash[account] += take
            self.socialized_loss += take
            ex.events.add(
                "socialized", step=step, round=rnd, account=account, loss=take, causes=causes
            )
        else:
            eq = val.equity[payers]
            lev = np.divide(val.gross[payers], eq, out=np.full(len(payers), np.inf), where=eq > 0)
            cost = np.abs(led.cost[:, payers]).sum(axis=0)
            score = np.divide(upnl[payers], cost, out=np.zeros(len(payers)), where=cost > 0) * lev
            take = 0.0
            for k in np.lexsort((payers, -score)):
                if rest - take <= _EPS:
                    break
                cp = int(payers[k])
                amt = min(float(upnl[cp]), rest - take)
                led.cash[cp] -= amt
                take += amt
                ex.events.add("adl", step=step, round=rnd, account=cp, loss=amt, causes=causes)
            led.cash[account] += take
        rest -= take
        if rest > _EPS:
            self.bad_debt += rest
            ex.events.add(
                "bad_debt", step=step, round=rnd, account=account, loss=rest, causes=causes
            )
