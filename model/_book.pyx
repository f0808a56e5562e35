# distutils: language = c++
# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=False
"""The limit order book compiled: the rules and interface of
:class:`~crossmargin.model.orderbook.PyOrderBook` (price-time priority as on every
continuous venue, self-trade prevention by cancelling the resting order as on Binance
and Bybit), its state in C++ containers (issue #24, the first stage of a compiled order
path). Prices, sizes and order ids below 2**62 (the Python book takes any int).

Each side's price levels are a ``std::map`` from price in ticks to a level (the best is
its first or last key); a level is a FIFO queue of orders doubly linked through the
order table (a ``std::unordered_map`` from order id to order), so a cancel unlinks its
order at once and an id may be used again once its order is gone, as in the Python
book. Fills, the self-trade prevention list and every counter are the Python objects
the Python book keeps, so callers read both books alike. ``tests/test_orderbook.py`` holds
the two to the same fills, states and errors; ``crossmargin.model.orderbook`` picks this
one when it is built (``CROSSMARGIN_PURE_PYTHON=1`` picks the Python one).

The extension also holds the exchange's order path on this book, in the files it
includes at its end (so they reach the book's C++ state without a Python call): the
market makers' ladder updates (``_ladder.pxi``), settlement in the ledger
(``_settle.pxi``) and order entry (``_entry.pxi``), each the same steps and floats as
the Python code it stands for (``tests/test_compiled.py``).
"""

from bisect import bisect_right
from operator import index

__all__ = [
    "OrderBook",
    "TWINS",
    "Turns",
    "account_totals",
    "entrant_act",
    "exchange_limit",
    "fundamentalist_decide",
    "gather",
    "ladder_cancel",
    "ladder_diff",
    "ladder_post",
    "ladder_post_spot",
    "leveraged_decide",
    "ledger_margin_state",
    "ledger_open_interest",
    "ledger_tier_fix",
    "ledger_trade",
    "ledger_views",
    "maker_act",
    "maker_quote",
    "momentum_decide",
    "noise_execute",
    "numpy_sum",
    "python_sum",
    "settle_perp",
]

TWINS = {
    "Exchange.limit": "e06901e848da",
    "Exchange._admit": "1ef83bb4009a",
    "Exchange._admit_spot": "84a7f472d456",
    "Exchange.market_order": "9edbc55c00eb",
    "Exchange.cancel": "0625b225d8ce",
    "Exchange.requote": "e6be48c948fe",
    "Exchange._requote_spot": "1a71cc3a3153",
    "Exchange._release": "d12c99075078",
    "Exchange._settle_perp": "8f9a8fa550ac",
    "Ledger.trade": "a2a5053c66ef",
    "Ledger._after_fill": "174c0485bad8",
    "Ledger.margin_state": "b252abb4643a",
    "Ledger._epoch_marks": "6fd98d53ee94",
    "Ledger.im_after": "0d65d7a5e0df",
    "Trader.equity": "06c7acf41d96",
    "Trader.position": "f01d57aa020a",
    "Trader.lots": "9a3fa2c2b7b3",
    "MarketMaker._act_rule": "43955f909905",
    "MarketMaker._capital_capacity": "e8ca062e756f",
    "MarketMaker._stopped_out": "568e14b16eca",
    "MarketMaker._pulls": "f882ffdc6f3a",
    "MarketMaker._vol": "b0a01933fc80",
    "MarketMaker._quote_rule": "ea1a7b9a5619",
    "MarketMaker._diff": "fb2c1dd1b345",
    "MarketMaker._pick_off": "8070d90430c6",
    "LiquidityEntrant._entry_rule": "b8cdfcb0ef52",
    "MarketMaker._quote": "756bb4ba660e",
    "NoiseTrader._execute_rule": "9be468d5d24f",
    "Fundamentalist.decide": "ce7969ec2f31",
    "Fundamentalist._decide_rule": "8dd7c1232af1",
    "_room": "6867c71298b6",
    "_lots": "8a27cb94f1a5",
    "MomentumTrader.decide": "2d05795d6ff1",
    "MomentumTrader._decide_rule": "f0f95deaf64a",
    "LeveragedTrader.decide": "93a3576695ee",
    "LeveragedTrader._decide_rule": "56f6d44e7b63",
    "Ledger._tier_fix": "e5dfbca7e87f",
    "Ledger._tier_fix_rule": "c57713f464ce",
    "Ledger.open_interest": "3b712bbc551a",
    "account_totals": "2b9f36312111",
}
"""The SHA-256 (first 12 hex digits) of the source of each Python function this
extension follows, as it was when the compiled code was written to match it
(:mod:`crossmargin.model.twins` compares them on the first model a process builds; a
change runs the Python code). Update an entry only with its compiled twin, after
``tests/test_compiled.py`` passes."""

from cpython.long cimport PyLong_AsLongLongAndOverflow
from cython.operator cimport dereference as deref, preincrement as inc
from libcpp.map cimport map as cmap
from libcpp.unordered_map cimport unordered_map
from libcpp.utility cimport pair
from libcpp.vector cimport vector

from .orderbook import BUY, GTC, IOC, POST_ONLY, OrderError, _validated

cdef long long NO_BID = 0
cdef long long NO_ASK = 1LL << 62
cdef long long NONE = -(1LL << 62)  # no order: the end of a level's queue
cdef long long C_IOC = 1, C_POST_ONLY = 2
assert (IOC, POST_ONLY) == (C_IOC, C_POST_ONLY)


cdef long long EXACT = 1LL << 53  # ints of this size and below convert to a double exactly


cdef inline bint _lt(long long p, double x):
    """``p < x`` as Python compares an int and a float: exactly."""
    if -EXACT <= p <= EXACT:
        return p < x
    return <object>p < <object>x


cdef inline bint _ge(long long p, double x):
    """``p >= x`` as Python compares an int and a float: exactly."""
    if -EXACT <= p <= EXACT:
        return p >= x
    return <object>p >= <object>x


cdef inline bint _le(long long p, double x):
    """``p <= x`` as Python compares an int and a float: exactly."""
    if -EXACT <= p <= EXACT:
        return p <= x
    return <object>p <= <object>x


cdef inline bint _is_id(object oid) except -1:
    """Whether ``oid`` is an int the C++ book can hold as an order id (any other value
    names no resting order: the Python book's look-ups then find nothing too). The int
    is compared in C: beyond a machine int it is no id (a comparison with the bounds
    as Python ints made two of them, a big int each, at every call)."""
    cdef int overflow = 0
    cdef long long v
    if type(oid) is not int:
        try:
            oid = index(oid)  # numpy's integers too; a float or None is no id
        except TypeError:
            return False
    v = PyLong_AsLongLongAndOverflow(oid, &overflow)
    return not overflow and NONE < v < NO_ASK


cdef struct Order:
    long long owner
    long long side
    long long price
    long long qty
    long long prv
    long long nxt
    long long seq  # when it came to rest: the Python book's insertion order


cdef struct Level:
    long long head
    long long tail
    long long total


ctypedef cmap[long long, Level] Side
ctypedef unordered_map[long long, Order] Table


cdef class OrderBook:
    """One market's limit order book (compiled); see
    :class:`crossmargin.model.orderbook.PyOrderBook`.

    Args:
        stp: Self-trade prevention (cancel the resting order of the same owner).
    """

    cdef Table _table
    cdef Side _bid_levels
    cdef Side _ask_levels
    cdef public bint stp
    cdef public long long _best_bid, _best_ask, _next_id, last_id
    cdef public long long noop_cancels, stp_cancels, rejected_post_only
    cdef long long _seq
    cdef public object last_price
    cdef public list fills, stp_cancelled

    def __init__(self, *, stp=True):
        self.stp = stp
        self._best_bid = NO_BID
        self._best_ask = NO_ASK
        self._next_id = 1
        self._seq = 0
        self.last_id = 0
        self.noop_cancels = 0
        self.stp_cancels = 0
        self.rejected_post_only = 0
        self.last_price = None
        self.fills = []
        self.stp_cancelled = []

    # ------------------------------------------------------------------ orders
    cdef void _rest(self, long long oid, long long owner, long long side, long long price,
                    long long qty):
        cdef Side* levels = &self._bid_levels if side == 1 else &self._ask_levels
        cdef Level* lvl
        cdef Order o
        o.owner = owner
        o.side = side
        o.price = price
        o.qty = qty
        o.nxt = NONE
        o.seq = self._seq
        self._seq += 1
        it = levels.find(price)
        if it == levels.end():
            lvl = &deref(levels)[price]
            lvl.head = oid
            lvl.tail = oid
            lvl.total = qty
            o.prv = NONE
            if side == 1:
                if price > self._best_bid:
                    self._best_bid = price
            elif price < self._best_ask:
                self._best_ask = price
        else:
            lvl = &deref(it).second
            o.prv = lvl.tail
            self._table[lvl.tail].nxt = oid
            lvl.tail = oid
            lvl.total += qty
        self._table[oid] = o

    def limit(self, side, price, qty, owner=-1, *, oid=None, tif=GTC):
        """Submit a limit order; return the quantity filled on arrival (as
        :meth:`crossmargin.model.orderbook.PyOrderBook.limit`)."""
        if price.__class__ is not int or qty.__class__ is not int or qty <= 0 or price <= 0:
            price, qty = _validated(price, qty)
        if price >= NO_ASK or qty >= NO_ASK:  # what the C++ book holds (Python's: any int)
            name, value = ("price", price) if price >= NO_ASK else ("qty", qty)
            raise OrderError(f"{name}: must be below 2**62, got {value}")
        cdef long long p = price, q = qty, own = owner, t = tif, i
        if oid is None:
            i = self._next_id
            self.last_id = i
            self._next_id = i + 1
        else:
            if not _is_id(oid):
                raise OrderError(f"id: must be an int within ±2**62, got {oid!r}")
            i = oid
            if self._table.count(i):
                raise OrderError(f"id: order {oid} is already resting")
            if i >= self._next_id:
                self._next_id = i + 1
        return self._place(side, p, q, own, i, t)

    cdef long long _limit(self, long long side, long long p, long long q, long long own,
                          long long t) except -1:
        """:meth:`limit` for a compiled caller: the same checks and steps, a new id."""
        if q <= 0 or p <= 0:
            _validated(p, q)  # raises
        if p >= NO_ASK or q >= NO_ASK:
            name, value = ("price", p) if p >= NO_ASK else ("qty", q)
            raise OrderError(f"{name}: must be below 2**62, got {value}")
        cdef long long i = self._next_id
        self.last_id = i
        self._next_id = i + 1
        return self._place(side, p, q, own, i, t)

    cdef long long _place(self, object side, long long p, long long q, long long own,
                          long long i, long long t) except -1:
        """A checked limit order with id ``i``: matched, then the rest rests (or not, by
        its time in force); the quantity filled."""
        cdef long long filled = 0
        if side == 1:
            if self._best_ask <= p:
                if t == C_POST_ONLY:
                    self.rejected_post_only += 1
                    return 0
                filled = self._match(1, p, q, own, i)
                q -= filled
                if q == 0 or t == C_IOC:
                    return filled
            elif t == C_IOC:
                return 0
            self._rest(i, own, 1, p, q)
        elif side == -1:
            if self._best_bid >= p:
                if t == C_POST_ONLY:
                    self.rejected_post_only += 1
                    return 0
                filled = self._match(-1, p, q, own, i)
                q -= filled
                if q == 0 or t == C_IOC:
                    return filled
            elif t == C_IOC:
                return 0
            self._rest(i, own, -1, p, q)
        else:
            raise OrderError(f"side: must be 1 (buy) or -1 (sell), got {side!r}")
        return filled

    cpdef long long post(self, long long side, long long price, long long qty, long long owner):
        """Rest a post-only order the caller has found not to cross; return its id
        (as :meth:`crossmargin.model.orderbook.PyOrderBook.post`)."""
        cdef long long oid = self._next_id
        self.last_id = oid
        self._next_id = oid + 1
        self._rest(oid, owner, side, price, qty)
        return oid

    def market(self, side, qty, owner=-1, *, oid=None):
        """Submit a market order (IOC at any price); return the quantity filled."""
        if qty.__class__ is not int or qty <= 0:
            _, qty = _validated(1, qty)
        if qty >= NO_ASK:
            raise OrderError(f"qty: must be below 2**62, got {qty}")
        if side != 1 and side != -1:
            raise OrderError(f"side: must be 1 (buy) or -1 (sell), got {side!r}")
        cdef long long i
        if oid is None:
            i = self._next_id
            self._next_id = i + 1
        else:
            if not _is_id(oid):
                raise OrderError(f"id: must be an int within ±2**62, got {oid!r}")
            i = oid
        self.last_id = i
        return self._match(side, NO_ASK - 1 if side == 1 else 1, qty, owner, i)

    cdef long long _unlink(self, long long oid, Order* o):
        """Take a resting order out of its level (the level dropped when it empties,
        the best price moved on); return its quantity."""
        cdef Side* levels = &self._bid_levels if o.side == 1 else &self._ask_levels
        cdef long long q = o.qty, price = o.price, side = o.side
        it = levels.find(price)
        cdef Level* lvl = &deref(it).second
        if o.prv != NONE:
            self._table[o.prv].nxt = o.nxt
        else:
            lvl.head = o.nxt
        if o.nxt != NONE:
            self._table[o.nxt].prv = o.prv
        else:
            lvl.tail = o.prv
        lvl.total -= q
        if lvl.total == 0:
            levels.erase(it)
            if side == 1:
                if price == self._best_bid:
                    self._best_bid = NO_BID if levels.empty() else deref(levels.rbegin()).first
            elif price == self._best_ask:
                self._best_ask = NO_ASK if levels.empty() else deref(levels.begin()).first
        self._table.erase(oid)
        return q

    cpdef long long cancel(self, object oid):
        """Cancel a resting order; return the cancelled quantity (0 = counted no-op)."""
        if not _is_id(oid):
            self.noop_cancels += 1
            return 0
        it = self._table.find(<long long>oid)
        if it == self._table.end():
            self.noop_cancels += 1
            return 0
        return self._unlink(oid, &deref(it).second)

    def reduce(self, oid, new_qty):
        """Reduce a resting order's size in place, keeping its queue priority (as
        :meth:`crossmargin.model.orderbook.PyOrderBook.reduce`)."""
        if not _is_id(oid):
            self.noop_cancels += 1
            return False
        it = self._table.find(<long long>oid)
        if it == self._table.end():
            self.noop_cancels += 1
            return False
        cdef Order* o = &deref(it).second
        if new_qty < 0 or new_qty >= o.qty:
            raise OrderError(f"qty: reduce must go below the resting {o.qty}, got {new_qty}")
        if new_qty == 0:
            self.cancel(oid)
            return True
        cdef long long delta = o.qty - new_qty
        o.qty = new_qty
        cdef Side* levels = &self._bid_levels if o.side == 1 else &self._ask_levels
        cdef Level* lvl = &deref(levels)[o.price]
        lvl.total -= delta
        return True

    # ---------------------------------------------------------------- matching
    cdef long long _match(self, long long side, long long limit, long long qty, long long owner,
                          long long oid) except? -1:
        cdef Side* levels = &self._ask_levels if side == 1 else &self._bid_levels
        cdef list fills = self.fills
        cdef long long remaining = qty, price, h, rq, trade, nx
        cdef Level* lvl
        cdef Order* o
        cdef bint stp = self.stp
        while remaining:
            if levels.empty():
                break
            if side == 1:
                price = deref(levels.begin()).first
                if price > limit:
                    break
                lvl = &deref(levels.begin()).second
            else:
                price = deref(levels.rbegin()).first
                if price < limit:
                    break
                lvl = &deref(levels.rbegin()).second
            h = lvl.head
            while remaining and h != NONE:
                o = &self._table[h]
                rq = o.qty
                nx = o.nxt
                if stp and o.owner == owner:
                    lvl.total -= rq
                    self._table.erase(h)
                    self.stp_cancels += 1
                    self.stp_cancelled.append((h, rq))
                    h = nx
                    continue
                if rq <= remaining:
                    trade = rq
                    fills.append((h, o.owner, oid, owner, price, trade, side))
                    self._table.erase(h)
                    h = nx
                else:
                    o.qty = rq - remaining
                    trade = remaining
                    fills.append((h, o.owner, oid, owner, price, trade, side))
                remaining -= trade
                lvl.total -= trade
            lvl.head = h
            if h != NONE:
                self._table[h].prv = NONE
            if lvl.total == 0:
                levels.erase(price)
            if side == 1:
                self._best_ask = NO_ASK if levels.empty() else deref(levels.begin()).first
            else:
                self._best_bid = NO_BID if levels.empty() else deref(levels.rbegin()).first
            self.last_price = price
        return qty - remaining

    # ----------------------------------------------------------------- queries
    @property
    def best_bid(self):
        """Best bid in ticks, or None when there are no bids (O(1))."""
        return None if self._best_bid == NO_BID else self._best_bid

    @property
    def best_ask(self):
        """Best ask in ticks, or None when there are no asks (O(1))."""
        return None if self._best_ask == NO_ASK else self._best_ask

    def drain_fills(self):
        """Return and clear the fills recorded since the last drain."""
        fills = self.fills
        self.fills = []
        return fills

    cpdef tuple fill_cost(self, long long side, long long qty, long long limit):
        """What an incoming order of ``qty`` lots limited at ``limit`` ticks would take
        from the book now: ``(lots, Σ lots × price in ticks)``, without trading."""
        cdef Side* levels = &self._ask_levels if side == 1 else &self._bid_levels
        cdef long long lots = 0, take, price
        cost = 0  # a Python int, as OrderBook's (no overflow)
        if side == 1:
            it = levels.begin()
            while it != levels.end() and lots < qty:
                price = deref(it).first
                if price > limit:
                    break
                take = min(qty - lots, deref(it).second.total)
                lots += take
                cost += take * price
                inc(it)
        else:
            rit = levels.rbegin()
            while rit != levels.rend() and lots < qty:
                price = deref(rit).first
                if price < limit:
                    break
                take = min(qty - lots, deref(rit).second.total)
                lots += take
                cost += take * price
                inc(rit)
        return lots, cost

    def __contains__(self, oid):
        return _is_id(oid) and self._table.count(<long long>oid) > 0

    def order(self, oid):
        """``(owner, side, price, qty)`` of a resting order, or None."""
        if not _is_id(oid):
            return None
        it = self._table.find(<long long>oid)
        if it == self._table.end():
            return None
        cdef Order* o = &deref(it).second
        return (o.owner, o.side, o.price, o.qty)

    @property
    def orders_submitted(self):
        """Orders submitted to this book so far (limit and market): its event clock."""
        return self._next_id - 1

    @property
    def n_orders(self):
        """Number of resting orders."""
        return self._table.size()

    @property
    def mid(self):
        """Mid price in ticks, or None when either side is empty."""
        if self._best_bid == NO_BID or self._best_ask == NO_ASK:
            return None
        return (self._best_bid + self._best_ask) / 2

    @property
    def spread(self):
        """Best ask minus best bid in ticks, or None when either side is empty."""
        if self._best_bid == NO_BID or self._best_ask == NO_ASK:
            return None
        return self._best_ask - self._best_bid

    cdef list _side(self, long long side):
        """``[(price, qty), ...]`` of one side, best first."""
        cdef list out = []
        if side == BUY:
            rit = self._bid_levels.rbegin()
            while rit != self._bid_levels.rend():
                out.append((deref(rit).first, deref(rit).second.total))
                inc(rit)
        else:
            it = self._ask_levels.begin()
            while it != self._ask_levels.end():
                out.append((deref(it).first, deref(it).second.total))
                inc(it)
        return out

    def total_qty(self, long long side):
        """Total resting size on one side."""
        cdef Side* levels = &self._bid_levels if side == BUY else &self._ask_levels
        total = 0
        it = levels.begin()
        while it != levels.end():
            total += deref(it).second.total
            inc(it)
        return total

    def level_qty(self, long long side, long long price):
        """Resting size at one price level."""
        cdef Side* levels = &self._bid_levels if side == BUY else &self._ask_levels
        it = levels.find(price)
        return 0 if it == levels.end() else deref(it).second.total

    def top(self, n=10):
        """The best ``n`` levels per side as ``(price, qty)``, best first."""
        return self._side(1)[:n], self._side(-1)[:n]

    def depth_within(self, bps, *, reference=None):
        """Cumulative resting size within ``bps`` basis points of the mid (or
        ``reference``): ``(bid_qty, ask_qty)``."""
        ref = self.mid if reference is None else reference
        if ref is None:
            return 0, 0
        lo = ref * (1 - bps / 1e4)
        hi = ref * (1 + bps / 1e4)
        bid = sum(q for p, q in self._side(1) if p >= lo)
        ask = sum(q for p, q in self._side(-1) if p <= hi)
        return bid, ask

    def depth_profile(self, edges_bps, *, reference=None):
        """Resting size in bands of distance from the mid (or ``reference``)."""
        ref = self.mid if reference is None else reference
        out = [0] * (len(edges_bps) - 1)
        if ref is None:
            return out
        edges = [ref * (1 + e / 1e4) for e in edges_bps]
        for side in (1, -1):
            for p, q in self._side(side):
                k = bisect_right(edges, p) - 1
                if 0 <= k < len(out):
                    out[k] += q
        return out

    def depth_summary(self, edges_bps, within_bps):
        """:meth:`depth_profile` and the total of :meth:`depth_within` (bids + asks) for
        each of ``within_bps``, around the mid."""
        ref_o = self.mid
        cdef Py_ssize_t nb = len(edges_bps) - 1, k, lo, hi, mid
        if ref_o is None:
            return [0] * nb, [0] * len(within_bps)
        cdef double ref = ref_o, low, high
        cdef vector[double] edges
        for e in edges_bps:
            edges.push_back(ref * (1 + e / 1e4))
        cdef vector[long long] out
        out.resize(nb if nb > 0 else 0, 0)
        cdef Side* levels
        cdef long long bid_q, ask_q
        cdef int s
        for s in range(2):  # bids, then asks
            levels = &self._bid_levels if s == 0 else &self._ask_levels
            it = levels.begin()
            while it != levels.end():
                lo, hi = 0, <Py_ssize_t>edges.size()
                while lo < hi:  # bisect_right(edges, price), as in the Python book
                    mid = (lo + hi) >> 1
                    if _lt(deref(it).first, edges[mid]):
                        hi = mid
                    else:
                        lo = mid + 1
                k = lo - 1
                if 0 <= k < nb:
                    out[k] += deref(it).second.total
                inc(it)
        within = []
        for w in within_bps:
            low, high = ref * (1 - w / 1e4), ref * (1 + w / 1e4)
            bid_q = ask_q = 0
            it = self._bid_levels.begin()
            while it != self._bid_levels.end():
                if _ge(deref(it).first, low):
                    bid_q += deref(it).second.total
                inc(it)
            it = self._ask_levels.begin()
            while it != self._ask_levels.end():
                if _le(deref(it).first, high):
                    ask_q += deref(it).second.total
                inc(it)
            within.append(bid_q + ask_q)
        return list(out), within

    def snapshot(self):
        """A plain-data picture of the book: every level, best first, and counters."""
        return {
            "best_bid": self.best_bid,
            "best_ask": self.best_ask,
            "last_price": self.last_price,
            "bids": self._side(1),
            "asks": self._side(-1),
            "orders": self._table.size(),
        }

    def queues(self):
        """Every resting order, level by level, best first, oldest first in a level:
        ``[(oid, owner, side, price, qty), ...]`` (for tests and copies)."""
        out = []
        cdef Order* o
        cdef long long h
        for side in (1, -1):
            for price, _ in self._side(side):
                levels = &self._bid_levels if side == 1 else &self._ask_levels
                h = deref(levels)[price].head
                while h != NONE:
                    o = &self._table[h]
                    out.append((h, o.owner, o.side, o.price, o.qty))
                    h = o.nxt
        return out

    def orders_of(self, owner):
        """Ids of the resting orders of one owner, in the order they came to rest (a
        scan; not for the hot path)."""
        cdef long long own = owner
        out = []
        it = self._table.begin()
        while it != self._table.end():
            if deref(it).second.owner == own:
                out.append((deref(it).second.seq, deref(it).first))
            inc(it)
        out.sort()
        return [oid for _, oid in out]

    def check(self):
        """Assert the book's internal invariants (for tests): not crossed, totals agree."""
        if self.best_bid is not None and self.best_ask is not None:
            assert self.best_bid < self.best_ask, "book is crossed"
        live = 0
        queues = self.queues()
        for side in (1, -1):
            for price, total in self._side(side):
                queue = [q for q in queues if q[2] == side and q[3] == price]
                assert sum(q[4] for q in queue) == total > 0, (price, total)
                assert all(q[4] > 0 for q in queue)
                live += len(queue)
        bids, asks = self._side(1), self._side(-1)
        assert self.best_bid == (bids[0][0] if bids else None)
        assert self.best_ask == (asks[0][0] if asks else None)
        assert live == self._table.size()

    # ------------------------------------------------------------------ copies
    def __reduce__(self):
        queues = self.queues()
        state = (
            self.stp, self._next_id, self.last_id, self.last_price, self.noop_cancels,
            self.stp_cancels, self.rejected_post_only, list(self.fills),
            list(self.stp_cancelled), queues, [self._table[q[0]].seq for q in queues],
            self._seq,
        )
        return (_rebuild, state)


def _rebuild(stp, next_id, last_id, last_price, noop, stp_cancels, rejected, fills,
             stp_cancelled, queues, seqs, seq):
    """A book from :meth:`OrderBook.__reduce__`'s state (pickle, ``copy.deepcopy``)."""
    cdef OrderBook book = OrderBook(stp=stp)
    for (oid, owner, side, price, qty), k in zip(queues, seqs):
        book._rest(oid, owner, side, price, qty)
        book._table[oid].seq = k
    book._seq = seq
    book._next_id = next_id
    book.last_id = last_id
    book.last_price = last_price
    book.noop_cancels = noop
    book.stp_cancels = stp_cancels
    book.rejected_post_only = rejected
    book.fills = fills
    book.stp_cancelled = stp_cancelled
    return book


# The market maker's ladder update on this book (issue #24's second stage).
include "_ladder.pxi"

# Settlement of its fills in the ledger (issue #24's third stage).
include "_settle.pxi"

# Order entry on a perp venue (issue #24's fourth stage).
include "_entry.pxi"

# The market makers' quoting rule and a spot venue's ladder (issue #24's fifth stage).
include "_maker.pxi"

# A noise trader's turn (issue #24's sixth stage).
include "_noise.pxi"

# The fundamentalists', momentum traders' and leveraged traders' decisions (issue #24's
# seventh stage).
include "_decide.pxi"

# The turns of a step, the next agents prefetched.
include "_turns.pxi"

# The step record's reductions over accounts.
include "_record.pxi"
