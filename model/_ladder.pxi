# A market maker's ladder update compiled (issue #24, the second stage of a compiled
# order path): :meth:`~crossmargin.model.exchange.Exchange.requote`'s cancels and its
# cheap path for a cross-margined account, and
# :meth:`~crossmargin.model.agents.MarketMaker._diff` (which levels leave the ladder,
# which enter it), on the compiled :class:`~crossmargin.model._book.OrderBook`.
#
# Each function does what the Python code it stands for does, step by step: the same
# checks in the same order, the same float operations in the same order (so the same
# bits: ``-ffp-contract=off``), the same random draws, and the same Python containers
# (the exchange's resting sets, reservations and open-order margin, the maker's quotes)
# written in the same order. ``Exchange`` and ``MarketMaker`` call them when the compiled
# book is in use and run their Python code otherwise; ``tests/test_compiled.py`` holds the
# two paths to the same states and the same model output.

from cpython.object cimport PyObject

cdef long long C_BUY = 1


cdef extern from *:
    """
    #if PY_VERSION_HEX >= 0x030C0000 && PY_VERSION_HEX < 0x030D0000
    /* A dict's version: CPython 3.12 gives every change to a dict a new value, unique
       in the interpreter (PEP 509; deprecated, but kept up to date in 3.12). */
    #pragma GCC diagnostic push
    #pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    static inline unsigned long long cm_dict_version(PyObject* d) {
        return ((PyDictObject*)d)->ma_version_tag;
    }
    #pragma GCC diagnostic pop
    #else
    static inline unsigned long long cm_dict_version(PyObject* d) { return 0; }
    #endif
    /* A type's version: a new one (or 0) whenever the type or a base is changed. */
    static inline unsigned int cm_type_version(PyObject* o) {
        return Py_TYPE(o)->tp_version_tag;
    }
    """
    unsigned long long cm_dict_version(PyObject* d) noexcept nogil
    unsigned int cm_type_version(PyObject* o) noexcept nogil


cdef extern from "Python.h":
    PyObject** _PyObject_GetDictPtr(object)


cdef class _ExReads:
    """The exchange's attributes that the compiled order path reads, as the exchange
    held them when its instance dict was at version ``tag`` (0: not to be reused) and
    its class at version ``type_tag``: they stand while both do. Any attribute set on
    the exchange (a fee to its pool, a forced flag, a mark) moves its dict to a new
    version; a version is never given twice. Kept on the exchange as
    ``Exchange._reads`` (:func:`_ex`); a copy or pickle of it is empty, read again on
    first use."""
    cdef PyObject* d
    cdef unsigned long long tag
    cdef unsigned int type_tag
    cdef object ledger, spot, forced, ticks, taker, price_band, order_margin, reserved
    cdef object resting, marks, coll_prices, books, markets, order_band

    def __reduce__(self):
        return _ExReads, ()


cdef _ExReads _ex(object ex):
    """``ex``'s :class:`_ExReads` (``ex._reads``, made on first use), read again in
    place unless it stands."""
    r = ex._reads
    cdef _ExReads x
    if r is None:
        x = _ExReads.__new__(_ExReads)
        ex._reads = x
    else:
        x = <_ExReads?>r
    _ex_read(ex, x)
    return x


cdef int _ex_read(object ex, _ExReads x) except -1:
    """Read ``ex``'s attributes into ``x`` unless they stand (:class:`_ExReads`)."""
    cdef PyObject** at = _PyObject_GetDictPtr(ex)
    cdef PyObject* d = NULL
    cdef unsigned long long tag = 0
    if at != NULL and at[0] != NULL:
        d = at[0]
        tag = cm_dict_version(d)
    cdef unsigned int type_tag = cm_type_version(<PyObject*>ex)
    if (tag != 0 and type_tag != 0 and d == x.d and tag == x.tag
            and type_tag == x.type_tag):
        return 0
    x.d = NULL  # not to be reused unless read whole
    x.ledger = ex.ledger
    x.spot = ex.spot
    x.forced = ex.forced
    x.ticks = ex._ticks
    x.taker = ex._taker
    x.price_band = ex.price_band
    x.order_margin = ex.order_margin
    x.reserved = ex._reserved
    x.resting = ex._resting
    x.marks = ex._marks
    x.coll_prices = ex.coll_prices
    x.books = ex.books
    x.markets = ex.markets
    x.order_band = ex.order_band
    at = _PyObject_GetDictPtr(ex)
    if d != NULL and at != NULL and at[0] == d and cm_dict_version(d) == tag:
        x.d = d  # nothing changed the dict while it was read
        x.tag = tag
        x.type_tag = type_tag
    return 0


cdef inline set _resting_in(dict by_account, object account, long long m):
    """``ex._resting.get(account, {}).get(m)`` (``by_account``: ``ex._resting``): the
    account's resting ids in market ``m`` (None: none), without an empty dict made
    for the default at each call."""
    d = by_account.get(account)
    return None if d is None else (<dict?>d).get(m)


cdef inline set _resting_set(dict by_account, object account, long long m):
    """``ex._resting.setdefault(account, {}).setdefault(m, set())`` (``by_account``:
    ``ex._resting``) without an empty dict and set made for the defaults at each call:
    the same insertions in the same order."""
    d = by_account.get(account)
    if d is None:
        d = {}
        by_account[account] = d
    s = (<dict?>d).get(m)
    if s is None:
        s = set()
        (<dict?>d)[m] = s
    return s


cdef inline void _release(dict reserved, dict om, object oid, long long lots):
    """:meth:`Exchange._release`: free the open-order margin of ``lots`` lots
    (``reserved``: the book's own, ``Exchange._reserved[m]``)."""
    r = reserved.pop(oid, None)
    if r is not None:
        acct = (<tuple>r)[0]
        left = <double>om[acct] - <double>(<tuple>r)[1] * lots
        om[acct] = left if left > 0 else 0.0


def ladder_diff(dict quotes, list want, OrderBook book, rng, double refill):
    """The levels that left the ladder (their orders, popped from ``quotes``, to cancel)
    and the levels to place: those of ``want`` without a resting order, a hit one only
    when a uniform draw is at most ``refill`` (:meth:`MarketMaker._diff`).

    Examples:
        >>> import numpy as np
        >>> from crossmargin.model._book import OrderBook
        >>> book = OrderBook()
        >>> quotes = {99: book.post(1, 99, 1, 0), 98: book.post(1, 98, 1, 0)}
        >>> ladder_diff(quotes, [100, 99], book, np.random.default_rng(0), 1.0)
        ([2], [100])
    """
    cdef list cancels = [], new = []
    if quotes:
        keep = set(want)
        for key in [k for k in quotes if k not in keep]:  # levels that left the ladder
            cancels.append(quotes.pop(key))
    for key in want:
        oid = quotes.get(key)
        if oid is not None:
            if book._table.count(<long long>oid):  # the order still rests
                continue
            if rng.random() > refill:
                continue  # a hit level refills only at the replenishment rate
        new.append(key)
    return cancels, new


cdef inline long long _cancel_in(OrderBook book, set resting, dict reserved, dict om,
                                 object oid) except -1:
    """Cancel ``oid`` on ``book``: out of the owner's ``resting`` set (None: none), its
    open-order margin freed; the lots cancelled."""
    if resting is not None:
        resting.discard(oid)
    cdef long long lots = book.cancel(oid)
    if lots:
        _release(reserved, om, oid, lots)
    return lots


cdef inline long long _cancel_one(_ExReads x, OrderBook book, object account, long long m,
                                  object oid) except -1:
    """:meth:`Exchange.cancel`: one resting order cancelled, its open-order margin freed
    (``x``: what it reads of the exchange, :func:`_ex`)."""
    return _cancel_in(book, _resting_in(x.resting, account, m), x.reserved[m],
                      x.order_margin, oid)


def ladder_cancel(ex, OrderBook book, object account, long long m, list cancels):
    """Cancel the orders ``cancels`` of ``account`` on ``book`` (market ``m``), their
    open-order margin released (:meth:`Exchange.requote`'s cancels).

    Examples:
        >>> from crossmargin.model.exchange import Exchange
        >>> from crossmargin.model.markets import Market
        >>> ex = Exchange([Market("BTC", 0.1, 0.001)])
        >>> book = ex.books[0]
        >>> oid = book.post(1, 99, 5, 0)
        >>> ladder_cancel(ex, book, 0, 0, [oid])
        >>> oid in book
        False
    """
    _ladder_cancel(ex, book, account, m, cancels)


cdef int _ladder_cancel(ex, OrderBook book, object account, long long m, list cancels) except -1:
    """:func:`ladder_cancel` for a compiled caller."""
    return _cancels(book, ex._reserved[m], ex.order_margin, ex._resting, account, cancels, m)


cdef int _cancels(OrderBook book, dict reserved, dict om, dict by_account, object account,
                  list cancels, long long m) except -1:
    """:func:`_ladder_cancel` with the exchange's containers given: the book's
    reservations, the open-order margin and the resting ids by account."""
    s = _resting_in(by_account, account, m)
    for oid in cancels:
        _cancel_in(book, s, reserved, om, oid)
    return 0


cdef inline double _tier_im(list caps, list inv_lev, double a) except? -1:
    """``a × 1/leverage`` of the tier ``a`` falls in (``bisect_left`` on the caps)."""
    cdef Py_ssize_t lo = 0, hi = len(caps), mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if <double>caps[mid] < a:
            lo = mid + 1
        else:
            hi = mid
    if lo >= len(inv_lev):
        raise IndexError("list index out of range")  # as bisect_left's caller would
    return a * <double>inv_lev[lo]


cdef struct View:
    # An account's order-entry view of its margin (Ledger.margin_state) in one market
    double eq  # equity
    double im  # IM, every market
    double ims_m  # IM of this market
    double p  # position (lots)
    double lot  # lot size
    double mark  # mark the view was made at
    int mode  # margin mode


def ladder_post(ex, OrderBook book, object account, long long m, list quotes, long long qty,
               long long sell, tuple state):
    """Place a cross-margined account's post-only ladder ``quotes`` (``(side, price in
    ticks)``, in order) from its margin view ``state`` (:meth:`Ledger.margin_state`):
    :meth:`Exchange.requote`'s cheap path. Return each order's id, 0 where refused.

    Examples:
        >>> from crossmargin.model.exchange import Exchange
        >>> from crossmargin.model.markets import Market
        >>> ex = Exchange([Market("BTC", 0.1, 0.001)])
        >>> a = ex.ledger.open_account(1000.0)
        >>> ex.set_mark(0, 10.0)
        >>> state = ex.ledger.margin_state(a, ex.marks)
        >>> ladder_post(ex, ex.books[0], a, 0, [(1, 99), (-1, 101)], 2, 2, state)
        [1, 2]
    """
    cdef vector[pair[long long, long long]] ladder
    cdef pair[long long, long long] level
    for item in quotes:
        level.first = (<tuple>item)[0]
        level.second = (<tuple>item)[1]
        ladder.push_back(level)
    cdef View w
    w.eq, w.im, w.mode = state[1], state[2], state[7]
    w.ims_m, w.p, w.lot, w.mark = state[3][m], state[4][m], state[5][m], state[6][m]
    return _ladder_post(ex, book, account, m, ladder, qty, sell, &w)


cdef list _ladder_post(ex, OrderBook book, object account, long long m,
                       vector[pair[long long, long long]]& quotes, long long qty,
                       long long sell, const View* w):
    """:func:`ladder_post` for a compiled caller, the ladder as (side, price) pairs and
    the account's view in market ``m`` as ``w``."""
    return _posts(ex.ledger, ex._ticks[m], ex._taker, ex.price_band, ex.order_margin,
                  ex._reserved[m], ex._resting, book, account, m, quotes, qty, sell, w)


cdef list _posts(object led, double tick, double taker, object band, dict om,
                 dict reserved, dict by_account, OrderBook book, object account, long long m,
                 vector[pair[long long, long long]]& quotes, long long qty, long long sell,
                 const View* w):
    """:func:`_ladder_post` with what it reads of the exchange given: its ledger, the
    market's tick, the taker fee, the price band, the open-order margin, the book's
    reservations and the resting ids by account."""
    cdef double eq = w.eq, im = w.im
    cdef double mark = w.mark, lot = w.lot, p = w.p, ims_m = w.ims_m
    cdef bint banded = band is not None
    cdef double bw = band if banded else 0.0
    cdef set resting = _resting_set(by_account, account, m)
    tiers = _held(led).tier_lists[m]
    cdef list caps = tiers[0], inv_lev = tiers[3]
    cdef list out = []
    cdef long long side, price, q, oid
    cdef double opening, notional, cost, slip, add, per_lot, a
    cdef size_t k
    for k in range(quotes.size()):
        side = quotes[k].first
        price = quotes[k].second
        if (book._best_ask <= price) if side == C_BUY else (book._best_bid >= price):
            book.rejected_post_only += 1  # it would take liquidity
            out.append(0)
            continue
        if banded and abs(price * tick - mark) > bw * mark:
            led.orders_rejected[account] += 1
            out.append(0)
            continue
        q = qty if side == C_BUY else sell
        per_lot = 0.0
        opening = q if p * side >= 0 else q - abs(p)
        if opening > 0 and mark == mark:
            notional = q * price * tick * lot
            cost = taker * notional
            slip = side * (notional - q * lot * mark)
            if slip > 0:
                cost += slip
            a = abs((p + side * q) * lot * mark)  # Ledger.im_after
            add = _tier_im(caps, inv_lev, a) - ims_m
            if eq - cost - <double>om.get(account, 0.0) < im + add:
                led.orders_rejected[account] += 1
                out.append(0)
                continue
            per_lot = ((add if add > 0 else 0.0) + cost) / q
        oid = book.post(side, price, q, account)  # checked above: it does not cross
        resting.add(oid)
        if per_lot > 0:
            reserved[oid] = _untracked((account, per_lot))
            om[account] = <double>om.get(account, 0.0) + per_lot * q
        out.append(oid)
    return out
