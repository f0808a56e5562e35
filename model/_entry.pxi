# Order entry compiled, included in model/_book.pyx (issue #24, the fourth stage of a
# compiled order path; spot venues since the eighth):
# :meth:`~crossmargin.model.exchange.Exchange.limit` (the price band, what the order
# would fill as the book stands, the check at entry, the match, its settlement and the
# open-order margin of what rests) for a cross-margined or isolated account, or any
# account of a spot venue (its cash and units, :meth:`Exchange._admit_spot`); a
# portfolio-margin account's check (a stress revaluation) stays in Python. As for the
# ladder and settlement: the same steps in the same order, the same floats;
# ``tests/test_compiled.py`` holds it to the Python code.

from .markets import CROSS as _CROSS

cdef signed char C_CROSS = _CROSS


cdef double _admit_spot(object ex, object led, object account, long long m, long long side,
                        long long qty, double price_qty) except? -2.0:
    """:meth:`Exchange._admit_spot`: a buy needs the cash it would spend (its fills, the
    rest at its limit, and the taker fee) beyond what the account's resting buys hold; a
    sell needs units beyond those its resting sells offer. The cash per lot to hold
    while a buy rests, 0 for a sell, −1 for an order refused."""
    cdef double need, held
    if side == C_BUY:
        need = price_qty * <double>float(led.lot[m]) * (1 + <double>ex._taker)
        # numpy's own sum of the account's costs (its summation order, so its bits)
        held = <double>float(led.cash[account]) - <double>float(led.cost[:, account].sum())
        if held - <double>(<dict?>ex.order_margin).get(account, 0.0) < need - 1e-9:
            led.orders_rejected[account] += 1
            return -1.0
        return need / qty
    cdef long long offered = 0
    cdef OrderBook book = ex.books[m]
    for oid in _resting_in(ex._resting, account, m) or ():
        if not _is_id(oid):
            continue
        it = book._table.find(<long long>oid)
        if it != book._table.end() and deref(it).second.side == -1:
            offered += deref(it).second.qty
    if <double>float(led.pos[m, account]) - offered < qty:
        led.orders_rejected[account] += 1
        return -1.0
    return 0.0


cdef double _admit(object ex, _ExReads x, object led, object account, long long m,
                   long long side, long long qty, double price_qty) except? -2.0:
    """:meth:`Exchange._admit` on a perp venue: the open-order margin per lot to hold
    while the order rests, 0 for one that only reduces, −1 for one refused (``x``:
    what it reads of ``ex``, :func:`_ex`)."""
    if x.spot:
        return _admit_spot(ex, led, account, m, side, qty, price_qty)
    cdef View w
    _margin_view_at(led, x.marks, x.coll_prices, account, m, &w)
    if w.mode != C_CROSS and w.mode != C_ISOLATED:  # portfolio margin: Python's stress check
        return ex._admit(account, m, side, qty, price_qty)
    cdef double p = w.p, opening
    opening = qty if p * side >= 0 else qty - abs(p)
    if opening <= 0:
        return 0.0  # reduce-only: always accepted
    cdef double mark = w.mark
    if mark != mark:  # not marked yet: nothing to value against
        return 0.0
    cdef double lot = w.lot, notional, cost, slip, om, per_lot, add, a
    notional = price_qty * lot
    cost = <double>x.taker * notional
    slip = side * (notional - qty * lot * mark)
    if slip > 0:
        cost += slip
    om = (<dict?>x.order_margin).get(account, 0.0)
    if w.mode == C_ISOLATED:
        per_lot = (notional / <double>led.iso_leverage[account] + cost) / qty
        if <double>led.cash[account] - om < per_lot * opening - 1e-9:
            led.orders_rejected[account] += 1
            return -1.0
        return per_lot
    a = abs((p + side * qty) * lot * mark)  # Ledger.im_after
    tiers = led._tier_lists[m]
    add = _tier_im(tiers[0], tiers[3], a) - w.ims_m
    if w.eq - cost - om < w.im + add:
        led.orders_rejected[account] += 1
        return -1.0
    return ((add if add > 0 else 0.0) + cost) / qty


def exchange_limit(ex, OrderBook book, object account, long long m, long long side,
                   long long price, long long qty, long long tif):
    """:meth:`Exchange.limit` compiled (a perp or a spot venue): the lots filled (0 for an
    order refused, which leaves no id: ``book.last_id`` is 0).

    Examples:
        >>> from crossmargin.model.exchange import Exchange
        >>> from crossmargin.model.markets import Market
        >>> ex = Exchange([Market("BTC", 0.1, 0.001)])
        >>> ex.set_mark(0, 100.0)
        >>> maker, taker = ex.ledger.open_account(1e4), ex.ledger.open_account(1e4)
        >>> exchange_limit(ex, ex.books[0], maker, 0, -1, 1_001, 50, 0)
        0
        >>> exchange_limit(ex, ex.books[0], taker, 0, 1, 1_001, 20, 1)
        20
        >>> float(ex.ledger.pos[0, taker]), ex.books[0].total_qty(-1)
        (20.0, 30)
    """
    return _exchange_limit(ex, book, account, m, side, price, qty, tif)


cdef long long _exchange_limit(ex, OrderBook book, object account, long long m,
                               long long side, long long price, long long qty,
                               long long tif) except -1:
    """:func:`exchange_limit` for a compiled caller."""
    cdef _ExReads x = _ex(ex)
    led = x.ledger
    cdef double per_lot = 0.0, tick, mark
    cdef long long ticks, n, filled
    cdef bint crosses
    if not x.forced:
        tick = x.ticks[m]
        band = x.price_band
        if band is not None:
            mark = x.marks[m]
            if abs(price * tick - mark) > <double>band * mark:
                led.orders_rejected[account] += 1
                book.last_id = 0
                return 0
        crosses = book._best_ask <= price if side == 1 else book._best_bid >= price
        if crosses and tif == C_POST_ONLY:
            ticks = qty * price  # the book refuses it; nothing to check
        elif crosses:
            n, cost = book.fill_cost(side, qty, price)
            ticks = cost + (qty - n) * price
        else:
            ticks = qty * price
        per_lot = _admit(ex, x, led, account, m, side, qty, ticks * tick)
        if per_lot < 0:
            book.last_id = 0
            return 0
    filled = book._limit(side, price, qty, account, tif)
    if book.fills:
        _settle_perp(ex, book, m, book.fills)
    if book.stp_cancelled:
        ex._release_stp(m, book)
    cdef long long oid = book.last_id
    if tif != C_IOC and book._table.count(oid):
        _ex_read(ex, x)  # the fills and the self-trade release set what they set
        _resting_set(x.resting, account, m).add(oid)
        if per_lot > 0:
            x.reserved[m][oid] = _untracked((account, per_lot))
            open_margin = <dict?>x.order_margin
            open_margin[account] = (<double>open_margin.get(account, 0.0)
                                    + per_lot * (qty - filled))
    return filled
