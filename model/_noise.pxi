# A noise trader's turn compiled, included in model/_book.pyx (issue #24, the sixth
# stage of a compiled order path): :meth:`~crossmargin.model.agents.NoiseTrader.execute`
# (a cancel, a market order or a limit order priced off the book as it stands at its
# turn, from the draws its type made for the step). ``NoiseTrader._execute_rule`` stays
# the rule to read and change, and the path without a compiler; this file follows it
# line by line: the same steps, the same floats, the same orders in the same order
# (``tests/test_compiled.py``).


cdef class _Rows:
    """A step's plan (a C-contiguous 2-D float array, :meth:`NoiseTrader.decide`) held
    open: its buffer stays exported while it is the plan in use, so ``data`` cannot
    move, and each turn of the step reads its row without asking for the buffer again."""

    cdef object plan
    cdef Py_buffer b
    cdef const double* data
    cdef Py_ssize_t n

    def __dealloc__(self):
        if self.plan is not None:
            PyBuffer_Release(&self.b)


cdef _Rows _noise_rows = None  # the plan of the last noise trader's turn


cdef class _NoiseCfg(_Kept):
    """The values of a noise trader's config that a turn reads (:class:`_Kept`)."""
    cdef double market_share, limit_share, size_usd, offset_bps
    cdef Py_ssize_t max_orders


cdef list _noise_cfgs = []  # the noise traders' frozen configs read last, newest first


cdef _NoiseCfg _noise_cfg_of(cfg):
    """The values of ``cfg`` a turn reads (:class:`_NoiseCfg`)."""
    found = _kept(_noise_cfgs, cfg)
    if found is not None:
        return <_NoiseCfg>found
    cdef _NoiseCfg c = _NoiseCfg.__new__(_NoiseCfg)
    c.market_share = cfg.market_share
    c.limit_share = cfg.limit_share
    c.size_usd = cfg.size_usd
    c.offset_bps = cfg.offset_bps
    c.max_orders = cfg.max_orders
    _keep(_noise_cfgs, c, cfg)
    return c


cdef const double* _plan_row(object plan, Py_ssize_t r, Py_ssize_t width) except NULL:
    """Row ``r`` of ``plan`` (``width`` floats), the buffer opened once per plan."""
    global _noise_rows
    cdef _Rows rows = _noise_rows
    if rows is None or rows.plan is not plan:
        rows = _Rows.__new__(_Rows)
        PyObject_GetBuffer(plan, &rows.b, PyBUF_FORMAT | PyBUF_C_CONTIGUOUS)
        if (rows.b.ndim != 2 or rows.b.shape[1] != width or rows.b.format[0] != b"d"
                or rows.b.format[1] != 0):
            PyBuffer_Release(&rows.b)
            raise TypeError(f"a plan of shape (n, {width}) and float64 rows expected")
        rows.plan = plan
        rows.data = <const double*>rows.b.buf
        rows.n = rows.b.shape[0]
        _noise_rows = rows
    if not 0 <= r < rows.n:
        raise IndexError("plan row out of range")
    return rows.data + r * width


def noise_execute(agent, plan, Py_ssize_t r):
    """:meth:`NoiseTrader._execute_rule` compiled: the orders of row ``r`` of ``plan``
    (:meth:`NoiseTrader.decide`) for the noise trader ``agent``. A price that is not a
    finite number, or a size in lots that would not fit a machine int, runs the Python
    rule (which raises where Python arithmetic does).

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> from crossmargin.model.agents import NoiseTrader
        >>> model = CrossMarginModel(Scenario.preset("baseline"))
        >>> model.run_for(5)
        >>> trader = next(a for a in model.agents if type(a) is NoiseTrader)
        >>> import numpy as np
        >>> plan = np.array([[0.5, 0, 0.2, 1.0, 0.5, 0.0]])  # a limit buy, 1x its size
        >>> trader.orders.clear()
        >>> noise_execute(trader, plan, 0)
        >>> [m for m, oid in trader.orders]
        [0]
    """
    venue = agent.venue
    cdef _NoiseCfg cfg = _noise_cfg_of(agent.cfg)
    ex = venue.exchange
    cdef _ExReads x = _ex(ex)
    cdef const double* row = _plan_row(plan, r, 6)
    cdef double u = row[0], market_share = cfg.market_share
    cdef list orders = agent.orders
    cdef long long m, side, qty, anchor, span, limit, best
    cdef OrderBook book
    if u >= cfg.limit_share + market_share:
        if orders:
            m, oid = orders.pop(<Py_ssize_t>(row[5] * len(orders)))
            _cancel_one(x, x.books[m], agent.account, m, oid)
        return
    m = <long long>row[1]
    cdef double mid = venue.mid.item(m)
    cdef double price = mid if mid == mid else <double>venue.index.item(m)
    spec = x.markets[m]
    cdef double lot = spec.lot, tick = spec.tick, usd
    usd = cfg.size_usd * row[3]
    if not isfinite(price) or not (abs(usd / (lot * price)) < _BIG_LOTS):
        agent._execute_rule(plan, r)  # nothing was changed yet: Python's rule
        return
    side = C_BUY if row[2] < 0.5 else -C_BUY
    account = agent.account
    cdef Books v  # Trader.position: the ledger's float, read in place
    _open(x.ledger, &v)
    cdef double pos_usd = v.pos[m * v.cap + <Py_ssize_t>account] * lot * price
    if abs(pos_usd) > 2 * <double>agent.capital:  # keep inventory bounded: lean against it
        side = -C_BUY if pos_usd > 0 else C_BUY
    qty = <long long>(usd / (lot * price))  # Trader.lots
    if qty < 1:
        qty = 1
    book = x.books[m]
    if u < market_share:  # Exchange.market_order, limited at order_band beyond the best
        if x.forced:
            ex.market_order(account, m, side, qty)
            return
        best = book._best_ask if side == C_BUY else book._best_bid
        if best == (NO_ASK if side == C_BUY else NO_BID):
            return
        band = <double>x.order_band
        if side == C_BUY:
            limit = <long long>(best * (1 + side * band))
        else:
            limit = <long long>ceil(best * (1 - band))
            if limit < 1:
                limit = 1
        if limit > 0:
            _exchange_limit(ex, book, account, m, side, limit, qty, C_IOC)
        return
    if side == C_BUY:
        anchor = book._best_ask if book._best_ask != NO_ASK else <long long>nearbyint(price / tick)
    else:
        anchor = book._best_bid if book._best_bid != NO_BID else <long long>nearbyint(price / tick)
    span = <long long>(price * cfg.offset_bps * 1e-4 / tick)
    if span < 2:
        span = 2
    limit = anchor - side * (1 + <long long>(row[4] * (span - 1)))  # 1 .. span − 1
    if limit <= 0:
        return
    _exchange_limit(ex, book, account, m, side, limit, qty, 0)
    if book._table.count(book.last_id):  # it rests
        orders.append(_untracked((m, book.last_id)))
        if len(orders) > cfg.max_orders:
            m0, oid = orders.pop(0)
            _ex_read(ex, x)  # the order's fills set what they set
            _cancel_one(x, x.books[m0], account, m0, oid)
