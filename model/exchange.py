"""The exchange: one order book per market, the ledger, fees, pools and settlement.

Agents and the risk engine reach the books only through the exchange, so every fill
is settled on both sides in the ledger the moment it happens, fees go to the
exchange's fee pool, and the resting orders of each account are known (so a
liquidation can cancel them). Perpetual positions trade on the perp books; collateral
tokens trade against USD cash on their own spot books.

**Margin at order entry** (Binance's and Bybit's order-cost check): an order that
would open exposure is accepted only if the account can carry it at its worst fill
price, with the margin of its other resting orders counted: in cross and portfolio
margin, equity − fee − open-order margin must cover the account's initial margin
after the fill; in isolated margin the available balance (free cash − open-order
margin) must cover the position's margin and the fee, so it never goes below zero.
Reduce-only orders always pass. Market orders are limited to ``order_band`` beyond
the opposite best quote (the venues' market-order price protection); with a
``price_band``, limit orders priced further than that from the mark are rejected (the
venues' price limits, e.g. Binance's "price protection" band around the mark).
Rejections are counted per account (:attr:`Ledger.orders_rejected`).

**Books that reconcile.** The insurance fund and the backstop vault are ledger
accounts (so they can hold the positions they take over); money that nobody can pay
is written off as bad debt (:meth:`Exchange.write_off`), so that
:meth:`Exchange.state_error` (Σ equity at mark − collateral value + pools − bad debt
− external money) and :meth:`Exchange.conservation_error` are zero up to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .events import EventLog, VenueEvents
from .ledger import Ledger, Valuation
from .markets import CROSS, ISOLATED, Collateral, Market
from .orderbook import BUY, COMPILED, GTC, IOC, POST_ONLY, OrderBook
from .pools import BackstopVault, InsuranceFund, PoolNetwork, SyntheticDollarPool

if COMPILED:  # the order path compiled beside the book (model/_*.pxi)
    from ._book import exchange_limit, ladder_cancel, ladder_post, ladder_post_spot, settle_perp

__all__ = ["Exchange", "FeeSchedule"]

TRADE_COLUMNS = ("step", "market", "price", "qty", "maker", "taker", "side", "forced")
"""The columns of :meth:`Exchange.trades_frame` (and of each row of ``trade_rows``)."""
TRADE_DTYPE = np.dtype(
    [
        ("step", np.int64),
        ("market", np.int64),
        ("price", np.float64),
        ("qty", np.int64),
        ("maker", np.int64),
        ("taker", np.int64),
        ("side", np.int64),
        ("forced", np.bool_),
    ]
)


@dataclass(frozen=True)
class FeeSchedule:
    """Maker and taker fee rates on notional (negative maker fee = rebate)."""

    maker: float = 0.0002
    taker: float = 0.0005


class Exchange:
    """Books, ledger, pools and the settlement of every fill.

    Args:
        markets: Perpetual markets (one book each).
        collaterals: Collateral assets (one spot book each, against USD cash).
        fees: Maker/taker fees.
        insurance_fund: Initial insurance-fund balance (USD).
        vault_capital: Initial capital of the backstop vault (USD); 0 = no vault.
        vault_max_leverage: Leverage cap of the vault's own account.
        insurance_floor: The fund counts as exhausted below this equity (USD).
        order_band: Market orders fill at most this far beyond the opposite best
            quote (price protection); it also bounds the margin check's worst price.
        price_band: Limit orders priced further than this (a fraction) from the mark
            are rejected; None: no band.
        synthetic_dollar: A synthetic-dollar pool whose token is collateral index
            ``synthetic_dollar_index``; its NAV prices that collateral when the price
            source is ``pool_nav``.
    """

    def __init__(
        self,
        markets: Sequence[Market],
        collaterals: Sequence[Collateral] = (),
        *,
        fees: FeeSchedule | None = None,
        insurance_fund: float = 0.0,
        vault_capital: float = 0.0,
        vault_max_leverage: float = 5.0,
        insurance_floor: float = 0.0,
        order_band: float = 0.05,
        price_band: float | None = None,
        synthetic_dollar: SyntheticDollarPool | None = None,
        synthetic_dollar_index: int | None = None,
        capacity: int = 1024,
        events: EventLog | VenueEvents | None = None,
        spot: bool = False,
    ) -> None:
        self.markets = tuple(markets)
        self.collaterals = tuple(collaterals)
        self.fees = fees or FeeSchedule()
        self.ledger = Ledger(self.markets, self.collaterals, capacity=capacity)
        self.books = [OrderBook() for _ in self.markets]
        self.spot_books = [OrderBook() for _ in self.collaterals]
        self.order_band = order_band
        self.price_band = price_band
        self._ticks = [mk.tick for mk in self.markets]
        self._taker = self.fees.taker
        self.fee_pool = 0.0
        self.bad_debt = 0.0  # negative balances written off (USD)
        self.seeded = 0.0  # external money put into pools that are not accounts
        # The insurance fund is an account: its cash is its balance, and it can
        # warehouse the positions it takes over (BitMEX, Binance).
        fund = self.ledger.open_account(insurance_fund, mode=CROSS)
        self.insurance = InsuranceFund(fund, self.ledger, insurance_fund, floor=insurance_floor)
        self.vault: BackstopVault | None = None
        self.vault_max_leverage = vault_max_leverage
        if vault_capital > 0:
            acct = self.ledger.open_account(vault_capital, mode=CROSS)
            self.vault = BackstopVault(account=acct)
            self.vault.deposit(-1, vault_capital, vault_capital)
        self.pool_accounts = [fund] + ([self.vault.account] if self.vault is not None else [])
        self.usdx = synthetic_dollar
        self.usdx_index = synthetic_dollar_index
        if synthetic_dollar is not None:
            self.seeded += synthetic_dollar.reserves
        self.network = PoolNetwork(["usdx", "usdx_holders"])
        self.events = events if events is not None else EventLog()
        # A spot venue: assets trade against cash with no leverage and no shorting.
        self.spot = spot
        self.custody = -1  # a spot venue's custody account (−1: none yet)
        self.transfers_net = 0.0  # USD in from other venues minus USD out to them
        # Signed taker flow per market this step, USD (buys positive): what moves the
        # latent price in a world of venues.
        self.flow = np.zeros(len(self.markets))
        self.lots_traded = np.zeros(len(self.markets))  # this step, lots per market
        self.informed_flow = np.zeros(len(self.markets))  # the informed takers' flow
        # Accounts whose flow reveals the value rather than moving it (the informed).
        self.informed: set[int] = set()
        self._marks = np.array([np.nan] * len(self.markets))
        self._marks.flags.writeable = False
        self.index = np.array([np.nan] * len(self.markets))
        self.coll_index = np.ones(len(self.collaterals))
        self.coll_prices = np.ones(len(self.collaterals))
        self.pool_recovery = {"usdx": 1.0}
        self.step = 0
        # Resting orders by owner and book (m >= 0: book m; -c - 1: collateral c's spot
        # book): order ids, read per book by the spot venue's order entry.
        self._resting: dict[int, dict[int, set[int]]] = {}
        # Every fill and off-book transfer, one tuple each in TRADE_COLUMNS order, since
        # the last compaction; older ones in compact numpy chunks (compact_trades).
        self.trade_rows: list[tuple] = []
        self._trade_chunks: list[np.ndarray] = []
        self._trades_compacted = 0
        self.forced = False  # set by the risk engine while it trades for a liquidation
        # What the compiled order path reads of this exchange, kept while its attributes
        # stand (``_ExReads`` of model/_ladder.pxi; None: not read yet).
        self._reads = None
        # Per perp book m, resting order id -> (owner, margin held per lot): one dict
        # per book, keyed by the plain order id (no (m, oid) tuple to build and hash).
        self._reserved: list[dict[int, tuple[int, float]]] = [{} for _ in self.markets]
        # Initial margin reserved by resting orders (USD), as venues lock "open order
        # margin" from the available balance (Binance, Bybit).
        self.order_margin: dict[int, float] = {}
        self.volume = np.zeros(len(self.markets))  # USD traded (reset by the model each step)

    @property
    def marks(self) -> np.ndarray:
        """Mark prices (USD), read-only: set them with ``exchange.marks = ...`` or
        :meth:`set_mark`, so that cached valuations know they changed."""
        return self._marks

    @marks.setter
    def marks(self, values) -> None:
        a = np.array(values, dtype=np.float64)
        a.flags.writeable = False
        self._marks = a
        self.ledger.touch()

    def set_mark(self, m: int, price: float) -> None:
        """Set the mark of market ``m`` (USD)."""
        a = self._marks.copy()
        a[m] = price
        self.marks = a

    # --------------------------------------------------------------- orders
    def limit(
        self, account: int, m: int, side: int, price: int, qty: int, *, tif: int = GTC
    ) -> int:
        """Limit order on perp book ``m`` (price in ticks, qty in lots); return lots filled.

        A rejected order (see the module docstring) fills nothing and leaves no id
        (``book.last_id`` is 0). With the compiled book, an order given in plain ints runs
        the same steps compiled (``model/_entry.pxi``).
        """
        if COMPILED and type(price) is type(qty) is type(side) is int:
            return exchange_limit(self, self.books[m], account, m, side, price, qty, tif)
        book = self.books[m]
        per_lot = 0.0
        if not self.forced:
            band = self.price_band
            if band is not None:
                mark = self._marks[m]
                if abs(price * self._ticks[m] - mark) > band * mark:
                    self.ledger.orders_rejected[account] += 1
                    book.last_id = 0
                    return 0
            crosses = book._best_ask <= price if side == BUY else book._best_bid >= price
            if crosses and tif == POST_ONLY:
                ticks = qty * price  # the book rejects it; nothing to check
            elif crosses:
                n, cost = book.fill_cost(side, qty, price)
                ticks = cost + (qty - n) * price
            else:
                ticks = qty * price
            per_lot = self._admit(account, m, side, qty, ticks * self._ticks[m])
            if per_lot < 0:
                book.last_id = 0
                return 0
        filled = book.limit(side, price, qty, account, tif=tif)
        if book.fills:
            self._settle_perp(m, book.fills)
        if book.stp_cancelled:
            self._release_stp(m, book)
        if tif != IOC and book.last_id in book:
            self._resting.setdefault(account, {}).setdefault(m, set()).add(book.last_id)
            if per_lot > 0:
                self._reserved[m][book.last_id] = (account, per_lot)
                om = self.order_margin
                om[account] = om.get(account, 0.0) + per_lot * (qty - filled)
        return filled

    def market_order(
        self, account: int, m: int, side: int, qty: int, *, limit: int | None = None
    ) -> int:
        """Market order (or IOC limited at ``limit`` ticks) on perp book ``m``; return lots filled.

        Forced orders (the risk engine's) without a limit take any price; everyone
        else's market orders are limited at ``order_band`` beyond the opposite best
        quote.
        """
        book = self.books[m]
        if limit is None and not self.forced:
            best = book.best_ask if side == BUY else book.best_bid
            if best is None:
                return 0
            limit = (
                int(best * (1 + side * self.order_band))
                if side == BUY
                else max(1, math.ceil(best * (1 - self.order_band)))
            )
        if limit is None:
            filled = book.market(side, qty, account)
        elif limit <= 0:
            return 0
        else:
            return self.limit(account, m, side, limit, qty, tif=IOC)
        if book.fills:
            self._settle_perp(m, book.fills)
        if book.stp_cancelled:
            self._release_stp(m, book)
        return filled

    def _admit(self, account: int, m: int, side: int, qty: int, price_qty: float) -> float:
        """Margin check at order entry; the open-order margin per lot to reserve while
        the order rests (0 for a reduce-only order), or −1 when the order is rejected.

        ``price_qty`` is Σ lots × USD price of the order's fills as the book stands
        (the immediate fills exactly, the resting rest at its limit); the fee and any
        loss against the mark are charged on it.
        """
        led = self.ledger
        if self.spot:
            return self._admit_spot(account, m, side, qty, price_qty)
        state = led.margin_state(account, self._marks, self.coll_prices)  # cached per epoch
        _, eq, im, ims, pos, lots, mk, mode = state
        p = pos[m]
        opening = qty if p * side >= 0 else qty - abs(p)
        if opening <= 0:
            return 0.0  # reduce-only: always accepted
        mark = mk[m]
        if mark != mark:  # not marked yet: nothing to value against
            return 0.0
        lot = lots[m]
        notional = price_qty * lot
        cost = self._taker * notional
        slip = side * (notional - qty * lot * mark)
        if slip > 0:
            cost += slip
        om = self.order_margin.get(account, 0.0)
        if mode == ISOLATED:
            per_lot = (notional / led.iso_leverage[account] + cost) / qty
            if led.cash[account] - om < per_lot * opening - 1e-9:
                led.orders_rejected[account] += 1
                return -1.0
            return per_lot
        if mode == CROSS:
            add = led.im_after(m, ims, pos, lots, mk, side * qty)
        else:  # portfolio margin: the stress-scenario IM after the fill
            led.pos[m, account] = p + side * qty
            add = led.account_margin(account, self._marks, self.coll_prices)[2] - im
            led.pos[m, account] = p
        if eq - cost - om < im + add:
            led.orders_rejected[account] += 1
            return -1.0
        return ((add if add > 0 else 0.0) + cost) / qty

    def _admit_spot(self, account: int, m: int, side: int, qty: int, price_qty: float) -> float:
        """Order entry on a spot venue: a buy needs the cash it would spend (its fills at
        their prices, the rest at its limit, and the taker fee) beyond what the account's
        resting buys already hold; a sell needs the units beyond those its resting sells
        offer (no shorting). Return the cash per lot to hold while a buy rests, 0 for a
        sell, −1 when refused."""
        led = self.ledger
        if side == BUY:
            need = price_qty * float(led.lot[m]) * (1 + self._taker)
            held = float(led.cash[account]) - float(led.cost[:, account].sum())
            if held - self.order_margin.get(account, 0.0) < need - 1e-9:
                led.orders_rejected[account] += 1
                return -1.0
            return need / qty
        offered = 0
        book = self.books[m]
        for oid in self._resting.get(account, {}).get(m, ()):
            o = book.order(oid)
            if o is not None and o[1] == -1:
                offered += o[3]
        if float(led.pos[m, account]) - offered < qty:
            led.orders_rejected[account] += 1
            return -1.0
        return 0.0

    def deposit_units(self, account: int, m: int, units: int, price: float) -> None:
        """Put ``units`` lots of spot asset ``m`` into ``account`` on a spot venue, from
        the outside world: the venue's custody account (opened on first use) holds the
        other side, short (the world's claim on the units), and the account gets the
        cash it is booked to have paid for them at ``price``, so its free cash is
        unchanged; the money in is their value.

        Examples:
            >>> from crossmargin.model.markets import Market
            >>> ex = Exchange([Market("BTC", 0.1, 0.001)], spot=True)
            >>> a = ex.ledger.open_account(0.0)
            >>> ex.deposit_units(a, 0, 1000, 100_000.0)
            >>> int(ex.ledger.pos[0, a]), ex.external()
            (1000, 100000.0)
        """
        if self.custody < 0:
            self.custody = self.ledger.open_account(0.0)
        self.ledger.trade(self.custody, m, -units, price)
        self.ledger.trade(account, m, units, price)
        self.ledger.deposit(account, units * float(self.ledger.lot[m]) * price)

    def withdraw_units(self, account: int, m: int, units: int, price: float) -> float:
        """Send ``units`` lots of spot asset ``m`` out of ``account`` to another venue at
        ``price`` (the reverse of :meth:`deposit_units`: the custody account takes back
        its claim, the account's position closes against it and the value leaves as a
        transfer out); return the USD value sent."""
        value = units * float(self.ledger.lot[m]) * price
        self.ledger.trade(account, m, -units, price)
        self.ledger.trade(self.custody, m, units, price)
        self.transfer_out(account, value)
        return value

    def land_units(self, account: int, m: int, units: int, price: float) -> None:
        """Units sent from another venue at ``price`` land in ``account``: as
        :meth:`deposit_units`, but counted as a transfer in of their value when sent."""
        if self.custody < 0:
            self.custody = self.ledger.open_account(0.0)
        self.ledger.trade(self.custody, m, -units, price)
        self.ledger.trade(account, m, units, price)
        self.transfer_in(account, units * float(self.ledger.lot[m]) * price)

    def requote(
        self,
        account: int,
        m: int,
        cancels: list[int],
        quotes: list[tuple[int, int]],
        qty: int,
        *,
        sell_qty: int | None = None,
    ) -> list[int]:
        """A market maker's ladder update on book ``m`` in one call: cancel the orders
        ``cancels``, then place post-only orders of ``qty`` lots (a sell ``sell_qty``
        lots, if given) at each ``(side, price in ticks)`` of ``quotes``, in that order;
        return the id of each order that rests (0 for one rejected or that would have
        crossed).

        The same rules as :meth:`limit` with ``POST_ONLY`` apply to each order, in order
        (the price band; the margin check at entry counting the open-order margin of
        the orders placed before it): a cross-margined account's view of its margin is
        fetched once for the whole ladder (the cheap path); any other account's orders
        go through :meth:`limit` one by one. An order that would cross the book is
        refused by the book before any margin is checked.

        With the compiled book, the cancels and the cheap path run compiled
        (``ladder_cancel`` and ``ladder_post`` of ``model/_ladder.pxi``): the same steps
        in the same order, the same floats (``tests/test_compiled.py``).
        """
        book = self.books[m]
        if cancels:
            if COMPILED:
                ladder_cancel(self, book, account, m, cancels)
            else:
                s = self._resting.get(account, {}).get(m)
                for oid in cancels:
                    if s is not None:
                        s.discard(oid)
                    lots = book.cancel(oid)
                    if lots:
                        self._release(m, oid, lots)
        led = self.ledger
        sell = qty if sell_qty is None else sell_qty
        if self.spot and not self.forced:
            return self._requote_spot(account, m, quotes, qty, sell)
        if led.mode[account] != CROSS or self.forced or self.spot:
            out = []
            for side, price in quotes:
                self.limit(account, m, side, price, qty if side == BUY else sell, tif=POST_ONLY)
                out.append(book.last_id if book.last_id in book else 0)
            return out
        state = led.margin_state(account, self._marks, self.coll_prices)  # cached per epoch
        if COMPILED:
            return ladder_post(self, book, account, m, quotes, qty, sell, state)
        _, eq, im, ims, pos, lots, mk, _mode = state
        mark = mk[m]
        lot = lots[m]
        tick = self._ticks[m]
        taker = self._taker
        band = self.price_band
        om = self.order_margin
        resting = self._resting.setdefault(account, {}).setdefault(m, set())
        reserved = self._reserved[m]
        p = pos[m]
        out = []
        for side, price in quotes:
            if (book._best_ask <= price) if side == BUY else (book._best_bid >= price):
                book.rejected_post_only += 1  # it would take liquidity
                out.append(0)
                continue
            if band is not None and abs(price * tick - mark) > band * mark:
                led.orders_rejected[account] += 1
                out.append(0)
                continue
            q = qty if side == BUY else sell
            per_lot = 0.0
            opening = q if p * side >= 0 else q - abs(p)
            if opening > 0 and mark == mark:
                notional = q * price * tick * lot
                cost = taker * notional
                slip = side * (notional - q * lot * mark)
                if slip > 0:
                    cost += slip
                add = led.im_after(m, ims, pos, lots, mk, side * q)
                if eq - cost - om.get(account, 0.0) < im + add:
                    led.orders_rejected[account] += 1
                    out.append(0)
                    continue
                per_lot = ((add if add > 0 else 0.0) + cost) / q
            oid = book.post(side, price, q, account)  # checked above: it does not cross
            resting.add(oid)
            if per_lot > 0:
                reserved[oid] = (account, per_lot)
                om[account] = om.get(account, 0.0) + per_lot * q
            out.append(oid)
        return out

    def _requote_spot(
        self, account: int, m: int, quotes: list[tuple[int, int]], qty: int, sell: int
    ) -> list[int]:
        """:meth:`requote` on a spot venue: the account's free cash and its units not
        already offered are read once for the ladder and run down order by order, with
        the rules of :meth:`_admit_spot` (a buy holds its cash and the taker fee while it
        rests; a sell needs units no resting sell offers). With the compiled book it runs
        compiled (``ladder_post_spot`` of ``model/_maker.pxi``), the same steps and floats."""
        book = self.books[m]
        if COMPILED:
            return ladder_post_spot(self, book, account, m, quotes, qty, sell)
        led = self.ledger
        om = self.order_margin
        lot = float(led.lot[m])
        tick = self._ticks[m]
        cash = float(led.cash[account]) - float(led.cost[:, account].sum()) - om.get(account, 0.0)
        units = int(led.pos[m, account])
        resting = self._resting.setdefault(account, {}).setdefault(m, set())
        gone = []  # filled since they were placed: dropped here, where they are read
        for oid in resting:
            o = book.order(oid)
            if o is None:
                gone.append(oid)
            elif o[1] == -1:
                units -= o[3]
        resting.difference_update(gone)
        band = self.price_band
        mark = self._marks[m]
        fee = 1 + self._taker
        out = []
        for side, price in quotes:
            if (book._best_ask <= price) if side == BUY else (book._best_bid >= price):
                book.rejected_post_only += 1  # it would take liquidity
                out.append(0)
                continue
            if band is not None and abs(price * tick - mark) > band * mark:
                led.orders_rejected[account] += 1
                out.append(0)
                continue
            need = price * tick * lot * qty * fee if side == BUY else 0.0
            if (cash < need - 1e-9) if side == BUY else (units < sell):
                led.orders_rejected[account] += 1
                out.append(0)
                continue
            oid = book.post(side, price, qty if side == BUY else sell, account)  # not crossing
            resting.add(oid)
            if side == BUY:
                cash -= need
                self._reserved[m][oid] = (account, need / qty)
                om[account] = om.get(account, 0.0) + need
            else:
                units -= sell
            out.append(oid)
        return out

    def _release(self, m: int, oid: int, lots: int) -> None:
        r = self._reserved[m].pop(oid, None)
        if r is not None:
            om = self.order_margin
            left = om[r[0]] - r[1] * lots
            om[r[0]] = left if left > 0 else 0.0

    def _release_stp(self, m: int, book: OrderBook) -> None:
        for oid, lots in book.stp_cancelled:
            self._release(m, oid, lots)
        book.stp_cancelled.clear()

    def cancel(self, account: int, m: int, oid: int) -> int:
        """Cancel one resting order of ``account`` on perp book ``m``; return lots cancelled."""
        s = self._resting.get(account, {}).get(m)
        if s is not None:
            s.discard(oid)
        lots = self.books[m].cancel(oid)
        if lots:
            self._release(m, oid, lots)
        return lots

    def cancel_all(self, account: int) -> int:
        """Cancel every resting order of ``account`` (perp and spot); return how many were live."""
        live = 0
        for m, ids in self._resting.pop(account, {}).items():
            book = self.books[m] if m >= 0 else self.spot_books[-m - 1]
            for oid in ids:
                live += book.cancel(oid) > 0
                if m >= 0:
                    self._reserved[m].pop(oid, None)
        self.order_margin.pop(account, None)
        return live

    def spot_limit(
        self, account: int, c: int, side: int, price: int, qty: int, *, tif: int = GTC
    ) -> int:
        """Limit order on collateral ``c``'s spot book; return lots filled."""
        book = self.spot_books[c]
        filled = book.limit(side, price, qty, account, tif=tif)
        if book.fills:
            self._settle_spot(c, book.fills)
        if tif == GTC and book.last_id in book:
            self._resting.setdefault(account, {}).setdefault(-c - 1, set()).add(book.last_id)
        return filled

    def spot_cancel(self, account: int, c: int, oid: int) -> int:
        """Cancel one resting order of ``account`` on collateral ``c``'s spot book."""
        s = self._resting.get(account, {}).get(-c - 1)
        if s is not None:
            s.discard(oid)
        return self.spot_books[c].cancel(oid)

    def spot_market(self, account: int, c: int, side: int, qty: int) -> int:
        """Market order on collateral ``c``'s spot book; return lots filled."""
        book = self.spot_books[c]
        filled = book.market(side, qty, account)
        if book.fills:
            self._settle_spot(c, book.fills)
        return filled

    # ----------------------------------------------------------- settlement
    def _settle_perp(self, m: int, fills: list) -> None:
        """Settle the fills of one incoming order on both sides. Each maker is settled
        fill by fill; the taker's fills are settled as one trade at their average price
        when its position does not change sign on the way and it is not isolated (the
        same entry cost, realized PnL, fees and equity as fill by fill, up to float
        rounding: average-cost accounting is linear in the fills). With the compiled
        book, the same steps run compiled (``settle_perp`` of ``model/_settle.pxi``)."""
        if COMPILED:
            settle_perp(self, self.books[m], m, fills)
            return
        led = self.ledger
        trade = led.trade
        tick = self.markets[m].tick
        lot = self.markets[m].lot
        maker_rate, taker_rate = self.fees.maker, self.fees.taker
        forced = self.forced
        rows = self.trade_rows
        reserved = self._reserved[m]
        book = self.books[m]
        step = self.step
        taker, side = fills[0][3], fills[0][6]
        total = sum(f[5] for f in fills)
        p0 = led.pos[m, taker]
        whole = (
            len(fills) > 1 and led.mode[taker] != ISOLATED and (p0 * side >= 0 or total <= abs(p0))
        )
        value = 0.0  # Σ qty × price of the taker's fills
        taker_fees = 0.0
        # The per-market totals are read once and added to fill by fill as Python
        # floats (the same sums in the same order as adding to the arrays each fill).
        informed = taker in self.informed
        flows = self.informed_flow if informed else self.flow
        volume, lots_traded, flow = self.volume.item(m), self.lots_traded.item(m), flows.item(m)
        fee_pool = self.fee_pool
        om = self.order_margin
        for moid, maker, _toid, _taker, ticks, qty, _side in fills:
            price = ticks * tick
            notional = qty * lot * price
            if reserved:
                r = reserved.get(moid)
                if r is not None:
                    left = om[maker] - r[1] * qty
                    om[maker] = left if left > 0 else 0.0
                    if moid not in book:
                        del reserved[moid]
            maker_fee = maker_rate * notional
            taker_fee = 0.0 if forced else taker_rate * notional
            trade(maker, m, -side * qty, price, maker_fee)
            if whole:
                value += qty * price
                taker_fees += taker_fee
            else:
                trade(taker, m, side * qty, price, taker_fee)
            fee_pool += maker_fee + taker_fee
            rows.append((step, m, price, qty, maker, taker, side, forced))
            volume += notional
            lots_traded += qty
            flow += side * notional
        self.fee_pool = fee_pool
        self.volume[m] = volume
        self.lots_traded[m] = lots_traded
        flows[m] = flow
        if whole:
            trade(taker, m, side * total, value / total, taker_fees)
        fills.clear()

    def _settle_spot(self, c: int, fills: list) -> None:
        spec = self.collaterals[c]
        move = self.ledger.move_collateral
        for _moid, maker, _toid, taker, ticks, qty, side in fills:
            units = qty * spec.lot
            price = ticks * spec.tick
            if side == 1:  # taker buys the token from the maker
                move(maker, taker, c, units, price)
            else:
                move(taker, maker, c, units, price)
        fills.clear()

    def transfer_position(self, src: int, dst: int, m: int, qty: int, price: float) -> None:
        """Move ``qty`` lots (signed, from ``src``'s point of view: the amount ``src``
        gives up) of market ``m`` from ``src`` to ``dst`` at ``price``, both sides settled.

        Used for backstop takeovers and ADL, which happen off the book.
        """
        self.ledger.trade(src, m, -qty, price)
        self.ledger.trade(dst, m, qty, price)
        self.trade_rows.append(
            (self.step, m, price, abs(qty), dst, src, -1 if qty > 0 else 1, True)
        )

    # ------------------------------------------------------------- valuation
    def revalue(self) -> Valuation:
        """Revalue every account at the current marks and collateral prices."""
        return self.ledger.revalue(self.marks, self.coll_prices)

    def account_margin(self, account: int) -> tuple[float, float, float]:
        """(equity, MM, IM) of one account at the current marks."""
        return self.ledger.account_margin(account, self.marks, self.coll_prices)

    def available(self, account: int) -> float:
        """Free balance (USD ≥ 0) the account could withdraw or use for new orders:
        cross and portfolio margin, equity − initial margin − open-order margin;
        isolated margin, free cash − open-order margin."""
        led = self.ledger
        if led.mode[account] == ISOLATED:
            free = float(led.cash[account])
        else:
            eq, _, im = self.account_margin(account)
            free = eq - im
        return max(free - self.order_margin.get(account, 0.0), 0.0)

    def vault_nav(self) -> float:
        """The backstop vault's NAV (its account's equity), 0 without a vault."""
        if self.vault is None:
            return 0.0
        return self.account_margin(self.vault.account)[0]

    def clear_pools(self) -> dict[str, float]:
        """Clear the pool network (Eisenberg–Noe) and reprice pool-backed collateral.

        The synthetic-dollar pool owes its token holders face value (1 USD a token); its
        assets are its reserves and its stake in the vault, worth that share of the
        vault's NAV (vault shares are equity: limited liability, never below 0).
        Returns the recovery rate of the pool's liabilities (1 when solvent).
        """
        if self.usdx is None:
            return self.pool_recovery
        nav = max(self.vault_nav(), 0.0)
        vault = self.vault
        usdx = self.usdx
        stake = 0.0
        if vault is not None and vault.total_shares > 0 and usdx.vault_shares > 0:
            stake = nav * usdx.vault_shares / vault.total_shares
        net = self.network
        net.set_debt("usdx", "usdx_holders", usdx.supply)
        _, recovery = net.clear({"usdx": usdx.reserves + stake})
        rec = float(recovery[net.index["usdx"]])
        self.pool_recovery = {"usdx": rec}
        return self.pool_recovery

    def update_collateral_prices(self) -> np.ndarray:
        """Price each collateral by its source: index, own spot book or pool NAV.

        A book-priced collateral takes the mid; when its book is one-sided it takes the
        rule its spec names (``one_sided``): the last trade, or the conversion ratio
        (the pool's redemption value, as Binance priced USDe, wBETH and BNSOL after
        10 October 2025).
        """
        for c, spec in enumerate(self.collaterals):
            if spec.price_source == "index":
                self.coll_prices[c] = self.coll_index[c]
            elif spec.price_source == "book":
                book = self.spot_books[c]
                mid = book.mid
                if mid is not None:
                    self.coll_prices[c] = mid * spec.tick
                elif spec.one_sided == "conversion":
                    self.coll_prices[c] = self.redemption_value(c)
                elif book.last_price is not None:
                    self.coll_prices[c] = book.last_price * spec.tick
            else:
                self.coll_prices[c] = (
                    self.pool_recovery.get("usdx", 1.0) if c == self.usdx_index else 1.0
                )
        self.ledger.touch()
        return self.coll_prices

    def redemption_value(self, c: int) -> float:
        """USD a token of collateral ``c`` redeems for at its pool: peg × recovery rate
        (1 unless the pool is short of assets)."""
        peg = self.collaterals[c].peg
        rec = self.pool_recovery.get("usdx", 1.0) if c == self.usdx_index else 1.0
        return peg * rec

    def redeem(self, account: int, c: int, units: float, fee: float) -> float:
        """``account`` hands ``units`` tokens of the synthetic dollar back to its pool
        and gets their redemption value less ``fee`` in cash from the pool's reserves
        (the mint-and-redeem channel of USDe-like tokens); return the USD paid.
        :meth:`escrow` then :meth:`settle_redemption` do the same with a delay."""
        return self.settle_redemption(account, c, self.escrow(account, c, units), fee)

    def escrow(self, account: int, c: int, units: float) -> float:
        """Take ``units`` tokens out of ``account`` for a redemption that settles later
        (they stay in the pool's supply until then); return the units taken."""
        led = self.ledger
        units = max(0.0, min(units, float(led.coll[c, account])))
        led.coll[c, account] -= units
        led.version[account] += 1
        return units

    def settle_redemption(self, account: int, c: int, units: float, fee: float) -> float:
        """Pay escrowed ``units`` at the redemption value less ``fee`` from the pool's
        reserves (at most what it holds); the tokens leave the supply. Return USD paid."""
        if units <= 0:
            return 0.0
        pay = min(units * self.redemption_value(c) * (1 - fee), self.usdx.reserves)
        self.ledger.cash[account] += pay
        self.usdx.supply -= units
        self.usdx.reserves -= pay
        self.ledger.version[account] += 1
        return pay

    def mint(self, account: int, c: int, units: float, fee: float) -> float:
        """``account`` pays the peg plus ``fee`` per token into the pool's reserves and
        receives ``units`` new tokens; return the USD paid."""
        led = self.ledger
        pay = units * self.redemption_value(c) * (1 + fee)
        if units <= 0 or pay > float(led.cash[account]):
            return 0.0
        led.cash[account] -= pay
        led.coll[c, account] += units
        self.usdx.supply += units
        self.usdx.reserves += pay
        led.version[account] += 1
        return pay

    # ----------------------------------------------------------- accounting
    def fund_equity(self) -> float:
        """The insurance fund's equity: its cash and the positions it warehouses at mark."""
        return self.account_margin(self.insurance.account)[0]

    def fund_free_equity(self) -> float:
        """The fund's equity beyond the carrying margin of the positions it holds (their
        worst loss over the stress grid, :meth:`Ledger.stress_loss`): what it can pay
        out or use to take over more (it is exhausted at its floor)."""
        f = self.insurance.account
        eq = self.account_margin(f)[0]
        return eq - self.ledger.stress_loss(f, self._marks)

    def write_off(self, account: int, amount: float) -> None:
        """Book ``amount`` USD of ``account``'s negative balance as bad debt: the
        exchange forgives it, so the account is back at zero and the loss is on record."""
        if amount <= 0:
            return
        self.ledger.cash[account] += amount
        self.ledger.touch()
        self.ledger.bad_debt_booked[account] += amount
        self.bad_debt += amount

    def money(self) -> float:
        """All USD in the system: accounts (the pools' accounts too), fee pool, pool reserves."""
        reserves = self.usdx.reserves if self.usdx is not None else 0.0
        return self.ledger.money() + self.fee_pool + reserves

    def external(self) -> float:
        """All USD ever put in from outside (deposits and pool seeds, net of withdrawals,
        and the net of transfers from and to the owners' accounts on other venues)."""
        return self.ledger.deposits + self.seeded + self.transfers_net

    def transfer_out(self, account: int, amount: float) -> None:
        """Collateral leaves ``account`` for another venue (a treasury's transfer)."""
        self.ledger.cash[account] -= amount
        self.ledger.version[account] += 1
        self.transfers_net -= amount

    def transfer_in(self, account: int, amount: float) -> None:
        """Collateral from another venue lands in ``account``."""
        self.ledger.cash[account] += amount
        self.ledger.version[account] += 1
        self.transfers_net += amount

    def conservation_error(self) -> float:
        """Double-entry check, ``money() − bad debt − external()``: zero up to float
        rounding when every transfer has two sides (an identity of the flows)."""
        return self.money() - self.bad_debt - self.external()

    def state_error(self, val: Valuation | None = None) -> float:
        """Reconciliation from state: Σ over all accounts of equity at mark (negative
        ones included) − their collateral tokens' value + fee pool + pool reserves −
        booked bad debt − external money. Unlike :meth:`conservation_error` it reads
        the valuation every risk decision uses, so a position without its
        counterparty or a balance the valuation misses shows up here."""
        val = val if val is not None else self.revalue()
        reserves = self.usdx.reserves if self.usdx is not None else 0.0
        equity = float(val.equity.sum()) - float(
            self.ledger.collateral_value(self.coll_prices).sum()
        )
        return equity + self.fee_pool + reserves - self.bad_debt - self.external()

    def unbooked_negative_equity(self, val: Valuation) -> float:
        """Σ of the negative equity of all accounts not yet booked (USD, ≥ 0); a spot
        venue's custody account (the outside world's side of deposited units, short
        them) is not a client and is left out."""
        eq = val.equity
        if self.custody >= 0 and self.custody < len(eq) and eq[self.custody] < 0:
            eq = eq.copy()
            eq[self.custody] = 0.0
        return float(-eq[eq < 0].sum()) + 0.0  # + 0.0: 0.0, never −0.0, when none

    def trades_since(self, first: int) -> list[tuple]:
        """The trade rows from number ``first`` on (``first`` at or after the last
        compaction: a number read from :attr:`n_trades` during the current step)."""
        return self.trade_rows[first - self._trades_compacted :]

    def compact_trades(self, *, at_least: int = 65_536) -> None:
        """Move the trade rows kept as tuples into a compact numpy chunk (45 bytes a
        trade instead of ~200) once there are ``at_least`` of them; the model calls it
        between steps, so :meth:`trades_since` of the current step is never affected."""
        rows = self.trade_rows
        if len(rows) < at_least:
            return
        self._trade_chunks.append(np.array(rows, dtype=TRADE_DTYPE))
        self._trades_compacted += len(rows)
        self.trade_rows = []

    def trades_frame(self) -> pd.DataFrame:
        """Every fill and off-book transfer as a DataFrame."""
        parts = [*self._trade_chunks, np.array(self.trade_rows, dtype=TRADE_DTYPE)]
        df = pd.DataFrame(np.concatenate(parts))
        return df.astype(
            {
                "step": "int64",
                "market": "int64",
                "price": "float64",
                "qty": "int64",
                "maker": "int64",
                "taker": "int64",
                "side": "int64",
                "forced": "bool",
            }
        )

    @property
    def n_trades(self) -> int:
        """Number of trades recorded so far."""
        return self._trades_compacted + len(self.trade_rows)
