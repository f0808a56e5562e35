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

cdef long long C_BUY = 1


cdef inline set _resting_in(object ex, object account, long long m):
    """``ex._resting.get(account, {}).get(m)``: the account's resting ids in market
    ``m`` (None: none), without an empty dict made for the default at each call."""
    d = (<dict?>ex._resting).get(account)
    return None if d is None else (<dict?>d).get(m)


cdef inline set _resting_set(object ex, object account, long long m):
    """``ex._resting.setdefault(account, {}).setdefault(m, set())`` without an empty dict
    and set made for the defaults at each call: the same insertions in the same order."""
    cdef dict by_account = ex._resting
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


cdef inline long long _cancel_one(ex, OrderBook book, object account, long long m,
                                  object oid) except -1:
    """:meth:`Exchange.cancel`: one resting order cancelled, its open-order margin freed."""
    return _cancel_in(book, _resting_in(ex, account, m), ex._reserved[m],
                      ex.order_margin, oid)


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
    cdef dict reserved = ex._reserved[m], om = ex.order_margin
    s = _resting_in(ex, account, m)
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
    led = ex.ledger
    cdef double eq = w.eq, im = w.im
    cdef double mark = w.mark, lot = w.lot, p = w.p, ims_m = w.ims_m
    cdef double tick = ex._ticks[m], taker = ex._taker
    band = ex.price_band
    cdef bint banded = band is not None
    cdef double bw = band if banded else 0.0
    cdef dict om = ex.order_margin, reserved = ex._reserved[m]
    cdef set resting = _resting_set(ex, account, m)
    tiers = led._tier_lists[m]
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
