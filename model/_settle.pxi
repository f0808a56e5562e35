# Settlement compiled, included in model/_book.pyx (issue #24, the third stage of a
# compiled order path): :meth:`~crossmargin.model.ledger.Ledger.trade` (average-cost
# accounting of one fill, isolated margin, the order-entry cache moved on),
# :meth:`~crossmargin.model.ledger.Ledger.margin_state` (that cache's view) and
# :meth:`~crossmargin.model.exchange.Exchange._settle_perp` (the fills of one incoming
# order settled on both sides, fees to the pool, the trade rows and the market's flow).
#
# As for the ladder: the same steps in the same order, the same float operations in
# the same order on the ledger's own arrays (read and written in place through the
# buffer protocol: float64, C-contiguous, as the ledger makes them), the same Python
# containers written. ``Ledger.trade`` and ``Exchange._settle_perp`` call these when the
# compiled book is in use; ``tests/test_compiled.py`` holds them to the Python code.

from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_ND, PyBUF_WRITABLE,
                             PyBuffer_Release, PyObject_GetBuffer)

from cpython.dict cimport PyDict_GetItem
from libc.math cimport fabs, isfinite
from libc.string cimport memcpy
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM


cdef extern from "Python.h":
    void PyObject_GC_UnTrack(void* op)


cdef inline tuple _untracked(tuple t):
    """``t``, left out of the cyclic GC from the start: for a tuple of numbers (or of
    such tuples), which can be in no reference cycle. CPython untracks such a tuple
    itself, but only at the first collection it survives (``_PyTuple_MaybeUntrack``);
    until then every young collection walks it. At a million traders the order path's
    records (margin views and their keys, reservations, trade rows, a noise trader's
    orders) were nine in ten of the objects each young collection walked."""
    PyObject_GC_UnTrack(<void*>t)
    return t

from .markets import ISOLATED as _ISOLATED

cdef signed char C_ISOLATED = _ISOLATED
cdef enum:
    N_ARRAYS = 9  # the arrays of Books




cdef struct Books:
    # the ledger's per-position arrays (market-major: [m * cap + i]) and per-account ones
    double* pos
    double* cost
    double* iso_margin
    double* cash
    double* realized
    double* fees
    double* deficit
    double* iso_leverage
    signed char* mode
    Py_ssize_t cap


cdef inline void* _buffer(object a, Py_buffer* b, char kind) except NULL:
    """The data of a C-contiguous numpy array of ``kind`` ('d': float64, 'b': int8)."""
    PyObject_GetBuffer(a, b, PyBUF_FORMAT | PyBUF_ND | PyBUF_WRITABLE)
    if b.format[0] != kind or b.format[1] != 0:
        PyBuffer_Release(b)
        raise TypeError(f"ledger array of format {b.format!r}, expected {chr(kind)!r}")
    return b.buf


cdef class _Arrays:
    """The ledger's arrays held open between calls: their buffers stay exported (so
    their data cannot move) and ``v`` points at them. :func:`_open` checks on every use
    that the ledger still holds these very arrays (``Ledger._grow`` replaces them) and
    opens the new ones if not. A copy or pickle of the ledger carries none
    (``Ledger.__getstate__``; it is opened again on first use)."""

    cdef Books v
    cdef Py_buffer bufs[N_ARRAYS]
    cdef int held
    cdef object pos, cost, iso_margin, cash, realized, fees, deficit, iso_leverage, mode
    # The instance dict last found to hold these arrays (compared, never read) and its
    # version then (0: none, or a Python without dict versions).
    cdef PyObject* checked
    cdef unsigned long long tag
    # The ledger's attributes that the order-entry views read, as its instance dict held
    # them at version ``snap`` (0: none): read again unless ``snap`` is ``tag``, the
    # version at which the dict was last found to hold these arrays (:func:`_held`).
    cdef unsigned long long snap
    cdef object version, epoch, views, lots, tier_lists, collaterals, n_isolated

    def __cinit__(self):
        self.held = 0
        self.checked = NULL
        self.tag = 0
        self.snap = 0

    def __dealloc__(self):
        _close(self.bufs, self.held)

    cdef int _hold(self, object led) except -1:
        """Export the buffers of ``led``'s arrays and point ``v`` at them."""
        cdef Py_buffer* bufs = self.bufs
        self.pos, self.cost, self.iso_margin = led.pos, led.cost, led.iso_margin
        self.cash, self.realized, self.fees = led.cash, led.realized, led.fees
        self.deficit, self.iso_leverage, self.mode = led.deficit, led.iso_leverage, led.mode
        self.v.pos = <double*>_buffer(self.pos, &bufs[0], b'd'); self.held = 1
        self.v.cost = <double*>_buffer(self.cost, &bufs[1], b'd'); self.held = 2
        self.v.iso_margin = <double*>_buffer(self.iso_margin, &bufs[2], b'd'); self.held = 3
        self.v.cash = <double*>_buffer(self.cash, &bufs[3], b'd'); self.held = 4
        self.v.realized = <double*>_buffer(self.realized, &bufs[4], b'd'); self.held = 5
        self.v.fees = <double*>_buffer(self.fees, &bufs[5], b'd'); self.held = 6
        self.v.deficit = <double*>_buffer(self.deficit, &bufs[6], b'd'); self.held = 7
        self.v.iso_leverage = <double*>_buffer(self.iso_leverage, &bufs[7], b'd'); self.held = 8
        self.v.mode = <signed char*>_buffer(self.mode, &bufs[8], b'b'); self.held = 9
        self.v.cap = bufs[3].shape[0]
        if bufs[0].ndim != 2 or bufs[0].shape[1] != self.v.cap \
                or bufs[1].shape[1] != self.v.cap or bufs[2].shape[1] != self.v.cap \
                or bufs[4].shape[0] != self.v.cap or bufs[5].shape[0] != self.v.cap \
                or bufs[6].shape[0] != self.v.cap or bufs[7].shape[0] != self.v.cap \
                or bufs[8].shape[0] != self.v.cap:
            raise ValueError("ledger arrays of different capacities")
        return 0

    cdef inline bint _current(self, object led):
        """Whether ``led`` still holds the very arrays held here, read from its instance
        dict (where the ledger's attributes live; no class attribute shadows them). A
        dict found to hold them that has not changed since (the same dict at the same
        version: a version is never given twice) still does, without the nine look-ups."""
        cdef PyObject** at = _PyObject_GetDictPtr(led)
        if at == NULL or at[0] == NULL:
            return False
        cdef unsigned long long tag = cm_dict_version(at[0])
        if tag != 0 and at[0] == self.checked and tag == self.tag:
            return True
        d = <object>at[0]
        if self._holds(d):
            self.checked = at[0]
            self.tag = tag
            return True
        return False

    cdef inline bint _holds(self, dict d):
        """Whether the instance dict ``d`` holds the very arrays held here."""
        return (PyDict_GetItem(d, "pos") == <PyObject*>self.pos
                and PyDict_GetItem(d, "cost") == <PyObject*>self.cost
                and PyDict_GetItem(d, "iso_margin") == <PyObject*>self.iso_margin
                and PyDict_GetItem(d, "cash") == <PyObject*>self.cash
                and PyDict_GetItem(d, "realized") == <PyObject*>self.realized
                and PyDict_GetItem(d, "fees") == <PyObject*>self.fees
                and PyDict_GetItem(d, "deficit") == <PyObject*>self.deficit
                and PyDict_GetItem(d, "iso_leverage") == <PyObject*>self.iso_leverage
                and PyDict_GetItem(d, "mode") == <PyObject*>self.mode)


cdef _Arrays _arrays_of(object led):
    """The ledger's arrays, held open in ``led._arrays`` (:class:`_Arrays`; opened
    again when the ledger has replaced them)."""
    arrs = led._arrays
    if arrs is None or not (<_Arrays>arrs)._current(led):
        arrs = _Arrays.__new__(_Arrays)
        (<_Arrays>arrs)._hold(led)
        led._arrays = arrs
    return <_Arrays>arrs


cdef int _open(object led, Books* v) except -1:
    """Point ``v`` at the ledger's arrays (:func:`_arrays_of`)."""
    v[0] = _arrays_of(led).v
    return 0


cdef _Arrays _held(object led):
    """The ledger's arrays (:func:`_arrays_of`) with the attributes its order-entry views
    read: read again unless its instance dict is still at the version they were read
    at (the ledger's ``epoch`` moves it, and so does any attribute set on the ledger;
    a list's items, such as ``version``'s, are read where they are)."""
    cdef _Arrays a = _arrays_of(led)
    if a.tag == 0 or a.snap != a.tag:
        a.version = led.version
        a.epoch = led.epoch
        a.views = led._views
        a.lots = led._lots
        a.tier_lists = led._tier_lists
        a.collaterals = led.collaterals
        a.n_isolated = led.n_isolated
        a.snap = a.tag
    return a


cdef inline void _close(Py_buffer* bufs, int k) noexcept:
    cdef int j
    for j in range(k):
        PyBuffer_Release(&bufs[j])


cdef double _trade(object led, Books* v, long long i, long long m, long long dq,
                   double price, double fee) except? -1.5e308:
    """:meth:`Ledger.trade` on the arrays of ``v``; return the realized PnL."""
    cdef double lot = led._lots[m]
    cdef Py_ssize_t at = m * v.cap + i
    cdef double p = v.pos[at], cost = v.cost[at], realized = 0.0
    cdef double closing, share, closed_cost, release, close_fee, back, step, opened, alloc
    cdef bint iso = v.mode[i] == C_ISOLATED
    cdef double adq = dq if dq >= 0 else -dq
    cdef double ap = p if p >= 0 else -p
    if p == 0 or (p > 0) == (dq > 0):
        opened = dq
    else:
        closing = ap if ap < adq else adq  # min(abs(dq), abs(p))
        share = closing / ap
        closed_cost = cost * share
        realized = (closing if p > 0 else -closing) * lot * price - closed_cost
        cost -= closed_cost
        if iso:
            release = v.iso_margin[at] * share
            v.iso_margin[at] -= release
            close_fee = fee * closing / adq
            back = release + realized - close_fee
            if back < 0:  # lost more than its margin: the position's shortfall
                v.deficit[i] -= back
                back = 0.0
            v.cash[i] += back - realized + close_fee  # realized and fee added below
        step = closing if dq > 0 else -closing
        p += step
        opened = dq - step
        if p == 0:
            cost = 0.0
    if opened:
        cost += opened * lot * price
        p += opened
        if iso:
            alloc = (opened if opened >= 0 else -opened) * lot * price / v.iso_leverage[i]
            v.cash[i] -= alloc
            v.iso_margin[at] += alloc
    v.pos[at] = p
    v.cost[at] = cost
    cdef list version = led.version
    views = led._views
    if views is not None and not iso and _current(<_Views>views, i, version[i], led.epoch):
        _after_fill(led, <_Views>views, i, m, dq, price, fee)
    version[i] += 1
    v.cash[i] = v.cash[i] + (realized - fee)
    v.realized[i] = v.realized[i] + realized
    v.fees[i] = v.fees[i] + fee
    return realized


cdef inline tuple _floats(double* base, Py_ssize_t stride, Py_ssize_t n):
    """``(base[0], base[stride], …)``: ``n`` floats of a ledger array as a tuple."""
    cdef tuple t = PyTuple_New(n)
    cdef Py_ssize_t k
    cdef object x
    for k in range(n):
        x = base[k * stride]
        Py_INCREF(x)  # PyTuple_SET_ITEM steals a reference
        PyTuple_SET_ITEM(t, k, x)
    return _untracked(t)


cdef class _Views:
    """The order-entry views of :meth:`Ledger.margin_state` on the compiled path: one
    slot per account in C++ arrays (``led._views``), where the Python path keeps a dict
    of tuples (``Ledger._margin_cache``).

    A slot holds the view's key (the account's :attr:`Ledger.version` and the ledger's
    :attr:`Ledger.epoch` when it was made or last moved on) and its floats: equity, IM,
    the margin mode, then per market the IM, the position and the mark it was made at.
    It is the view while its key is current, exactly as a cached tuple is; a new epoch
    makes every slot stale without a write (:meth:`Ledger.touch` empties the Python
    path's dict instead). At a million traders the tuples were about 15 Python objects
    a view, made and freed by the ten thousand each step (``benchmarks/RESULTS.md``,
    twenty-third session); a slot is written in place. ``tuple`` views for Python
    callers are made from a slot on request (:func:`ledger_margin_state`). A copy or
    pickle of the ledger carries the slots (:meth:`__reduce__`), as it carries the dict.
    """

    cdef Py_ssize_t nm  # markets
    cdef Py_ssize_t n  # accounts with a slot
    cdef Py_ssize_t width  # floats a slot: 3 + 3 × nm
    cdef vector[long long] key  # per account: version, epoch (−1: no view yet)
    cdef vector[double] val  # per account: equity, IM, mode, IMs, positions, marks

    def __reduce__(self):
        cdef Py_ssize_t nk = self.key.size() * sizeof(long long)
        cdef Py_ssize_t nv = self.val.size() * sizeof(double)
        keys = (<char*>self.key.data())[:nk] if nk else b""
        vals = (<char*>self.val.data())[:nv] if nv else b""
        return (_views_from, (self.nm, self.n, keys, vals))

    cdef int _grow(self, Py_ssize_t n) except -1:
        """Slots for accounts ``0 … n − 1``, the new ones empty."""
        self.key.resize(2 * n, -1)
        self.val.resize(n * self.width, 0.0)
        self.n = n
        return 0


def _views_from(Py_ssize_t nm, Py_ssize_t n, bytes keys, bytes vals):
    """A :class:`_Views` from :meth:`_Views.__reduce__`'s state (pickle, ``copy``)."""
    cdef _Views s = _Views.__new__(_Views)
    s.nm = nm
    s.width = 3 + 3 * nm
    s._grow(n)
    if len(keys) != 2 * n * <Py_ssize_t>sizeof(long long) or \
            len(vals) != n * s.width * <Py_ssize_t>sizeof(double):
        raise ValueError("order-entry views of the wrong size")
    if n:
        memcpy(s.key.data(), <const char*>keys, len(keys))
        memcpy(s.val.data(), <const char*>vals, len(vals))
    return s


cdef _Views _views_of(object led, Py_ssize_t i):
    """``led``'s views, with a slot for account ``i`` (made on first use; grown to the
    ledger's capacity as accounts open)."""
    views = led._views
    cdef _Views s
    if views is None:
        s = _Views.__new__(_Views)
        s.nm = len(led._lots)
        if s.nm < 1:
            raise ValueError("a ledger without markets has no margin view")
        s.width = 3 + 3 * s.nm
        s.n = 0
        led._views = s
    else:
        s = <_Views>views
    if i >= s.n:
        s._grow(max(i + 1, <Py_ssize_t>len(led.cash)))
    return s


cdef inline bint _current(_Views s, long long i, object version, object epoch) except -1:
    """Whether account ``i``'s slot holds its view: the key ``(version, epoch)``."""
    return (i < s.n and s.key[2 * i] == <long long>version
            and s.key[2 * i + 1] == <long long>epoch)


cdef void _after_fill(object led, _Views s, long long i, long long m, long long dq,
                      double price, double fee) except *:
    """:meth:`Ledger._after_fill`: account ``i``'s current view moved on by one fill,
    in place (its key's version too)."""
    cdef Py_ssize_t nm = s.nm
    cdef double* d = s.val.data() + i * s.width
    cdef double p = d[3 + nm + m] + <double>dq  # pos[m] += dq
    cdef double old = d[3 + m], lot = led._lots[m], mark = d[3 + 2 * nm + m], new
    cdef double a = abs(p * lot * mark)
    if a:
        tiers = led._tier_lists[m]
        new = _tier_im(tiers[0], tiers[3], a)
    else:
        new = 0.0
    cdef double e = d[0]
    e += dq * lot * (mark - price) - fee
    d[0] = e
    d[1] = d[1] - old + new
    d[3 + m] = new
    d[3 + nm + m] = p
    s.key[2 * i] += 1


def ledger_margin_state(led, long long i, marks, coll_prices=None):
    """:meth:`Ledger.margin_state` compiled: account ``i``'s order-entry view, cached
    until its balances, anything written directly or the marks change (kept in
    ``led._views``, :class:`_Views`, and given here as the Python path's tuple). Its
    sums are Python's ``sum`` of the same lists, so the same floats.

    Examples:
        >>> import numpy as np
        >>> from crossmargin.model.ledger import Ledger
        >>> from crossmargin.model.markets import Market
        >>> led = Ledger([Market("BTC", 0.1, 0.001)])
        >>> a = led.open_account(1_000.0)
        >>> _ = ledger_trade(led, a, 0, 10, 50_000.0)
        >>> key, equity, im, ims, pos, lots, marks, mode = ledger_margin_state(
        ...     led, a, np.array([51_000.0]))
        >>> equity, pos, mode
        (1010.0, (10.0,), 0)
    """
    cdef _Views s = _views_of(led, i)
    _cached(led, _held(led), s, i, marks, coll_prices)
    return _view_tuple(led, s, i)


def ledger_views(led):
    """{account: view} of every view made or moved on in the current epoch, as the
    Python path's dict holds them (:meth:`Ledger.cached_views`).

    Examples:
        >>> import numpy as np
        >>> from crossmargin.model.ledger import Ledger
        >>> from crossmargin.model.markets import Market
        >>> led = Ledger([Market("BTC", 0.1, 0.001)])
        >>> a, b = led.open_account(1_000.0), led.open_account(5.0)
        >>> _ = ledger_margin_state(led, b, np.array([51_000.0]))
        >>> list(ledger_views(led))
        [1]
    """
    views = led._views
    if views is None:
        return {}
    cdef _Views s = <_Views>views
    cdef long long epoch = led.epoch
    cdef Py_ssize_t i
    return {i: _view_tuple(led, s, i) for i in range(s.n) if s.key[2 * i + 1] == epoch}


cdef tuple _view_tuple(object led, _Views s, Py_ssize_t i):
    """Account ``i``'s slot as :meth:`Ledger.margin_state`'s tuple."""
    cdef Py_ssize_t nm = s.nm
    cdef double* d = s.val.data() + i * s.width
    return _untracked((_untracked((s.key[2 * i], s.key[2 * i + 1])), d[0], d[1],
                       _floats(d + 3, 1, nm), _floats(d + 3 + nm, 1, nm), led._lots,
                       _floats(d + 3 + 2 * nm, 1, nm), <long>d[2]))


cdef inline int _cached(object led, _Arrays a, _Views s, long long i, object marks,
                        object coll_prices) except -1:
    """Account ``i``'s slot holds its view: kept while its version and the epoch hold,
    else made afresh (:func:`_margin_state`; ``a``: the ledger's :func:`_held`)."""
    version, epoch = a.version[i], a.epoch
    if not _current(s, i, version, epoch):
        _margin_state(led, a, s, i, marks, coll_prices)
        s.key[2 * i] = version
        s.key[2 * i + 1] = epoch
    return 0


cdef struct PySum:
    # Python's ``sum`` of floats, one item at a time (:func:`_sum_add`, :func:`_sum_end`)
    double f  # the running sum
    double c  # its compensation
    Py_ssize_t n  # items added


cdef inline void _sum_add(PySum* s, double x) noexcept:
    """Add ``x`` as CPython 3.12's ``sum`` adds a float (Python/bltinmodule.c): the
    first to the start value, the int 0 (``0 + x``: −0.0 becomes 0.0); then Neumaier's
    improved Kahan–Babuška step (Neumaier 1974)."""
    cdef double t
    if s.n == 0:
        s.f = 0.0 + x
        s.c = 0.0
    else:
        t = s.f + x
        if fabs(s.f) >= fabs(x):
            s.c += (s.f - t) + x
        else:
            s.c += (x - t) + s.f
        s.f = t
    s.n += 1


cdef inline double _sum_end(PySum* s) noexcept:
    """The sum of the floats added (at least one): the compensation added unless it is
    zero or not finite, as there."""
    if s.c != 0.0 and isfinite(s.c):
        return s.f + s.c
    return s.f


cdef inline double _sum_of(double* base, Py_ssize_t stride, Py_ssize_t n) noexcept:
    """``sum((base[0], base[stride], …))`` of ``n`` ≥ 1 floats, as Python sums them."""
    cdef PySum s
    s.f = s.c = 0.0  # set by the first item; zeroed so that no read is of unset memory
    s.n = 0
    cdef Py_ssize_t k
    for k in range(n):
        _sum_add(&s, base[k * stride])
    return _sum_end(&s)


def python_sum(xs):
    """:func:`_sum_of` on a sequence of at least one float: Python's ``sum``, compiled
    (``tests/test_compiled.py`` holds the two to the same bits).

    Examples:
        >>> python_sum([0.1, 0.2, 0.3]) == sum([0.1, 0.2, 0.3])
        True
    """
    cdef vector[double] v = xs
    if v.empty():
        raise ValueError("python_sum: at least one float")
    return _sum_of(v.data(), 1, <Py_ssize_t>v.size())


cdef int _margin_state(object led, _Arrays held, _Views s, long long i, object marks,
                       object coll_prices) except -1:
    """Account ``i``'s view computed into its slot (its key is the caller's; ``held``:
    the ledger's :func:`_held`). Its sums are Python's (:func:`_sum_of`), taken on the
    doubles without a tuple of them."""
    cdef tuple lots = held.lots
    cdef Py_ssize_t nm = s.nm, k
    if len(lots) != nm:
        raise ValueError("order-entry views of another number of markets")
    cdef Books v = held.v
    cdef double* d = s.val.data() + i * s.width
    cdef double* ims = d + 3
    cdef double* pos = d + 3 + nm
    cdef double* mk = d + 3 + 2 * nm
    for k in range(nm):
        pos[k] = v.pos[k * v.cap + i]
    cdef double e = v.cash[i] - _sum_of(v.cost + i, v.cap, nm), q, x, a, im_k
    if held.n_isolated:
        e += _sum_of(v.iso_margin + i, v.cap, nm) - v.deficit[i]
    cdef signed char mode = v.mode[i]
    cdef tuple marks_t = _epoch_marks(led, held.epoch, marks)
    if len(marks_t) != nm:
        raise ValueError("marks of another number of markets")
    for k in range(nm):
        mk[k] = <double>marks_t[k]
    if len(held.collaterals):
        e += <double>float((led.haircut * coll_prices) @ led.coll[:, i])
    cdef list tier_lists = held.tier_lists
    cdef PySum im
    im.f = im.c = 0.0  # set by the first item (there is one per market, nm >= 1)
    im.n = 0
    for k in range(nm):
        q = v.pos[k * v.cap + i]
        im_k = 0.0
        if q:
            x = q * <double>lots[k] * mk[k]
            e += x
            a = abs(x)
            tiers = tier_lists[k]
            im_k = _tier_im(tiers[0], tiers[3], a)
        _sum_add(&im, im_k)
        ims[k] = im_k
    d[0] = e
    d[1] = _sum_end(&im)
    d[2] = mode
    return 0


cdef tuple _epoch_marks(object led, object epoch, object marks):
    """:meth:`Ledger._epoch_marks`: ``marks`` as a tuple, one for every view of an epoch
    made from the same (read-only) marks array (``epoch``: the ledger's)."""
    shared = led._marks_view
    if (shared is not None and (<tuple>shared)[0] == epoch
            and (<tuple>shared)[1] is marks):
        return <tuple>(<tuple>shared)[2]
    cdef tuple mk = _untracked(tuple(marks.tolist()))
    led._marks_view = (epoch, marks, mk)
    return mk


cdef int _margin_view(object ex, object led, object account, long long m,
                      View* w) except -1:
    """An account's order-entry view of its margin in market ``m`` (as
    :meth:`Exchange._admit` and :meth:`Exchange.requote` fetch it): its current slot,
    else a fresh :meth:`Ledger.margin_state`, copied into ``w``."""
    return _margin_view_at(led, ex._marks, ex.coll_prices, account, m, w)


cdef int _margin_view_at(object led, object marks, object coll_prices, object account,
                         long long m, View* w) except -1:
    """:func:`_margin_view` at the exchange's ``marks`` and ``coll_prices``."""
    cdef long long i = account
    cdef _Arrays held = _held(led)
    views = held.views
    cdef _Views s
    if views is not None and 0 <= i < (<_Views>views).n:
        s = <_Views>views  # what _views_of would give
    else:
        s = _views_of(led, i)
    _cached(led, held, s, i, marks, coll_prices)
    cdef Py_ssize_t nm = s.nm
    if not 0 <= m < nm:
        raise IndexError("market out of range")
    cdef double* d = s.val.data() + i * s.width
    w.eq = d[0]
    w.im = d[1]
    w.mode = <int>d[2]
    w.ims_m = d[3 + m]
    w.p = d[3 + nm + m]
    w.mark = d[3 + 2 * nm + m]
    w.lot = held.lots[m]
    return 0
def ledger_trade(led, long long i, long long m, long long dq, double price, double fee=0.0):
    """:meth:`Ledger.trade` compiled: a fill of ``dq`` lots at ``price`` booked to
    account ``i`` (average cost, isolated margin, fee); return the realized PnL.

    Examples:
        >>> from crossmargin.model.ledger import Ledger
        >>> from crossmargin.model.markets import Market
        >>> led = Ledger([Market("BTC", 0.1, 0.001)])
        >>> a = led.open_account(100.0)
        >>> ledger_trade(led, a, 0, 10, 50_000.0)
        0.0
        >>> ledger_trade(led, a, 0, -4, 51_000.0, 0.5)
        4.0
        >>> float(led.cash[a]), float(led.pos[0, a])
        (103.5, 6.0)
    """
    cdef Books v
    _open(led, &v)
    return _trade(led, &v, i, m, dq, price, fee)


def settle_perp(ex, OrderBook book, long long m, list fills):
    """:meth:`Exchange._settle_perp` compiled: the fills of one incoming order on
    ``book`` (market ``m``) settled on both sides.

    Examples:
        >>> from crossmargin.model.exchange import Exchange
        >>> from crossmargin.model.markets import Market
        >>> ex = Exchange([Market("BTC", 0.1, 0.001)])
        >>> maker, taker = ex.ledger.open_account(1e6), ex.ledger.open_account(1e6)
        >>> book = ex.books[0]
        >>> oid = book.post(-1, 1_000_000, 5, maker)
        >>> book.limit(1, 1_000_000, 2, taker)
        2
        >>> settle_perp(ex, book, 0, book.fills)
        >>> float(ex.ledger.pos[0, taker]), float(ex.ledger.pos[0, maker]), ex.n_trades
        (2.0, -2.0, 1)
    """
    _settle_perp(ex, book, m, fills)


cdef int _settle_perp(ex, OrderBook book, long long m, list fills) except -1:
    """:func:`settle_perp` for a compiled caller."""
    led = ex.ledger
    market = ex.markets[m]
    cdef double tick = market.tick, lot = market.lot
    cdef double maker_rate = ex.fees.maker, taker_rate = ex.fees.taker
    forced = ex.forced
    cdef bint is_forced = forced
    cdef list rows = ex.trade_rows
    cdef dict reserved = ex._reserved[m], om = ex.order_margin
    step = ex.step
    first = <tuple>fills[0]
    cdef long long taker = first[3], side = first[6], total = 0, qty, moid, maker, k
    for f in fills:
        total += <long long>(<tuple>f)[5]
    cdef Books v
    _open(led, &v)
    cdef double p0 = v.pos[m * v.cap + taker]
    cdef bint whole = (
        len(fills) > 1 and v.mode[taker] != C_ISOLATED
        and (p0 * side >= 0 or total <= abs(p0))
    )
    cdef double value = 0.0, taker_fees = 0.0, price, notional, maker_fee, taker_fee, left
    flows = ex.informed_flow if taker in ex.informed else ex.flow
    cdef double volume = ex.volume.item(m), lots_traded = ex.lots_traded.item(m)
    cdef double flow = flows.item(m), fee_pool = ex.fee_pool
    for f in fills:
        moid = (<tuple>f)[0]
        maker = (<tuple>f)[1]
        qty = (<tuple>f)[5]
        price = <long long>(<tuple>f)[4] * tick
        notional = qty * lot * price
        if reserved:
            r = reserved.get(moid)
            if r is not None:
                left = <double>om[maker] - <double>(<tuple>r)[1] * qty
                om[maker] = left if left > 0 else 0.0
                if not book._table.count(moid):
                    del reserved[moid]
        maker_fee = maker_rate * notional
        taker_fee = 0.0 if is_forced else taker_rate * notional
        _trade(led, &v, maker, m, -side * qty, price, maker_fee)
        if whole:
            value += qty * price
            taker_fees += taker_fee
        else:
            _trade(led, &v, taker, m, side * qty, price, taker_fee)
        fee_pool += maker_fee + taker_fee
        rows.append(_untracked((step, m, price, qty, maker, taker, side, forced)))
        volume += notional
        lots_traded += qty
        flow += side * notional
    if whole:
        _trade(led, &v, taker, m, side * total, value / total, taker_fees)
    ex.fee_pool = fee_pool
    ex.volume[m] = volume
    ex.lots_traded[m] = lots_traded
    flows[m] = flow
    fills.clear()
    return 0


def ledger_tier_fix(led, absnot, mm, im):
    """:meth:`Ledger._tier_fix` compiled: maintenance and initial margin (computed at
    tier-0 rates) corrected for each position above its market's first tier cap, in
    market order then account order, as ``np.add.at`` adds them; each position's tier
    found as ``np.searchsorted(caps, |notional|, side="left")`` finds it in a market's
    ascending caps (tables whose caps are not ascending, or hold a NaN, run the Python
    method). The same IEEE operations in the same order: the same floats.

    Examples:
        >>> import numpy as np
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> from crossmargin.model.ledger import Ledger
        >>> led = CrossMarginModel(Scenario.preset("baseline")).exchange.ledger
        >>> absnot = np.array([[1e4, 3e5, 6e6]] * 4)  # four markets, tiered
        >>> mm, im = led._mmr0 @ absnot, led._inv_lev0 @ absnot
        >>> mm2, im2 = mm.copy(), im.copy()
        >>> ledger_tier_fix(led, absnot, mm, im)
        >>> Ledger._tier_fix_rule(led, absnot, mm2, im2)
        >>> bool((mm == mm2).all() and (im == im2).all() and (mm2 != led._mmr0 @ absnot).any())
        True
    """
    caps_a, mmr_a, amount_a, inv_a = led._tier_table
    cdef const double[:, :] caps = caps_a, mmr = mmr_a, amount = amount_a, inv = inv_a
    cdef const double[:] cap0 = led._cap0
    cdef Py_ssize_t k = absnot.shape[0], n = absnot.shape[1], width = caps.shape[1]
    cdef Py_ssize_t q, j, lo, hi, mid
    for q in range(k):  # ascending caps, no NaN: the search below is numpy's
        for j in range(width):
            if caps[q, j] != caps[q, j] or (j and not caps[q, j - 1] <= caps[q, j]):
                led._tier_fix_rule(absnot, mm, im)
                return
    cdef const double[:, :] a = absnot
    cdef double[:] mm_v = mm, im_v = im
    cdef double x, c0
    for q in range(k):
        c0 = cap0[q]
        for j in range(n):
            x = a[q, j]
            if not x > c0:
                continue
            lo, hi = 0, width  # searchsorted, side="left": the first cap >= x
            while lo < hi:
                mid = lo + ((hi - lo) >> 1)
                if caps[q, mid] < x:
                    lo = mid + 1
                else:
                    hi = mid
            if lo >= width:
                raise IndexError(f"index {lo} is out of bounds for axis 1 with size {width}")
            mm_v[j] = mm_v[j] + (x * (mmr[q, lo] - mmr[q, 0]) - amount[q, lo])
            im_v[j] = im_v[j] + x * (inv[q, lo] - inv[q, 0])
