# distutils: language = c++
# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""A limit order book as a Cython extension type: the measuring device of
``benchmarks/cython_book.py`` (issue #24), not the model's book.

Price-time priority as in ``crossmargin.model.orderbook.OrderBook``: each side's levels
in a C++ ``std::map`` keyed by price in ticks (sparse, ordered: the best is the first or
last key), each level a FIFO queue linked through the order table (a ``std::vector``
indexed by order id), a cancelled order zeroed in place and skipped when matching
reaches it (``OrderBook``'s lazy deletion). Fills are Python tuples in ``OrderBook``'s
layout, appended to :attr:`fills`. GTC limit orders with their ids, market orders and
cancels: the events of ``benchmarks/orderbook.py``'s stream; no self-trade prevention.
"""
from libcpp.map cimport map as cmap
from libcpp.vector cimport vector
from cython.operator cimport dereference as deref, preincrement as inc

cdef long long NO_ASK = 1LL << 62

cdef struct Order:
    long long owner
    long long side
    long long price
    long long qty
    long long nxt

cdef struct Level:
    long long head
    long long tail
    long long total

cdef class CythonBook:
    cdef vector[Order] orders
    cdef cmap[long long, Level] bids   # price -> level (best = largest)
    cdef cmap[long long, Level] asks   # best = smallest
    cdef public long long best_bid_, best_ask_, next_id, n_live
    cdef public list fills
    cdef public object last_price

    def __cinit__(self):
        self.orders.resize(1024)
        self.best_bid_ = 0
        self.best_ask_ = NO_ASK
        self.next_id = 1
        self.n_live = 0
        self.fills = []
        self.last_price = None

    cdef inline void _reserve(self, long long oid):
        cdef size_t n = self.orders.size()
        if <size_t>oid >= n:
            while n <= <size_t>oid:
                n *= 2
            self.orders.resize(n)

    cdef long long _match(self, long long side, long long limit, long long qty, long long owner, long long oid):
        cdef long long remaining = qty, price, h, rq, trade, nx
        cdef cmap[long long, Level]* book = &self.asks if side == 1 else &self.bids
        cdef cmap[long long, Level].iterator it
        cdef cmap[long long, Level].reverse_iterator rit
        cdef Level* lvl
        cdef list fills = self.fills
        while remaining and not book.empty():
            if side == 1:
                it = book.begin()
                price = deref(it).first
                if price > limit:
                    break
                lvl = &deref(it).second
            else:
                rit = book.rbegin()
                price = deref(rit).first
                if price < limit:
                    break
                lvl = &deref(rit).second
            h = lvl.head
            while remaining and h:
                rq = self.orders[h].qty
                if rq == 0:
                    h = self.orders[h].nxt
                    continue
                if rq <= remaining:
                    self.orders[h].qty = 0
                    self.n_live -= 1
                    trade = rq
                    nx = self.orders[h].nxt
                else:
                    self.orders[h].qty = rq - remaining
                    trade = remaining
                    nx = h
                fills.append((h, self.orders[h].owner, oid, owner, price, trade, side))
                remaining -= trade
                lvl.total -= trade
                h = nx
            lvl.head = h
            self.last_price = price
            if lvl.total == 0:
                book.erase(price)
        if side == 1:
            self.best_ask_ = NO_ASK if self.asks.empty() else deref(self.asks.begin()).first
        else:
            self.best_bid_ = 0 if self.bids.empty() else deref(self.bids.rbegin()).first
        return qty - remaining

    cdef void _rest(self, long long side, long long price, long long qty, long long owner, long long oid):
        self._reserve(oid)
        cdef Order* o = &self.orders[oid]
        o.owner = owner; o.side = side; o.price = price; o.qty = qty; o.nxt = 0
        cdef cmap[long long, Level]* book = &self.bids if side == 1 else &self.asks
        cdef Level* lvl = &deref(book)[price]   # inserted zeroed when new
        if lvl.total == 0:
            lvl.head = oid
        else:
            self.orders[lvl.tail].nxt = oid
        lvl.tail = oid
        lvl.total += qty
        self.n_live += 1
        if side == 1 and price > self.best_bid_:
            self.best_bid_ = price
        elif side == -1 and price < self.best_ask_:
            self.best_ask_ = price

    cpdef long long limit(self, long long side, long long price, long long qty, long long owner, long long oid):
        cdef long long filled = 0, rest
        if oid >= self.next_id:
            self.next_id = oid + 1
        if (self.best_ask_ <= price) if side == 1 else (self.best_bid_ >= price):
            filled = self._match(side, price, qty, owner, oid)
        rest = qty - filled
        if rest:
            self._rest(side, price, rest, owner, oid)
        return filled

    cpdef long long market(self, long long side, long long qty):
        cdef long long oid = self.next_id
        self.next_id = oid + 1
        return self._match(side, NO_ASK - 1 if side == 1 else 1, qty, -1, oid)

    cpdef long long cancel(self, long long oid):
        if oid <= 0 or <size_t>oid >= self.orders.size():
            return 0
        cdef Order* o = &self.orders[oid]
        cdef long long q = o.qty
        if q == 0:
            return 0
        o.qty = 0
        self.n_live -= 1
        cdef cmap[long long, Level]* book = &self.bids if o.side == 1 else &self.asks
        cdef cmap[long long, Level].iterator it = book.find(o.price)
        cdef Level* lvl = &deref(it).second
        lvl.total -= q
        if lvl.total == 0:
            book.erase(it)
            if o.side == 1 and o.price == self.best_bid_:
                self.best_bid_ = 0 if self.bids.empty() else deref(self.bids.rbegin()).first
            elif o.side == -1 and o.price == self.best_ask_:
                self.best_ask_ = NO_ASK if self.asks.empty() else deref(self.asks.begin()).first
        return q


cdef class Touch:
    """One cpdef call from Python that writes a dict entry: the crossing's cost."""
    cdef dict a

    def __cinit__(self):
        self.a = {}

    cpdef long long touch(self, long long i):
        self.a[i] = i
        return i
