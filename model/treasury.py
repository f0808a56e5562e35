"""Treasuries: collateral moved between the venue accounts of one owner.

An owner (a cross-venue arbitrageur, a hedged trader) holds one account per venue.
Every step its treasury looks at them: an account whose equity is below
``call_ratio`` × its maintenance margin asks for enough to reach ``target_ratio`` ×;
the owner's accounts above ``target_ratio`` × their own margin give what they have
beyond it (and beyond their initial margin and open orders), the richest first. The
collateral leaves the source at once and lands after a stochastic settlement delay,
``delay_min`` + an exponential of mean ``delay_mean`` minutes (Hautsch, Scheuch &
Voigt: the settlement latency of blockchain transfers is what bounds cross-venue
arbitrage, ~120 bp for BTC). A venue under a withdrawal halt lets nothing out (on
10 October 2025 withdrawals on Binance were reported blocked for ~100 minutes).
One transfer at a time is in flight to an account.

Money in flight belongs to no venue: each venue's books count it out when it leaves
(:meth:`~.exchange.Exchange.transfer_out`) and in when it lands, and the world's
books add what is in flight (:attr:`Treasury.in_flight`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .scenario import TransferConfig
    from .venue import Venue

__all__ = ["Transfer", "Treasury"]


@dataclass
class Transfer:
    """Collateral on its way between two accounts of one owner."""

    owner: int
    source: tuple[int, int]  # (venue code, account)
    target: tuple[int, int]
    amount: float  # USD (for units, their value when sent)
    sent: int  # step
    due: int  # step it lands at (end of)
    event: int  # its ``transfer`` event
    market: int = -1  # units of this spot asset, or −1 for cash
    units: int = 0  # lots
    price: float = 0.0  # USD per unit when sent


class Treasury:
    """The treasuries of every owner of a world of venues.

    Args:
        venues: The world's venues, by code.
        cfg: Delays and thresholds.
        rng: The stream delays are drawn from.
    """

    def __init__(self, venues: list[Venue], cfg: TransferConfig, rng: np.random.Generator) -> None:
        self.venues = venues
        self.cfg = cfg
        self.rng = rng
        self.accounts: dict[int, list[tuple[int, int]]] = {}  # owner → (venue, account)
        self.pending: list[Transfer] = []
        self.history: list[Transfer] = []  # every transfer sent
        self.stock: dict[tuple[int, int, int], int] = {}  # (owner, venue, market) → lots
        self.halted_until = np.zeros(len(venues), dtype=np.int64)  # withdrawals halted
        self.sent = 0.0
        self.landed = 0.0
        self.count = 0
        self.touched: set[int] = set()  # venues whose books this step's settle changed
        # Per venue, the accounts of owners holding two or more, and those owners
        # (built when first read after a registration).
        self._legs: list[tuple[np.ndarray, list[int]]] | None = None

    def register(self, owner: int, venue: int, account: int) -> None:
        """Give ``owner`` its account on ``venue``."""
        self.accounts.setdefault(owner, []).append((venue, account))
        self._legs = None

    def _multi_legs(self) -> list[tuple[np.ndarray, list[int]]]:
        if self._legs is None:
            per: list[tuple[list[int], list[int]]] = [([], []) for _ in self.venues]
            for owner, accts in self.accounts.items():
                if len(accts) >= 2:
                    for v, a in accts:
                        per[v][0].append(a)
                        per[v][1].append(owner)
            self._legs = [(np.array(a, dtype=np.int64), o) for a, o in per]
        return self._legs

    @property
    def in_flight(self) -> float:
        """USD sent and not yet landed."""
        return float(sum(t.amount for t in self.pending))

    def inbound(self, venue: int, account: int) -> Transfer | None:
        """The transfer on its way to ``account`` on ``venue``, if any."""
        for tr in self.pending:
            if tr.target == (venue, account):
                return tr
        return None

    def settle(self, t: int) -> None:
        """Land what is due, then send what the owners' margin calls ask for;
        :attr:`touched` names the venues whose books changed."""
        self.touched = set()
        self._land(t)
        if self.accounts:
            self._send(t)
            self._rebalance_units(t)
            self._land(t)  # instant transfers (no delay) land in the same step

    def _land(self, t: int) -> None:
        due = [tr for tr in self.pending if tr.due <= t]
        if not due:
            return
        self.pending = [tr for tr in self.pending if tr.due > t]
        for tr in due:
            v, a = tr.target
            ex = self.venues[v].exchange
            self.touched.add(v)
            if tr.market >= 0:
                ex.land_units(a, tr.market, tr.units, tr.price)
            else:
                ex.transfer_in(a, tr.amount)
            self.landed += tr.amount

    def _send(self, t: int) -> None:
        cfg = self.cfg
        waiting = {tr.target for tr in self.pending}
        # The owners (of two accounts or more) with an account called, as the venues'
        # last settlements left them, in one array test per venue: the full state of
        # an owner's accounts is read only on a call.
        calling = set()
        for v, (legs, owners) in enumerate(self._multi_legs()):
            if len(legs):
                eq, mm = self.venues[v].val.equity[legs], self.venues[v].val.mm[legs]
                for i in np.flatnonzero(~(mm <= 0) & ~(eq >= cfg.call_ratio * mm)).tolist():
                    if (v, int(legs[i])) not in waiting:
                        calling.add(owners[i])
        if not calling:
            return
        for owner, accts in self.accounts.items():
            if owner not in calling:
                continue
            state = [self._margin(v, a) for v, a in accts]
            for (v, a), (eq, mm, _) in zip(accts, state, strict=True):
                if mm <= 0 or eq >= cfg.call_ratio * mm or (v, a) in waiting:
                    continue
                need = cfg.target_ratio * mm - eq
                donors = sorted(
                    (
                        (spare, vs, s)
                        for (vs, s), (_, _, spare) in zip(accts, state, strict=True)
                        if (vs, s) != (v, a) and spare > 0 and self.halted_until[vs] < t
                    ),
                    reverse=True,
                )
                for spare, vs, s in donors:
                    x = min(spare, need)
                    if x <= 1e-6:
                        break
                    self._transfer(owner, (vs, s), (v, a), x, t)
                    need -= x
                    if need <= 1e-6:
                        break
                waiting.add((v, a))

    def register_stock(self, owner: int, venue: int, m: int, lots: int) -> None:
        """The units ``owner`` aims to hold of spot asset ``m`` on ``venue`` (its
        starting stock): the treasury keeps its spot inventories near it."""
        self.stock[(owner, venue, m)] = lots

    def _rebalance_units(self, t: int) -> None:
        """An owner holding less than half its stock of a spot asset on one venue gets
        units from its venue holding the most beyond its own stock (arbitrageurs move
        coins to where they sell, as in Makarov & Schoar 2020), with the same delay;
        one transfer at a time to an account and asset."""
        if not self.stock:
            return
        waiting = {(tr.target, tr.market) for tr in self.pending if tr.market >= 0}
        by_owner: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for (owner, v, m), lots in self.stock.items():
            by_owner.setdefault((owner, m), []).append((v, lots))
        accounts = {o: dict(acc) for o, acc in self.accounts.items()}
        for (owner, m), held in by_owner.items():
            acc = accounts[owner]
            have = {v: int(self.venues[v].exchange.ledger.pos[m, acc[v]]) for v, _ in held}
            for v, base in held:
                if have[v] >= base // 2 or ((v, acc[v]), m) in waiting:
                    continue
                spare = [(have[u] - b, u) for u, b in held if u != v and self.halted_until[u] < t]
                if not spare:
                    continue
                extra, u = max(spare)
                lots = min(extra, base - have[v])
                if lots <= 0:
                    continue
                src = self.venues[u]
                price = float(src.mark[m])
                value = src.exchange.withdraw_units(acc[u], m, lots, price)
                self.touched.add(u)
                have[u] -= lots
                self._record(owner, (u, acc[u]), (v, acc[v]), value, t, m, lots, price)

    def _margin(self, v: int, a: int) -> tuple[float, float, float]:
        """Equity, maintenance margin and what can leave (above target × MM, IM and
        open orders, and never more than the cash there) of one account."""
        venue = self.venues[v]
        ex = venue.exchange
        val = venue.val  # the valuation the venue's last settlement left
        eq, mm, im = float(val.equity[a]), float(val.mm[a]), float(val.im[a])
        keep = max(self.cfg.target_ratio * mm, im) + ex.order_margin.get(a, 0.0)
        cash = (
            float(ex.ledger.cash[a] - ex.ledger.cost[:, a].sum())
            if ex.spot
            else float(ex.ledger.cash[a])
        )
        return eq, mm, max(0.0, min(eq - keep, cash))

    def _transfer(self, owner: int, src: tuple[int, int], dst: tuple[int, int], x: float, t: int):
        self.venues[src[0]].exchange.transfer_out(src[1], x)
        self.touched.add(src[0])
        self._record(owner, src, dst, x, t)

    def _record(
        self,
        owner: int,
        src: tuple[int, int],
        dst: tuple[int, int],
        x: float,
        t: int,
        market: int = -1,
        units: int = 0,
        price: float = 0.0,
    ) -> None:
        """Put a transfer sent at ``t`` in flight, with its delay and its event."""
        cfg = self.cfg
        delay = cfg.delay_min + (
            round(self.rng.exponential(cfg.delay_mean)) if cfg.delay_mean > 0 else 0
        )
        # The event is the target venue's: an account there waits for it.
        eid = self.venues[dst[0]].exchange.events.add(
            "transfer",
            step=t,
            round=0,
            account=dst[1],
            market=market,
            qty=src[1],
            notional=x,
            price=delay,
        )
        tr = Transfer(owner, src, dst, x, t, t + delay, eid, market, units, price)
        self.pending.append(tr)
        self.history.append(tr)
        self.sent += x
        self.count += 1
