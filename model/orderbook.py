"""Continuous double auction limit order book with price-time priority.

Prices are integer ticks and sizes integer lots; the :class:`~model.markets.Market`
converts to USD. Each price level is a FIFO queue (``collections.deque``); the best
bid and ask are cached so reading them is O(1); a heap of level prices per side
finds the next best level when one empties. Cancel by id is O(1): the order is
zeroed in place and skipped when the matching loop reaches it (lazy deletion),
and the level's resting total is kept in a dict so depth queries never walk the
queues.

Matching follows the rules common to every continuous venue (e.g. CME Globex
FIFO, Binance spot/futures): an incoming order trades against the best opposite
level, oldest order first, at the resting order's price, until it is filled or
its limit price is reached. Self-trade prevention cancels the resting order
("cancel maker", the default mode on Binance and Bybit).

The book is compiled when the package is built with a C++ compiler: ``model/_book.pyx``
keeps these rules with its state in C++ containers (issue #24's first compiled stage),
and :class:`OrderBook` is then that class; the exchange's order path on it is compiled
beside it (order entry, the makers' ladder updates and settlement: ``model/_entry.pxi``,
``_ladder.pxi``, ``_settle.pxi``), and so are the makers' and noise traders' rules
(``_maker.pxi``, ``_noise.pxi``; :mod:`.twins`). :class:`PyOrderBook`,
the class written here, is its twin: the book when the compiled one is not built or
``CROSSMARGIN_PURE_PYTHON=1`` is set, and the reference ``tests/test_orderbook.py``
holds it to (the same fills, queues, counters and errors after every order).
"""

from __future__ import annotations

import contextlib
import glob
import os
import warnings
from bisect import bisect_right
from collections import deque
from heapq import heappop, heappush
from numbers import Integral

__all__ = [
    "BUY",
    "COMPILED",
    "GTC",
    "IOC",
    "POST_ONLY",
    "SELL",
    "OrderBook",
    "OrderError",
    "PyOrderBook",
]

BUY = 1
SELL = -1

GTC = 0
IOC = 1
POST_ONLY = 2

# An order is a list [oid, owner, side, price, qty]: lists mutate in place and
# index faster than attribute lookups, which matters in the matching loop.
_OID, _OWNER, _SIDE, _PRICE, _QTY = range(5)
_NO_BID = 0
_NO_ASK = 1 << 62


class OrderError(ValueError):
    """An order that the book refuses: the message names the field and reason."""


def _validated(price, qty) -> tuple[int, int]:
    """Coerce integral price/qty to int or raise an :class:`OrderError` naming the field."""
    for name, value, unit in (("price", price, "ticks"), ("qty", qty, "lots")):
        if not isinstance(value, Integral) or isinstance(value, bool):
            raise OrderError(f"{name}: {value!r} is not an integer number of {unit}")
        if value <= 0:
            raise OrderError(f"{name}: must be > 0 {unit}, got {value}")
    return int(price), int(qty)


class OrderBook:
    """One market's limit order book.

    Fills are appended to :attr:`fills` as tuples
    ``(maker_oid, maker_owner, taker_oid, taker_owner, price, qty, aggressor_side)``;
    callers read the new tail after each submission (or call :meth:`drain_fills`).

    Args:
        stp: Self-trade prevention. When true, an incoming order that would
            match a resting order of the same owner cancels the resting order.
    """

    __slots__ = (
        "_ask_heap",
        "_ask_qty",
        "_asks",
        "_best_ask",
        "_best_bid",
        "_bid_heap",
        "_bid_qty",
        "_bids",
        "_next_id",
        "_orders",
        "fills",
        "last_id",
        "last_price",
        "noop_cancels",
        "rejected_post_only",
        "stp",
        "stp_cancelled",
        "stp_cancels",
    )

    def __init__(self, *, stp: bool = True) -> None:
        self.stp = stp
        self._bids: dict[int, deque] = {}
        self._asks: dict[int, deque] = {}
        self._bid_qty: dict[int, int] = {}
        self._ask_qty: dict[int, int] = {}
        self._bid_heap: list[int] = []  # negated prices
        self._ask_heap: list[int] = []
        self._orders: dict[int, list] = {}
        self._best_bid = _NO_BID  # sentinels keep the hot path free of None checks
        self._best_ask = _NO_ASK
        self.last_price: int | None = None
        self.fills: list[tuple] = []
        self._next_id = 1
        self.last_id = 0
        self.noop_cancels = 0
        self.stp_cancels = 0
        self.stp_cancelled: list[tuple[int, int]] = []  # (oid, qty) cancelled by STP
        self.rejected_post_only = 0

    # ------------------------------------------------------------------ orders
    def limit(
        self,
        side: int,
        price: int,
        qty: int,
        owner: int = -1,
        *,
        oid: int | None = None,
        tif: int = GTC,
    ) -> int:
        """Submit a limit order; return the quantity filled on arrival.

        Args:
            side: ``BUY`` (1) or ``SELL`` (-1).
            price: Limit price in integer ticks (> 0).
            qty: Size in integer lots (> 0).
            owner: Account id of the submitter (for fills and self-trade prevention).
            oid: Order id; when omitted the book assigns the next free id and
                stores it in :attr:`last_id`.
            tif: ``GTC`` rests the remainder, ``IOC`` discards it, ``POST_ONLY``
                rejects the order (returns 0, counted) if it would take liquidity.
        """
        if price.__class__ is not int or qty.__class__ is not int or qty <= 0 or price <= 0:
            price, qty = _validated(price, qty)
        if oid is None:
            oid = self.last_id = self._next_id
            self._next_id = oid + 1
        elif oid in self._orders:
            raise OrderError(f"id: order {oid} is already resting")
        elif oid >= self._next_id:
            self._next_id = oid + 1
        filled = 0
        if side == 1:
            if self._best_ask <= price:
                if tif == POST_ONLY:
                    self.rejected_post_only += 1
                    return 0
                filled = self._match(1, price, qty, owner, oid)
                qty -= filled
                if qty == 0 or tif == IOC:
                    return filled
            elif tif == IOC:
                return 0
            order = [oid, owner, 1, price, qty]
            level = self._bids.get(price)
            if level is None:
                self._bids[price] = deque((order,))
                self._bid_qty[price] = qty
                heappush(self._bid_heap, -price)
                if price > self._best_bid:
                    self._best_bid = price
            else:
                level.append(order)
                self._bid_qty[price] += qty
        elif side == -1:
            if self._best_bid >= price:
                if tif == POST_ONLY:
                    self.rejected_post_only += 1
                    return 0
                filled = self._match(-1, price, qty, owner, oid)
                qty -= filled
                if qty == 0 or tif == IOC:
                    return filled
            elif tif == IOC:
                return 0
            order = [oid, owner, -1, price, qty]
            level = self._asks.get(price)
            if level is None:
                self._asks[price] = deque((order,))
                self._ask_qty[price] = qty
                heappush(self._ask_heap, price)
                if price < self._best_ask:
                    self._best_ask = price
            else:
                level.append(order)
                self._ask_qty[price] += qty
        else:
            raise OrderError(f"side: must be 1 (buy) or -1 (sell), got {side!r}")
        self._orders[oid] = order
        return filled

    def post(self, side: int, price: int, qty: int, owner: int) -> int:
        """Rest a post-only order the caller has found not to cross; return its id.

        The same effect as :meth:`limit` with ``tif=POST_ONLY`` for an order that does
        not take liquidity (ids, queue place, level totals), without its checks:
        ``price`` and ``qty`` are Python ints > 0 and ``side`` is ``BUY`` or ``SELL``,
        and the caller has checked the opposite best (a market maker's ladder, whose
        every order passes these checks one by one before it is posted).

        The resting code is :meth:`limit`'s, written out again on purpose: one shared
        method cost every limit order a call, 6.7% more instructions on
        ``benchmarks/orderbook.py``'s stream; ``tests/test_orderbook.py`` holds the two
        copies to the same result.

        Examples:
            >>> b = OrderBook()
            >>> b.post(BUY, 99, 2, owner=7), b.post(BUY, 99, 1, owner=8), b.best_bid
            (1, 2, 99)
        """
        oid = self.last_id = self._next_id
        self._next_id = oid + 1
        order = [oid, owner, side, price, qty]
        if side == 1:
            level = self._bids.get(price)
            if level is None:
                self._bids[price] = deque((order,))
                self._bid_qty[price] = qty
                heappush(self._bid_heap, -price)
                if price > self._best_bid:
                    self._best_bid = price
            else:
                level.append(order)
                self._bid_qty[price] += qty
        else:
            level = self._asks.get(price)
            if level is None:
                self._asks[price] = deque((order,))
                self._ask_qty[price] = qty
                heappush(self._ask_heap, price)
                if price < self._best_ask:
                    self._best_ask = price
            else:
                level.append(order)
                self._ask_qty[price] += qty
        self._orders[oid] = order
        return oid

    def market(self, side: int, qty: int, owner: int = -1, *, oid: int | None = None) -> int:
        """Submit a market order (IOC at any price); return the quantity filled."""
        if qty.__class__ is not int or qty <= 0:
            _, qty = _validated(1, qty)
        if side != 1 and side != -1:
            raise OrderError(f"side: must be 1 (buy) or -1 (sell), got {side!r}")
        if oid is None:
            oid = self._next_id
            self._next_id = oid + 1
        self.last_id = oid
        return self._match(side, _NO_ASK - 1 if side == 1 else 1, qty, owner, oid)

    def cancel(self, oid: int) -> int:
        """Cancel a resting order; return the cancelled quantity (0 = counted no-op)."""
        order = self._orders.pop(oid, None)
        if order is None:
            self.noop_cancels += 1
            return 0
        qty = order[_QTY]
        order[_QTY] = 0
        self._remove_qty(order[_SIDE], order[_PRICE], qty)
        return qty

    def reduce(self, oid: int, new_qty: int) -> bool:
        """Reduce a resting order's size in place, keeping its queue priority.

        Returns False (counted no-op) when the id is not resting. Raises when
        ``new_qty`` is not smaller than the current size or is negative; a new
        size of 0 cancels.
        """
        order = self._orders.get(oid)
        if order is None:
            self.noop_cancels += 1
            return False
        if new_qty < 0 or new_qty >= order[_QTY]:
            raise OrderError(f"qty: reduce must go below the resting {order[_QTY]}, got {new_qty}")
        if new_qty == 0:
            self.cancel(oid)
            return True
        delta = order[_QTY] - new_qty
        order[_QTY] = new_qty
        if order[_SIDE] == 1:
            self._bid_qty[order[_PRICE]] -= delta
        else:
            self._ask_qty[order[_PRICE]] -= delta
        return True

    # ---------------------------------------------------------------- matching
    def _match(self, side: int, limit: int, qty: int, owner: int, oid: int) -> int:
        fills = self.fills
        orders = self._orders
        stp = self.stp
        remaining = qty
        if side == 1:
            levels, level_qty = self._asks, self._ask_qty
            while remaining:
                price = self._best_ask
                if price > limit:
                    break
                queue = levels[price]
                lq = level_qty[price]
                while remaining and queue:
                    resting = queue[0]
                    rq = resting[4]
                    if rq == 0:
                        queue.popleft()
                        continue
                    if stp and resting[1] == owner:
                        queue.popleft()
                        del orders[resting[0]]
                        lq -= rq
                        self.stp_cancels += 1
                        self.stp_cancelled.append((resting[0], rq))
                        continue
                    if rq <= remaining:
                        queue.popleft()
                        del orders[resting[0]]
                        trade = rq
                    else:
                        resting[4] = rq - remaining
                        trade = remaining
                    remaining -= trade
                    lq -= trade
                    fills.append((resting[0], resting[1], oid, owner, price, trade, 1))
                if lq:
                    level_qty[price] = lq
                else:
                    del levels[price], level_qty[price]
                    self._best_ask = self._next_ask()
                self.last_price = price
        else:
            levels, level_qty = self._bids, self._bid_qty
            while remaining:
                price = self._best_bid
                if price < limit:
                    break
                queue = levels[price]
                lq = level_qty[price]
                while remaining and queue:
                    resting = queue[0]
                    rq = resting[4]
                    if rq == 0:
                        queue.popleft()
                        continue
                    if stp and resting[1] == owner:
                        queue.popleft()
                        del orders[resting[0]]
                        lq -= rq
                        self.stp_cancels += 1
                        self.stp_cancelled.append((resting[0], rq))
                        continue
                    if rq <= remaining:
                        queue.popleft()
                        del orders[resting[0]]
                        trade = rq
                    else:
                        resting[4] = rq - remaining
                        trade = remaining
                    remaining -= trade
                    lq -= trade
                    fills.append((resting[0], resting[1], oid, owner, price, trade, -1))
                if lq:
                    level_qty[price] = lq
                else:
                    del levels[price], level_qty[price]
                    self._best_bid = self._next_bid()
                self.last_price = price
        return qty - remaining

    def _remove_qty(self, side: int, price: int, qty: int) -> None:
        if side == 1:
            left = self._bid_qty[price] - qty
            if left:
                self._bid_qty[price] = left
            else:
                del self._bids[price], self._bid_qty[price]
                if price == self._best_bid:
                    self._best_bid = self._next_bid()
        else:
            left = self._ask_qty[price] - qty
            if left:
                self._ask_qty[price] = left
            else:
                del self._asks[price], self._ask_qty[price]
                if price == self._best_ask:
                    self._best_ask = self._next_ask()

    def _next_bid(self) -> int:
        heap, levels = self._bid_heap, self._bids
        while heap:
            price = -heap[0]
            if price in levels:
                return price
            heappop(heap)
        return _NO_BID

    def _next_ask(self) -> int:
        heap, levels = self._ask_heap, self._asks
        while heap:
            price = heap[0]
            if price in levels:
                return price
            heappop(heap)
        return _NO_ASK

    @property
    def best_bid(self) -> int | None:
        """Best bid in ticks, or None when there are no bids (O(1))."""
        return None if self._best_bid == _NO_BID else self._best_bid

    @property
    def best_ask(self) -> int | None:
        """Best ask in ticks, or None when there are no asks (O(1))."""
        return None if self._best_ask == _NO_ASK else self._best_ask

    # ----------------------------------------------------------------- queries
    def drain_fills(self) -> list[tuple]:
        """Return and clear the fills recorded since the last drain."""
        fills = self.fills
        self.fills = []
        return fills

    def fill_cost(self, side: int, qty: int, limit: int) -> tuple[int, int]:
        """What an incoming order of ``qty`` lots limited at ``limit`` ticks would take
        from the book now: ``(lots, Σ lots × price in ticks)``, without trading.

        Examples:
            >>> b = OrderBook()
            >>> _ = b.limit(SELL, 101, 2, owner=1); _ = b.limit(SELL, 103, 5, owner=1)
            >>> b.fill_cost(BUY, 4, 110)
            (4, 408)
        """
        if side == 1:
            best, levels = self._best_ask, self._ask_qty
            if best > limit:
                return 0, 0
            if levels[best] >= qty:
                return qty, qty * best
            heap, sign = self._ask_heap.copy(), 1
        else:
            best, levels = self._best_bid, self._bid_qty
            if best < limit:
                return 0, 0
            if levels[best] >= qty:
                return qty, qty * best
            heap, sign = self._bid_heap.copy(), -1
        # Walk the levels best first by popping a copy of the side's price heap (a copy
        # is one C-level list copy; only the levels the order reaches are popped).
        lots = cost = 0
        last = None
        while heap and lots < qty:
            price = sign * heappop(heap)
            if price == last or price not in levels:
                continue  # a stale heap entry (the level emptied, or pushed twice)
            last = price
            if (price > limit) if side == 1 else (price < limit):
                break
            take = min(qty - lots, levels[price])
            lots += take
            cost += take * price
        return lots, cost

    def __contains__(self, oid: int) -> bool:
        return oid in self._orders

    def order(self, oid: int) -> tuple[int, int, int, int] | None:
        """``(owner, side, price, qty)`` of a resting order, or None."""
        o = self._orders.get(oid)
        return None if o is None else (o[_OWNER], o[_SIDE], o[_PRICE], o[_QTY])

    @property
    def orders_submitted(self) -> int:
        """Orders submitted to this book so far (limit and market): its event clock."""
        return self._next_id - 1

    @property
    def n_orders(self) -> int:
        """Number of resting orders."""
        return len(self._orders)

    @property
    def mid(self) -> float | None:
        """Mid price in ticks, or None when either side is empty."""
        if self.best_bid is None or self.best_ask is None:
            return None
        return (self.best_bid + self.best_ask) / 2

    @property
    def spread(self) -> int | None:
        """Best ask minus best bid in ticks, or None when either side is empty."""
        if self.best_bid is None or self.best_ask is None:
            return None
        return self.best_ask - self.best_bid

    def total_qty(self, side: int) -> int:
        """Total resting size on one side."""
        return sum((self._bid_qty if side == BUY else self._ask_qty).values())

    def level_qty(self, side: int, price: int) -> int:
        """Resting size at one price level."""
        return (self._bid_qty if side == BUY else self._ask_qty).get(price, 0)

    def top(self, n: int = 10) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The best ``n`` levels per side as ``(price, qty)``, best first."""
        bids = sorted(self._bid_qty.items(), reverse=True)[:n]
        asks = sorted(self._ask_qty.items())[:n]
        return bids, asks

    def depth_within(self, bps: float, *, reference: float | None = None) -> tuple[int, int]:
        """Cumulative resting size within ``bps`` basis points of the mid (or ``reference``).

        Returns ``(bid_qty, ask_qty)``; ``(0, 0)`` when there is no reference price.
        """
        ref = self.mid if reference is None else reference
        if ref is None:
            return 0, 0
        lo = ref * (1 - bps / 1e4)
        hi = ref * (1 + bps / 1e4)
        bid = sum(q for p, q in self._bid_qty.items() if p >= lo)
        ask = sum(q for p, q in self._ask_qty.items() if p <= hi)
        return bid, ask

    def depth_profile(self, edges_bps: list[float], *, reference: float | None = None) -> list[int]:
        """Resting size in bands of distance from the mid (or ``reference``).

        ``edges_bps`` are ascending band edges in basis points, negative below the mid
        (bids) and positive above it (asks); returns one total per band.
        """
        ref = self.mid if reference is None else reference
        out = [0] * (len(edges_bps) - 1)
        if ref is None:
            return out
        edges = [ref * (1 + e / 1e4) for e in edges_bps]
        for qty_map in (self._bid_qty, self._ask_qty):
            for p, q in qty_map.items():
                k = bisect_right(edges, p) - 1
                if 0 <= k < len(out):
                    out[k] += q
        return out

    def depth_summary(
        self, edges_bps: list[float], within_bps: tuple[float, ...]
    ) -> tuple[list[int], list[int]]:
        """:meth:`depth_profile` and the total of :meth:`depth_within` (bids + asks) for
        each of ``within_bps``, around the mid.

        Examples:
            >>> b = OrderBook()
            >>> _ = b.limit(BUY, 99, 2); _ = b.limit(SELL, 101, 3); _ = b.limit(SELL, 120, 1)
            >>> b.depth_summary([-500, 0, 500], (100, 2000))
            ([2, 3], [5, 6])
        """
        ref = self.mid
        nb = len(edges_bps) - 1
        out = [0] * nb
        if ref is None:
            return out, [0] * len(within_bps)
        edges = [ref * (1 + e / 1e4) for e in edges_bps]
        bids, asks = self._bid_qty, self._ask_qty
        for levels in (bids, asks):
            for p, q in levels.items():
                k = bisect_right(edges, p) - 1
                if 0 <= k < nb:
                    out[k] += q
        within = []
        for w in within_bps:
            lo, hi = ref * (1 - w / 1e4), ref * (1 + w / 1e4)
            within.append(
                sum([q for p, q in bids.items() if p >= lo])
                + sum([q for p, q in asks.items() if p <= hi])
            )
        return out, within

    def snapshot(self) -> dict:
        """A plain-data picture of the book: every level, best first, and counters."""
        bids, asks = self.top(len(self._bid_qty) + len(self._ask_qty))
        return {
            "best_bid": self.best_bid,
            "best_ask": self.best_ask,
            "last_price": self.last_price,
            "bids": bids,
            "asks": asks,
            "orders": len(self._orders),
        }

    def queues(self) -> list[tuple[int, int, int, int, int]]:
        """Every resting order, level by level, best first, oldest first in a level:
        ``[(oid, owner, side, price, qty), ...]`` (for tests and copies).

        Examples:
            >>> b = OrderBook()
            >>> _ = b.limit(BUY, 99, 2, 7); _ = b.limit(BUY, 100, 1, 8); _ = b.limit(SELL, 101, 3, 9)
            >>> b.queues()
            [(2, 8, 1, 100, 1), (1, 7, 1, 99, 2), (3, 9, -1, 101, 3)]
        """
        out = []
        for levels, desc in ((self._bids, True), (self._asks, False)):
            for price in sorted(levels, reverse=desc):
                out += [tuple(o) for o in levels[price] if o[_QTY]]
        return out

    def orders_of(self, owner: int) -> list[int]:
        """Ids of the resting orders of one owner (a scan; not for the hot path)."""
        return [oid for oid, o in self._orders.items() if o[_OWNER] == owner]

    def check(self) -> None:
        """Assert the book's internal invariants (for tests): not crossed, totals agree."""
        if self.best_bid is not None and self.best_ask is not None:
            assert self.best_bid < self.best_ask, "book is crossed"
        for levels, lqty, side in ((self._bids, self._bid_qty, 1), (self._asks, self._ask_qty, -1)):
            assert set(levels) == set(lqty)
            for price, queue in levels.items():
                live = sum(o[_QTY] for o in queue)
                assert live == lqty[price] > 0, (price, live, lqty[price])
                assert all(o[_SIDE] == side and o[_PRICE] == price for o in queue)
        assert self.best_bid == (max(self._bids) if self._bids else None)
        assert self.best_ask == (min(self._asks) if self._asks else None)
        live = sum(
            1 for levels in (self._bids, self._asks) for q in levels.values() for o in q if o[_QTY]
        )
        assert live == len(self._orders)


PyOrderBook = OrderBook
"""The book in Python: the twin the compiled book (``model/_book.pyx``) is tested
against, and the book itself when the compiled one is not built or
``CROSSMARGIN_PURE_PYTHON=1``."""

if os.environ.get("CROSSMARGIN_PURE_PYTHON", "") != "1":
    # the compiled book, the same interface; not built (no compiler at install): Python's
    with contextlib.suppress(ImportError):
        from . import _book
        from ._book import OrderBook

        # its source and the files it includes (none in an installed wheel)
        _here = os.path.dirname(__file__)
        for _source in glob.glob(os.path.join(_here, "_book.pyx")) + sorted(
            glob.glob(os.path.join(_here, "_*.pxi"))
        ):
            if os.path.getmtime(_source) > os.path.getmtime(_book.__file__):
                warnings.warn(
                    f"model/{os.path.basename(_source)} is newer than its build: the compiled "
                    "order book may be stale (make, or pip install -e ., builds it again)",
                    stacklevel=2,
                )

COMPILED: bool = OrderBook is not PyOrderBook
"""Whether :class:`OrderBook` is the compiled book."""
