"""The risk engine: the liquidation waterfall, in the order real venues use.

For an account whose equity is below its maintenance margin (an isolated position
below its own, an isolated account whose total equity is negative, or one whose
wallet outside its positions went negative: it borrowed cash against collateral that
fell, and :meth:`RiskEngine.cover_isolated_wallets` could not draw enough margin back;
the wallet is repaid by selling the collateral, then closing positions, most spare
equity first, as in Binance's auto-exchange of a negative balance), in order:

1. **liquidation**: the account enters the waterfall and its resting orders are
   cancelled (this head event carries the causes and, at the end, the totals);
2. **partial** liquidation: IOC orders into the book for ``step_share`` of every
   position at a time until the margin ratio is back at ``target_ratio``
   (Hyperliquid liquidates large positions 20% at a time; Bybit steps positions down
   through risk-limit tiers), paying a liquidation fee to the insurance fund, capped
   at the equity left (dYdX caps its penalty at 1.5%);
3. **full** liquidation of every position when the margin ratio is below
   ``full_ratio``, or when partial steps stop filling; every forced IOC order is
   limited at the account's bankruptcy price, so the book takes only what it can
   absorb at better than bankruptcy (when the account is already under water, at
   the mark ∓ ``max_slippage`` instead, as Binance's liquidation engine does);
4. **backstop**: what the book could not absorb is taken over by the backstop vault
   at the bankruptcy price (Hyperliquid's HLP takes over accounts and keeps the
   remaining margin; at the mark when the account is already bankrupt), as far as
   the vault stays within ``vault_max_leverage`` on its whole book;
5. **takeover**: the insurance fund takes over (warehouses) what is left as far as
   it can carry it (BitMEX and Binance: "the insurance fund takes over the
   position"): its free equity (equity − the carrying margin of what it holds, the
   worst loss of its inventory over the stress grid that portfolio margin uses, as a
   CCP sizes what its default fund can carry) stays at or above its floor; it pays
   the account's shortfall out of the same free equity above the floor. The fund is
   *exhausted* when its free equity is at the floor;
6. **adl** only when the fund is exhausted: positions nobody took are closed against
   the opposite positions ranked by PnL% × effective leverage (Bybit, BitMEX,
   Binance), at the bankruptcy price or, as on Hyperliquid, at the mark; the
   shortfall left is charged once per cascade round (:meth:`RiskEngine.settle`) to
   the same ranking (``adl``: closing at the bankruptcy price is closing at the mark
   plus this charge) or pro rata to every profitable account (``socialized``, as on
   BitMEX before 2016 and early OKEx). No charge ever takes more than an account's
   positive equity or its unrealized profit, so no bystander is pushed below zero;
7. **bad_debt**: what nobody could pay is written off at once
   (:meth:`~model.exchange.Exchange.write_off`).

The vault and the fund work their inventory back into the book a share per step with
resting post-only orders (:meth:`RiskEngine.unwind`); the fund holds a position at most
``fund_max_hold`` steps (the venue's unwind speed) before closing what is left into the
book. Pools are never liquidated through the client waterfall and never count as
liquidated accounts; each has a risk rule of its own (:meth:`RiskEngine.pool_risk`),
applied in every cascade round:

* the **vault** stays within ``vault_max_leverage`` between takeovers too: when falling
  marks push its gross notional above the cap times its equity, it cuts every
  position pro rata to ``pool_buffer`` × the cap (HLP's strategies trade under risk
  limits); at equity ≤ 0 it closes everything;
* the **fund** that can no longer carry its inventory (free equity below its floor
  after marks moved) keeps ``pool_buffer`` of the share it can carry.

Either closes the excess with IOC orders into the book within ``max_slippage`` of the
mark, and what the book cannot take is auto-deleveraged at the mark (the counterparties
ranked as in step 6). A pool acts at most once a step, and each action is one
``pool_derisk`` event. Venue styles are named presets of
:class:`LiquidationPolicy` (:data:`VENUES`).

Every action is an event in the exchange's :class:`~model.events.EventLog`.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from dataclasses import dataclass, replace

import numpy as np

from .exchange import Exchange
from .markets import ISOLATED
from .orderbook import BUY, POST_ONLY, SELL

__all__ = ["VENUES", "LiquidationPolicy", "RiskEngine"]

_EPS = 1e-9

VENUES: dict[str, dict[str, object]] = {
    # Binance USDⓈ-M: the insurance fund takes over what the liquidation engine cannot
    # close in the market; ADL (ranked by PnL% × leverage) only when it cannot cover.
    "binance": {
        "backstop": False,
        "fund_takeover": True,
        "shortfall": "adl",
        "adl_price": "bankruptcy",
    },
    # Bybit: the same order; ADL at the bankruptcy price of the liquidated position.
    "bybit": {
        "backstop": False,
        "fund_takeover": True,
        "shortfall": "adl",
        "adl_price": "bankruptcy",
    },
    # BitMEX: the fund absorbs losses; ADL when it cannot ("completely prevented" in
    # March 2020).
    "bitmex": {
        "backstop": False,
        "fund_takeover": True,
        "shortfall": "adl",
        "adl_price": "bankruptcy",
    },
    # Hyperliquid: the HLP vault takes over liquidations; ADL when the vault cannot
    # take, at the mark; no separate insurance-fund takeover.
    "hyperliquid": {
        "backstop": True,
        "fund_takeover": False,
        "shortfall": "adl",
        "adl_price": "mark",
    },
}
"""Venue styles: the waterfall mechanism each venue uses (fees and thresholds stay
the scenario's)."""


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
        fund_takeover: Whether the insurance fund takes over what is left.
        shortfall: ``"adl"`` (ranked) or ``"socialized"`` (pro rata) once the fund is
            exhausted.
        adl_price: ``"bankruptcy"`` or ``"mark"``: the price of ADL closes.
        adl_rank: ``"pnl_leverage"``: PnL% × effective leverage (Bybit, BitMEX,
            Binance); ``"mark_entry_leverage"``: (mark / entry) × (notional / account
            value), Hyperliquid's ADL index (entry / mark for a short).
        unwind_share: Share of each pool position offered back to the book per step
            (a resting post-only order, renewed each step).
        unwind_band: Pool unwinding offers no lower (bids no higher) than the mark ×
            (1 ∓ band).
        fund_max_hold: Steps the insurance fund warehouses a position before it closes
            what is left of it into the book (within ``max_slippage`` of the mark).
        pool_buffer: A pool over its limit cuts to this share of it (the vault to
            ``pool_buffer`` × its leverage cap, the fund to this share of what it can
            carry), so that it acts once, not again at the next tick of the mark.

    Examples:
        >>> LiquidationPolicy.venue("hyperliquid").adl_price
        'mark'
    """

    step_share: float = 0.25
    target_ratio: float = 1.25
    full_ratio: float = 0.5
    max_partial_steps: int = 4
    fee: float = 0.002
    max_slippage: float = 0.05
    backstop: bool = True
    fund_takeover: bool = True
    shortfall: str = "adl"
    adl_price: str = "bankruptcy"
    adl_rank: str = "pnl_leverage"
    unwind_share: float = 0.1
    unwind_band: float = 0.0
    fund_max_hold: int = 60
    pool_buffer: float = 0.8

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
        if self.adl_price not in ("bankruptcy", "mark"):
            raise ValueError(
                f"liquidation.adl_price: must be 'bankruptcy' or 'mark', got {self.adl_price!r}"
            )
        if self.adl_rank not in ("pnl_leverage", "mark_entry_leverage"):
            raise ValueError(
                "liquidation.adl_rank: must be 'pnl_leverage' or 'mark_entry_leverage', "
                f"got {self.adl_rank!r}"
            )
        if not 0 <= self.unwind_share <= 1 or self.unwind_band < 0:
            raise ValueError("liquidation.unwind_share must be in [0, 1] and unwind_band >= 0")
        if not 0 <= self.pool_buffer <= 1:
            raise ValueError(f"liquidation.pool_buffer: must be in [0, 1], got {self.pool_buffer}")
        if self.fund_max_hold < 1:
            raise ValueError(
                f"liquidation.fund_max_hold: must be >= 1 step, got {self.fund_max_hold}"
            )

    @classmethod
    def venue(cls, name: str, **changes: object) -> LiquidationPolicy:
        """The waterfall of a named venue style (:data:`VENUES`), with ``changes``."""
        if name not in VENUES:
            raise ValueError(f"liquidation.venue: must be one of {sorted(VENUES)}, got {name!r}")
        return replace(cls(), **VENUES[name], **changes)


class RiskEngine:
    """Runs the waterfall on one exchange and records every step as an event.

    Args:
        exchange: The exchange whose accounts it liquidates.
        policy: The waterfall's knobs.
    """

    def __init__(self, exchange: Exchange, policy: LiquidationPolicy | None = None) -> None:
        self.ex = exchange
        self.policy = policy or LiquidationPolicy()
        self.bankrupt: set[int] = set()  # accounts that ended a waterfall owing money
        self.socialized_loss = 0.0
        self.adl_charged = 0.0
        self.fund_paid = 0.0
        # Shortfalls of this round, charged once by :meth:`settle`: account -> head event.
        self.pending: dict[int, int] = {}
        # Step from which the fund has held a position in each market (−1: flat).
        self.fund_since = np.full(len(exchange.markets), -1, dtype=np.int64)
        self.margin_released = 0.0  # isolated position margin moved back to wallets (USD)
        self._pool_acted: dict[int, int] = {}  # pool account -> last step it de-risked

    @property
    def bankruptcies(self) -> int:
        """Distinct accounts that have been bankrupt (owed more than they held) so far."""
        return len(self.bankrupt)

    @property
    def bad_debt(self) -> float:
        """Negative balances written off so far (USD)."""
        return self.ex.bad_debt

    # ------------------------------------------------------------------ API
    def liquidate(
        self, account: int, *, step: int, round: int, causes: tuple[int, ...] = ()
    ) -> list[int]:
        """Run the waterfall on one account; return the ids of the events it produced.

        A shortfall left at the end goes to the fund at once; what the fund cannot pay
        waits for :meth:`settle`, which the caller runs once the round is over.
        """
        ex = self.ex
        ex.ledger.touch()  # balances are written directly below
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
            whole = eq0 < 0  # an isolated account under water: every position goes
            for m in np.flatnonzero(ex.ledger.pos[:, account]):
                eq, mm = ex.ledger.position_margin(account, int(m), float(ex.marks[m]))
                if whole or eq < mm:
                    self._liquidate_isolated(account, int(m), ctx)
            self._repay_wallet(account, ctx)
        else:
            self._liquidate_cross(account, ctx)
        self._book_shortfall(account, ctx)
        kinds, accts = ex.events.column("kind"), ex.events.column("account")
        notional = sum(
            ex.events.column("notional")[e]
            for e in range(first + 1, len(ex.events))
            if accts[e] == account and kinds[e] in ("partial", "full", "backstop", "takeover")
        )
        ex.events.update(first, notional=notional, loss=max(eq0 - self._margin(account)[0], 0.0))
        return list(range(first, len(ex.events)))

    def shortfall_of(self, account: int) -> float:
        """What an account owes beyond its assets (USD ≥ 0): its negative equity, or
        for an isolated account the deficit of positions closed beyond their margin."""
        eq = self._margin(account)[0]
        return max(-eq, float(self.ex.ledger.deficit[account]), 0.0)

    def resolve(self, *, step: int, round: int, val=None) -> bool:
        """Book every negative balance left at the end of a step (negative equity, a
        deficit, an isolated wallet below zero that the round cap left): accounts still
        holding positions go through the waterfall, flat ones have their
        collateral sold and their shortfall paid by the fund, charged, or written off.
        Afterwards no account has negative equity that is not booked. ``val``: a
        current valuation, if the caller has one. True if anything was booked."""
        ex, led = self.ex, self.ex.ledger
        val = val if val is not None else ex.revalue()
        n = led.n
        owes = (val.equity < 0) | (led.deficit[:n] > 0)
        if val.free is not None:  # an isolated wallet below zero, left by the round cap
            owes |= (led.mode[:n] == ISOLATED) & (val.free < -_EPS)
        bad = np.flatnonzero(owes)
        if not len(bad):
            return False
        led.touch()
        pools = ex.pool_accounts
        for a in bad.tolist():
            if a in pools:
                if led.pos[:, a].any():
                    self._cut_pool(a, 0.0, step=step, round=round)
                self._book_shortfall(a, (step, round, ()))
            elif led.pos[:, a].any():
                self.liquidate(a, step=step, round=round)
            else:
                self._book_shortfall(a, (step, round, ()))
        self.settle(step=step, round=round)
        return True

    def book_dust(self, val) -> bool:
        """Write off negative equity left below a float's width of an account's cash,
        as the vectorized valuation sees it (its sums may round a hair below the
        account-by-account view the waterfall uses): a few ulps of the cash each, booked
        as bad debt, so that no negative balance is left unbooked. True if any."""
        ex, led = self.ex, self.ex.ledger
        dust = np.flatnonzero(val.equity < 0)
        for a in dust.tolist():
            ex.write_off(a, max(-float(val.equity[a]), 4 * math.ulp(abs(float(led.cash[a])))))
        return bool(len(dust))

    def _book_shortfall(self, account: int, ctx) -> None:
        """A shortfall left after the waterfall: collateral tokens are sold, then the
        fund pays what it can; the rest waits for :meth:`settle`."""
        if self.shortfall_of(account) <= 0:
            return
        self._sell_collateral(account, ctx)
        owed = self.shortfall_of(account)
        if owed > _EPS:  # float dust is booked, but is no bankruptcy
            self.bankrupt.add(account)
        if owed > 0:
            self._fund_pays(account, ctx)

    def settle(self, *, step: int, round: int) -> None:
        """Charge this round's shortfalls once, over all bankrupt accounts together.

        ``adl``: the profitable accounts ranked by PnL% × effective leverage pay in
        turn; ``socialized``: every profitable account pays pro rata to its unrealized
        profit. Nobody pays more than its positive equity or its unrealized profit.
        What is left is written off as bad debt.
        """
        if not self.pending:
            return
        ex, led = self.ex, self.ex.ledger
        led.touch()
        heads = self.pending
        self.pending = {}
        # The waterfall's order holds at the moment of the charge: the fund may have
        # gained free equity since these shortfalls waited (fees, takeovers below the
        # mark), and pays what it can now before anyone is charged.
        for a, head in heads.items():
            self._fund_pays(a, (step, round, (head,) if head >= 0 else ()), wait=False)
        owed = {a: self.shortfall_of(a) for a in heads}
        owed = {a: x for a, x in owed.items() if x > 0}
        total = sum(owed.values())
        if total <= 0:
            return
        causes = tuple(sorted(heads[a] for a in owed if heads[a] >= 0))
        val = ex.revalue()
        n = led.n
        upnl = (val.notional - led.cost[:, :n]).clip(min=0).sum(axis=0)
        cap = np.minimum(upnl, np.maximum(val.equity, 0.0))
        for a in (*owed, *ex.pool_accounts):
            cap[a] = 0.0
        payers = np.flatnonzero(cap > _EPS)
        take = np.zeros(len(payers))
        if len(payers):
            if self.policy.shortfall == "socialized":
                take = _water_fill(upnl[payers], cap[payers], total)
            else:
                eq = val.equity[payers]
                lev = val.gross[payers] / eq
                cost = np.abs(led.cost[:, payers]).sum(axis=0)
                score = np.divide(upnl[payers], cost, out=np.zeros(len(payers)), where=cost > 0)
                left = total
                for k in np.lexsort((payers, -score * lev)):
                    if left <= _EPS:
                        break
                    take[k] = min(cap[payers[k]], left)
                    left -= take[k]
        collected = float(take.sum())
        kind = "socialized" if self.policy.shortfall == "socialized" else "adl"
        for k in np.flatnonzero(take > 0):
            cp = int(payers[k])
            self._debit(cp, float(take[k]), val.notional[:, cp] - led.cost[:, cp])
            ex.events.add(
                kind, step=step, round=round, account=cp, loss=float(take[k]), causes=causes
            )
        if kind == "socialized":
            self.socialized_loss += collected
        else:
            self.adl_charged += collected
        for a, x in owed.items():
            share = collected * x / total
            self._credit(a, share)
            rest = self.shortfall_of(a)
            if rest > 0:
                self._write_off(a, rest)
                ex.events.add(
                    "bad_debt",
                    step=step,
                    round=round,
                    account=a,
                    loss=rest,
                    causes=(heads[a],) if heads[a] >= 0 else (),
                )

    def unwind(self) -> None:
        """The vault and the fund work their inventory back into the book passively, as
        Hyperliquid's HLP does by making markets: each step their previous unwinding
        quotes are cancelled and a post-only order for ``unwind_share`` of each position
        rests at the higher of mark and index for a long (the lower for a short) ∓
        ``unwind_band``, never crossing the book: the pools never take liquidity, and
        an anchor outside the book keeps their quotes from dragging the mark. First,
        the fund closes what it has held too long (:meth:`hold_limit`)."""
        ex, led, pol = self.ex, self.ex.ledger, self.policy
        self.hold_limit()
        if pol.unwind_share <= 0:
            return
        for a in ex.pool_accounts:
            markets = np.flatnonzero(led.pos[:, a])
            if not len(markets) and a not in ex._resting:
                continue
            ex.cancel_all(a)
            for m in markets:
                m = int(m)
                pos = int(led.pos[m, a])
                qty = min(max(1, int(abs(pos) * pol.unwind_share)), abs(pos))
                book, tick = ex.books[m], ex.markets[m].tick
                # Anchored to the higher (sells) or lower (buys) of mark and index: the
                # index is outside the book, so the pool's own quote cannot drag it.
                ref = (
                    max(float(ex.marks[m]), float(ex.index[m]))
                    if pos > 0
                    else min(float(ex.marks[m]), float(ex.index[m]))
                )
                if pos > 0:  # sell: offer at the reference - band, above the best bid
                    price = math.ceil(ref * (1 - pol.unwind_band) / tick - _EPS)
                    if book.best_bid is not None:
                        price = max(price, book.best_bid + 1)
                    side = SELL
                else:  # buy: bid at the reference + band, below the best ask
                    price = math.floor(ref * (1 + pol.unwind_band) / tick + _EPS)
                    if book.best_ask is not None:
                        price = min(price, book.best_ask - 1)
                    side = BUY
                if price <= 0:
                    continue
                ex.forced = True
                try:
                    ex.limit(a, m, side, price, qty, tif=POST_ONLY)
                finally:
                    ex.forced = False

    def hold_limit(self) -> bool:
        """The fund's unwind speed: a position it has warehoused for ``fund_max_hold``
        steps is closed (IOC into the book within ``max_slippage`` of the mark, ADL at
        the mark for the rest), as BitMEX's and Binance's engines close what they take
        over rather than hold it for hours. Called once per step by :meth:`unwind`;
        True if it acted."""
        ex, led = self.ex, self.ex.ledger
        f = ex.insurance.account
        step = ex.step
        hold = self.policy.fund_max_hold
        since = self.fund_since
        due = []
        # A loop over the few markets: numpy's per-call cost is most of it at this size.
        for m, (p, s) in enumerate(zip(led.pos[:, f].tolist(), since.tolist(), strict=True)):
            if p == 0:
                if s != -1:
                    since[m] = -1
            else:
                if s < 0:
                    since[m] = s = step
                if step - s >= hold:
                    due.append(m)
        if not due:
            return False
        return self._cut_pool(f, 0.0, step=step, round=0, markets=np.array(due, dtype=np.intp))

    def pool_risk(self, *, step: int, round: int, blame=None) -> bool:
        """The pools' own risk rules (module docstring), never the client waterfall:
        the vault back within its leverage cap (everything closed at equity ≤ 0), the
        fund down to what it can carry. ``blame(account)``, if given, returns the ids of
        the events that caused the pool's loss (the ``pool_derisk`` event's causes).
        True if a pool had to act.

        Examples:
            >>> from crossmargin.model.exchange import Exchange
            >>> from crossmargin.model.markets import Market
            >>> ex = Exchange([Market("BTC", 1.0, 0.001)], insurance_fund=10.0)
            >>> RiskEngine(ex).pool_risk(step=1, round=0)  # nothing held: nothing to do
            False
        """
        ex, led = self.ex, self.ex.ledger
        acted = False
        buffer = self.policy.pool_buffer
        done = self._pool_acted
        if ex.vault is not None and done.get(ex.vault.account) != step:
            v = ex.vault.account
            if led.pos[:, v].any():
                eq = self._margin(v)[0]
                gross = float(np.abs(led.pos[:, v] * led.lot * ex.marks).sum())
                cap = ex.vault_max_leverage
                keep = None
                if eq <= 0:
                    keep = 0.0
                elif gross > cap * eq * (1 + 1e-6):
                    keep = buffer * cap * eq / gross
                if keep is not None:
                    acted |= self._cut_pool(v, keep, step=step, round=round, blame=blame)
                    done[v] = step
        f = ex.insurance.account
        if led.pos[:, f].any() and done.get(f) != step:
            eq = self._margin(f)[0]
            carry = led.stress_loss(f, ex.marks)
            floor = ex.insurance.floor
            if carry > 0 and eq - carry < floor - _EPS:
                keep = buffer * max(eq - floor, 0.0) / carry
                acted |= self._cut_pool(f, keep, step=step, round=round, blame=blame)
                done[f] = step
        return acted

    def _cut_pool(
        self,
        account: int,
        keep: float,
        *,
        step: int,
        round: int,
        blame=None,
        markets: np.ndarray | None = None,
    ) -> bool:
        """Bring every position of a pool (in ``markets``, default all) down to ``keep``
        × itself: IOC orders into the book within ``max_slippage`` of the mark, then ADL
        at the mark for what the book did not take. One ``pool_derisk`` event, whose
        causes ``blame`` gives; False if nothing was to be cut."""
        ex, led = self.ex, self.ex.ledger
        if markets is None:
            markets = np.flatnonzero(led.pos[:, account])
        held = np.abs(led.pos[markets, account])
        if not (held - np.floor(held * keep)).any():
            return False
        ex.cancel_all(account)
        causes = tuple(blame(account)) if blame is not None else ()
        head = ex.events.add("pool_derisk", step=step, round=round, account=account, causes=causes)
        ctx = (step, round, (head,))
        targets = [math.trunc(float(led.pos[m, account]) * keep) for m in markets]
        lots, notional = self._close_into_book(account, markets, ctx, share=1.0 - keep)
        for m, target in zip(markets.tolist(), targets, strict=True):
            left = int(led.pos[m, account]) - target  # the book fills at most the excess
            if left:
                self._adl(account, m, left, float(ex.marks[m]), ctx)
        ex.events.update(head, qty=lots, notional=notional)
        return True

    def _close_into_book(self, account: int, markets, ctx, *, share: float) -> tuple[int, float]:
        """IOC orders closing ``share`` of each of ``account``'s positions in ``markets``,
        limited at mark ∓ ``max_slippage``; (lots filled, USD notional filled)."""
        ex, led = self.ex, self.ex.ledger
        lots = 0
        notional = 0.0
        for m in markets:
            m = int(m)
            pos = int(led.pos[m, account])
            qty = min(abs(pos), math.ceil(abs(pos) * share - _EPS)) if share < 1 else abs(pos)
            if qty <= 0:
                continue
            limit = float(ex.marks[m]) * (1 - np.sign(pos) * self.policy.max_slippage)
            n0 = ex.n_trades
            filled = self._force(account, m, -qty if pos > 0 else qty, limit)
            if filled:
                lots += filled
                notional += self._filled_notional(m, n0)
        return lots, notional

    def cover_isolated_wallets(self, val) -> bool:
        """An isolated account whose free balance went negative (its collateral fell in
        value) draws margin back from its positions, down to each position's initial
        margin, as venues let a trader remove margin an isolated position does not need;
        what is still negative then goes through the waterfall (:meth:`liquidate`).
        True if any margin moved."""
        if val.free is None:
            return False
        ex, led = self.ex, self.ex.ledger
        n = led.n
        short = np.flatnonzero((led.mode[:n] == ISOLATED) & (val.free < -_EPS) & (val.gross > 0))
        moved = False
        for a in short.tolist():
            need = -float(val.free[a])
            for m in np.flatnonzero(led.pos[:, a]).tolist():
                if need <= 0:
                    break
                peq, _ = led.position_margin(a, m, float(ex.marks[m]))
                absnot = abs(float(led.pos[m, a] * led.lot[m] * ex.marks[m]))
                caps, _, _, inv_lev = led._tier_lists[m]
                im = absnot * inv_lev[bisect_left(caps, absnot)]
                spare = min(float(led.iso_margin[m, a]), peq - im)
                take = min(spare, need)
                if take > 0:
                    led.iso_margin[m, a] -= take
                    led.cash[a] += take
                    need -= take
                    self.margin_released += take
                    moved = True
        if moved:
            led.touch()
        return moved

    # -------------------------------------------------------------- helpers
    def _margin(self, account: int) -> tuple[float, float]:
        eq, mm, _ = self.ex.account_margin(account)
        return eq, mm

    def _credit(self, account: int, amount: float) -> None:
        """Cover part of an account's shortfall: its isolated deficit first, then cash."""
        led = self.ex.ledger
        d = min(float(led.deficit[account]), amount)
        led.deficit[account] -= d
        led.cash[account] += amount - d

    def _debit(self, account: int, amount: float, upnl: np.ndarray) -> None:
        """Take a shortfall charge from a profitable account: cross margin from its cash;
        isolated margin from free cash first and the rest from the margin of its
        profitable positions, pro rata to their profit (so free cash never goes
        below zero and no position loses more than its profit)."""
        led = self.ex.ledger
        if led.mode[account] != ISOLATED:
            led.cash[account] -= amount
            return
        free = max(float(led.cash[account]) - self.ex.order_margin.get(account, 0.0), 0.0)
        from_cash = min(amount, free)
        led.cash[account] -= from_cash
        rest = amount - from_cash
        if rest > 0:
            gain = np.clip(upnl, 0.0, None)
            led.iso_margin[:, account] -= rest * gain / gain.sum()

    def _write_off(self, account: int, amount: float) -> None:
        """Book ``amount`` of the account's shortfall as bad debt: its isolated deficit
        first, then cash (:meth:`Exchange.write_off`). A flat account is brought to
        exactly zero, so no float dust of negative equity is left."""
        ex, led = self.ex, self.ex.ledger
        d = float(led.deficit[account])
        if d > 0:
            led.deficit[account] = 0.0
            led.cash[account] -= d  # write_off adds it back to cash
            ex.write_off(account, d)
            amount -= d
        flat = not led.pos[:, account].any() and not led.coll[:, account].any()
        if flat and led.cash[account] < 0:
            ex.write_off(account, -float(led.cash[account]))  # exactly zero
        elif amount > 0:
            ex.write_off(account, amount)

    def _fund_pays(self, account: int, ctx, *, wait: bool = True) -> None:
        """The insurance fund pays the shortfall out of its free equity above the floor;
        with ``wait`` the rest waits for :meth:`settle`."""
        ex = self.ex
        step, rnd, causes = ctx
        owed = self.shortfall_of(account)
        if account != ex.insurance.account:
            paid = ex.insurance.pay(owed, ex.fund_free_equity())
            if paid > 0:
                self._credit(account, paid)
                self.fund_paid += paid
                ex.events.add(
                    "insurance", step=step, round=rnd, account=account, loss=paid, causes=causes
                )
        if wait and self.shortfall_of(account) > 0:
            self.pending.setdefault(account, causes[0] if causes else -1)

    def _sell_collateral(self, account: int, ctx, *, raise_usd: float | None = None) -> None:
        """A bankrupt account's collateral tokens are sold into their spot books; with
        ``raise_usd``, only as many as raise that much cash at their current prices
        (rounded up to whole lots), as a venue's auto-exchange converts what repays a
        negative balance."""
        ex, led = self.ex, self.ex.ledger
        step, rnd, causes = ctx
        for c in range(len(ex.collaterals)):
            if raise_usd is not None and raise_usd <= 0:
                break
            units = float(led.coll[c, account])
            lot = ex.collaterals[c].lot
            lots = int(units / lot)
            if raise_usd is not None and ex.coll_prices[c] > 0:
                lots = min(lots, math.ceil(raise_usd / (float(ex.coll_prices[c]) * lot)))
            if lots <= 0:
                continue
            cash0 = float(led.cash[account])
            filled = ex.spot_market(account, c, SELL, lots)
            if filled:
                ex.events.add(
                    "collateral_sale",
                    step=step,
                    round=rnd,
                    account=account,
                    qty=filled,
                    notional=float(led.cash[account]) - cash0,
                    causes=causes,
                )
                if raise_usd is not None:
                    raise_usd -= float(led.cash[account]) - cash0

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

    def _force(self, account: int, m: int, qty: int, limit_price: float | None) -> int:
        """IOC order closing ``qty`` lots (signed: what to trade) of market ``m``; lots
        filled. ``limit_price`` None: at any price."""
        side = BUY if qty > 0 else SELL
        limit = None if limit_price is None else self._limit_ticks(m, side, limit_price)
        if limit is not None and limit <= 0:
            return 0
        self.ex.forced = True
        try:
            return self.ex.market_order(account, m, side, abs(qty), limit=limit)
        finally:
            self.ex.forced = False

    def _fill_event(
        self,
        kind: str,
        ctx,
        account: int,
        m: int,
        filled: int,
        notional: float,
        loss: float,
        side: int,
    ) -> None:
        """Record a forced fill (``partial`` or ``full``) at its average price; ``side``
        is the sign of the position it closed."""
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
            side=side,
            causes=causes,
        )

    def _filled_notional(self, m: int, first_trade: int) -> float:
        rows = self.ex.trades_since(first_trade)
        return sum(r[2] * r[3] for r in rows) * float(self.ex.ledger.lot[m])

    def _charge_fee(self, account: int, notional: float, equity: float) -> float:
        """Liquidation fee to the insurance fund, capped at the equity left."""
        fee = min(self.policy.fee * notional, max(equity, 0.0))
        if fee > 0 and account != self.ex.insurance.account:
            self.ex.ledger.cash[account] -= fee
            self.ex.ledger.fees[account] += fee
            self.ex.insurance.receive(fee)
            return fee
        return 0.0

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
                    kind,
                    ctx,
                    account,
                    m,
                    filled,
                    notional,
                    max(eq_before - eq_after, 0.0),
                    1 if pos > 0 else -1,
                )
        return any_fill

    # ------------------------------------------------------------ waterfall
    def _liquidate_cross(self, account: int, ctx) -> None:
        pol = self.policy
        eq, mm = self._margin(account)
        if mm <= 0:
            return
        if eq / mm >= pol.full_ratio and pol.step_share < 1 and eq > 0:
            for _ in range(pol.max_partial_steps):
                if not self._book_pass(account, pol.step_share, "partial", ctx):
                    break
                eq, mm = self._margin(account)
                if mm <= 0 or eq >= pol.target_ratio * mm:
                    return
        eq, mm = self._margin(account)
        if mm > 0 and (eq < mm or eq < 0):
            self._book_pass(account, 1.0, "full", ctx)
            self._remainder(account, ctx)

    def _liquidate_isolated(self, account: int, m: int, ctx) -> None:
        """An isolated position is liquidated alone; its losses never reach the account's
        free cash: whatever it loses beyond its allocated margin is its deficit."""
        ex, led = self.ex, self.ex.ledger
        peq, _ = led.position_margin(account, m, float(ex.marks[m]))
        pos = int(led.pos[m, account])
        if peq > 0:
            limit = ex.marks[m] - peq / (pos * led.lot[m])
        else:
            limit = ex.marks[m] * (1 - np.sign(pos) * self.policy.max_slippage)
        n0 = ex.n_trades
        cash0 = float(led.cash[account])
        filled = self._force(account, m, -pos, float(limit))
        if filled:
            notional = self._filled_notional(m, n0)
            # The fee comes out of what the closed position released to free cash.
            released = float(led.cash[account]) - cash0
            fee = self._charge_fee_iso(account, min(self.policy.fee * notional, released))
            self._fill_event("full", ctx, account, m, filled, notional, fee, 1 if pos > 0 else -1)
        left = int(led.pos[m, account])
        if left:
            peq, _ = led.position_margin(account, m, float(ex.marks[m]))
            price = ex.marks[m] - peq / (left * led.lot[m]) if peq > 0 else float(ex.marks[m])
            self._take_over(account, m, left, float(price), ctx)

    def _wallet(self, account: int) -> float:
        """An isolated account's wallet outside its positions (USD): cash + haircut
        collateral value (its deficit is a shortfall the waterfall books, not a debt
        of the wallet)."""
        ex, led = self.ex, self.ex.ledger
        wallet = float(led.cash[account])
        if len(ex.collaterals):
            wallet += float((led.haircut * ex.coll_prices) @ led.coll[:, account])
        return wallet

    def _repay_wallet(self, account: int, ctx) -> None:
        """An isolated account whose wallet is negative (it borrowed cash against
        collateral that then fell) and that :meth:`cover_isolated_wallets` could not
        mend (a position's margin is below zero once a shortfall charge took part of
        its profit, and profit cannot be drawn) repays what it owes as venues repay a
        negative balance of a multi-asset wallet (Binance's auto-exchange, Bybit's
        liability repayment): collateral is sold into its spot book until the cash it
        borrowed is repaid, then, if the wallet is still negative, its positions are
        closed, the most equity beyond maintenance margin first, until it is not."""
        if self._wallet(account) >= -_EPS:
            return
        ex, led = self.ex, self.ex.ledger
        self._sell_collateral(account, ctx, raise_usd=-float(led.cash[account]))
        spare = []
        for m in np.flatnonzero(led.pos[:, account]).tolist():
            eq, mm = led.position_margin(account, m, float(ex.marks[m]))
            spare.append((eq - mm, m))
        for _, m in sorted(spare, reverse=True):
            if self._wallet(account) >= -_EPS:
                break
            self._liquidate_isolated(account, m, ctx)

    def _charge_fee_iso(self, account: int, fee: float) -> float:
        """An isolated liquidation's fee, paid out of the free cash the position released."""
        led = self.ex.ledger
        if fee > 0:
            led.cash[account] -= fee
            led.fees[account] += fee
            self.ex.insurance.receive(fee)
        return fee

    def _remainder(self, account: int, ctx) -> None:
        """Positions the book could not absorb go down the takeover chain."""
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

    def vault_capacity(self, m: int, qty: int, price: float) -> int:
        """Lots of ``qty`` (signed, the position taken over) the vault can take at
        ``price`` and stay within ``vault_max_leverage`` on its whole book
        (gross notional / equity after the takeover)."""
        ex = self.ex
        if not self.policy.backstop or ex.vault is None:
            return 0
        v = ex.vault.account
        led = ex.ledger
        marks = ex.marks
        eq = ex.account_margin(v)[0]
        gross = float(np.abs(led.pos[:, v] * led.lot * marks).sum())
        lot, mark = float(led.lot[m]), float(marks[m])
        p = float(led.pos[m, v])
        s = 1 if qty > 0 else -1
        cap = ex.vault_max_leverage

        def fits(x: int) -> bool:
            e = eq + (mark - price) * s * x * lot
            g = gross + (abs(p + s * x) - abs(p)) * lot * mark
            return e > 0 and g <= cap * e + _EPS

        return _largest(abs(qty), fits)

    def _transfer(
        self,
        kind: str,
        ctx,
        src: int,
        dst: int,
        m: int,
        signed: int,
        price: float,
        *,
        record: int | None = None,
    ) -> None:
        """Move ``signed`` lots of ``m`` from ``src`` to ``dst`` off the book at ``price``
        and record the ``kind`` event (on ``src``'s account unless ``record`` says; its
        ``side`` is always that of ``src``'s liquidated position)."""
        step, rnd, causes = ctx
        self.ex.transfer_position(src, dst, m, signed, price)
        lots = abs(signed)
        self.ex.events.add(
            kind,
            step=step,
            round=rnd,
            account=src if record is None else record,
            market=m,
            qty=lots,
            notional=lots * float(self.ex.ledger.lot[m]) * price,
            price=price,
            side=1 if signed > 0 else -1,
            causes=causes,
        )

    def fund_capacity(self, m: int, qty: int, price: float) -> int:
        """Lots of ``qty`` (signed) the insurance fund can take over at ``price`` and keep
        its free equity (equity − the stress-grid loss of what it holds) at or above
        its floor: it warehouses only what it can carry through a stress move."""
        ex, led = self.ex, self.ex.ledger
        f = ex.insurance.account
        floor = ex.insurance.floor
        s = 1 if qty > 0 else -1
        p, c = led.pos[m, f], led.cost[m, f]
        lot = float(led.lot[m])
        marks = ex.marks

        def fits(x: int) -> bool:  # the fund's books as if it had taken x lots at price
            led.pos[m, f], led.cost[m, f] = p + s * x, c + s * x * lot * price
            eq = ex.account_margin(f)[0]
            carry = led.stress_loss(f, marks)
            led.pos[m, f], led.cost[m, f] = p, c
            return eq - carry >= floor - _EPS

        return _largest(abs(qty), fits)

    def _take_over(self, account: int, m: int, qty: int, price: float, ctx) -> None:
        """Close ``qty`` lots (the signed position) of ``m`` that the book did not take:
        the backstop vault takes what it can carry at ``price``; the insurance fund,
        while above its floor, takes the rest (at ``price`` when that is better than
        the mark, else at the mark, paying the shortfall separately); only when both
        cannot is the rest auto-deleveraged."""
        ex = self.ex
        mark = float(ex.marks[m])
        if ex.vault is not None and account != ex.vault.account:
            take = self.vault_capacity(m, qty, price)
            if take:
                signed = take if qty > 0 else -take
                eq0, _ = self._margin(account)
                self._transfer("backstop", ctx, account, ex.vault.account, m, signed, price)
                ex.events.update(len(ex.events) - 1, loss=max(eq0 - self._margin(account)[0], 0.0))
                qty -= signed
                if not qty:
                    return
        fund = ex.insurance.account
        if self.policy.fund_takeover and account != fund:
            # At the bankruptcy price only when it is better than the mark for the fund.
            px = price if (mark - price) * qty >= 0 else mark
            take = self.fund_capacity(m, qty, px)
            if take:
                signed = take if qty > 0 else -take
                self._transfer("takeover", ctx, account, fund, m, signed, px)
                qty -= signed
                if not qty:
                    return
        adl_px = price if self.policy.adl_price == "bankruptcy" else mark
        if (mark - adl_px) * qty < 0:
            adl_px = mark  # the gap of a bankrupt account is charged by :meth:`settle`
        self._adl(account, m, qty, adl_px, ctx)

    def adl_ranking(self, m: int, side: int, *, exclude: int = -1) -> np.ndarray:
        """Accounts holding a profitable position of sign ``side`` in market ``m``, best
        ADL candidate first: PnL% × effective leverage (Bybit, BitMEX), or with
        ``adl_rank = "mark_entry_leverage"`` Hyperliquid's ADL index (mark / entry) ×
        (notional / account value) (entry / mark for a short).

        Examples:
            >>> from crossmargin.model.exchange import Exchange
            >>> from crossmargin.model.markets import Market
            >>> ex = Exchange([Market("BTC", 1.0, 0.001)])
            >>> RiskEngine(ex).adl_ranking(0, 1).tolist()
            []
        """
        ex, led = self.ex, self.ex.ledger
        n = led.n
        pos = led.pos[m, :n]
        cand = np.flatnonzero(np.sign(pos) == side)
        cand = cand[(cand != exclude) & (cand != ex.insurance.account)]
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
        if self.policy.adl_rank == "mark_entry_leverage":
            ratio = np.abs(notional[prof] / cost)  # mark / entry
            score = (ratio if side > 0 else 1.0 / ratio) * lev
        else:
            score = upnl / np.abs(cost) * lev
        order = np.lexsort((cand, -score))
        return cand[order]

    def _adl(self, account: int, m: int, qty: int, price: float, ctx) -> None:
        """Close the position against ranked profitable opposite positions at ``price``
        (never worse than the mark for them); what nobody holds goes into the book at
        any price, and as a last resort to the insurance fund whatever its balance."""
        ex, led = self.ex, self.ex.ledger
        remaining = abs(qty)
        for cp in self.adl_ranking(m, -int(np.sign(qty)), exclude=account):
            if remaining == 0:
                break
            cp = int(cp)
            take = int(min(remaining, abs(led.pos[m, cp])))
            signed = take if qty > 0 else -take
            remaining -= take
            self._transfer("adl", ctx, account, cp, m, signed, price, record=cp)
        if remaining:
            signed = -remaining if qty > 0 else remaining
            self._force(account, m, signed, None)
            left = int(led.pos[m, account])
            if left and account != ex.insurance.account:
                px = float(ex.marks[m])
                self._transfer("takeover", ctx, account, ex.insurance.account, m, left, px)


def _largest(n: int, fits) -> int:
    """The largest x in [0, n] with ``fits(x)`` (x = 0 always fits), by bisection: taking
    more of one position only ever adds margin once any netting is used up."""
    if fits(n):
        return n
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(mid):
            lo = mid
        else:
            hi = mid - 1
    return lo


def _water_fill(weights: np.ndarray, caps: np.ndarray, total: float) -> np.ndarray:
    """Split ``total`` pro rata to ``weights`` with no one above its cap (the excess of
    capped payers goes to the others, pro rata again)."""
    take = np.zeros(len(weights))
    free = np.ones(len(weights), dtype=bool)
    left = min(total, float(caps.sum()))
    while left > _EPS and free.any():
        w = weights * free
        share = left * w / w.sum()
        over = free & (take + share >= caps)
        if not over.any():
            take += share
            break
        left -= float((caps[over] - take[over]).sum())
        take[over] = caps[over]
        free &= ~over
    return take
