# The step record's reductions over accounts compiled, included in model/_book.pyx
# (issue #24): :func:`~crossmargin.model.collect.account_totals` in one pass over the
# accounts instead of about a dozen numpy passes (masks, compressed copies, sums,
# counts), each a fixed cost a step at 1,400 accounts and a pass over megabytes at a
# million. ``account_totals`` stays the code to read and change, and the path without
# a compiler; this file gives the same numbers to the bit (``tests/test_compiled.py``):
# the same compare operations, and each sum as numpy sums a float64 array.


cdef double _pairwise(const double* a, Py_ssize_t n) noexcept nogil:
    """numpy's pairwise summation of ``n`` contiguous doubles (``DOUBLE_pairwise_sum``,
    numpy/_core/src/umath/loops_utils.h.src): below 8 one by one from 0.0; up to 128 in
    eight running sums, combined as ((0+1)+(2+3))+((4+5)+(6+7)), then the rest one by
    one; beyond, the two halves (the first a multiple of 8 long) summed apart."""
    cdef Py_ssize_t i, n2
    cdef double res, r0, r1, r2, r3, r4, r5, r6, r7
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[i]
        return res
    if n <= 128:
        r0 = a[0]
        r1 = a[1]
        r2 = a[2]
        r3 = a[3]
        r4 = a[4]
        r5 = a[5]
        r6 = a[6]
        r7 = a[7]
        i = 8
        while i < n - (n % 8):
            r0 += a[i]
            r1 += a[i + 1]
            r2 += a[i + 2]
            r3 += a[i + 3]
            r4 += a[i + 4]
            r5 += a[i + 5]
            r6 += a[i + 6]
            r7 += a[i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise(a, n2) + _pairwise(a + n2, n - n2)


cdef inline double _np_sum(const double* a, Py_ssize_t n) noexcept nogil:
    """``np.add.reduce`` of a contiguous float64 array: the identity 0.0 plus the
    pairwise sum (so a sum of −0.0s is 0.0, as numpy gives)."""
    return 0.0 + _pairwise(a, n)


def numpy_sum(x):
    """:func:`_np_sum` of a 1-D float64 array: ``float(x.sum())``, compiled
    (``tests/test_compiled.py`` holds the two to the same bits).

    Examples:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).standard_normal(1000)
        >>> numpy_sum(x) == float(x.sum())
        True
    """
    cdef const double[::1] v = np.ascontiguousarray(x, dtype=np.float64)
    return _np_sum(&v[0], v.shape[0]) if v.shape[0] else 0.0


def account_totals(val, Py_ssize_t n):
    """:func:`~crossmargin.model.collect.account_totals` compiled: the aggregate
    leverage, the accounts under maintenance margin (of the first ``n``), the accounts
    near liquidation and the margin ratios of the accounts with positions, in one pass.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> from crossmargin.model import collect
        >>> m = CrossMarginModel(Scenario.preset("baseline"))
        >>> m.run_for(5)
        >>> mine = account_totals(m.val, m.exchange.ledger.n)
        >>> theirs = collect.account_totals(m.val, m.exchange.ledger.n)
        >>> mine[:3] == theirs[:3] and bool((mine[3] == theirs[3]).all())
        True
    """
    cdef const double[::1] gross = np.ascontiguousarray(val.gross, dtype=np.float64)
    cdef const double[::1] equity = np.ascontiguousarray(val.equity, dtype=np.float64)
    cdef const double[::1] mm = np.ascontiguousarray(val.mm, dtype=np.float64)
    cdef const double[::1] ratio = np.ascontiguousarray(val.ratio, dtype=np.float64)
    cdef Py_ssize_t k = gross.shape[0], i, held = 0, positive = 0
    if equity.shape[0] != k or ratio.shape[0] != k:
        raise ValueError("account_totals: gross, equity and ratio of different lengths")
    if n < 0:
        raise ValueError("account_totals: n must be >= 0 (a count of accounts)")
    # numpy's val.equity[:n] and val.mm[:n]: each cut at its own length
    cdef Py_ssize_t under_n = min(n, equity.shape[0])
    if min(n, mm.shape[0]) != under_n:
        raise ValueError("account_totals: equity and mm of different lengths")
    cdef vector[double] held_gross, held_equity
    held_gross.resize(k)
    held_equity.resize(k)
    out_ratio = np.empty(k)
    cdef double[::1] ratios = out_ratio
    cdef long long under = 0, near = 0
    cdef double g, e, r, total, floor_
    for i in range(k):
        g = gross[i]
        r = ratio[i]
        if g > 0:  # an account with positions
            held_gross[held] = g
            ratios[held] = r
            held += 1
            e = equity[i]
            if e > 0:
                held_equity[positive] = e
                positive += 1
        if r >= 1 and r < 1.1:
            near += 1
    for i in range(under_n):
        if equity[i] < mm[i] and mm[i] > 0:
            under += 1
    cdef double leverage = 0.0
    if held:
        # np.float64 / max(np.float64, 1e-9): Python's max keeps the first unless the
        # second is greater (so NaN stays NaN)
        total = _np_sum(held_equity.data(), positive)
        floor_ = 1e-9 if 1e-9 > total else total
        leverage = _np_sum(held_gross.data(), held) / floor_
    return leverage, under, near, out_ratio[:held]


def ledger_open_interest(led):
    """:meth:`Ledger.open_interest` compiled: per market, numpy's sum of
    ``maximum(position, 0.0)`` over the ledger's accounts, plus 0.0, without the
    temporary array of every position (36 MB a step at a million traders).

    Examples:
        >>> from crossmargin.model.ledger import Ledger
        >>> from crossmargin.model.markets import Market
        >>> led = Ledger([Market("BTC", 0.1, 0.001)])
        >>> a, b = led.open_account(1e6), led.open_account(1e6)
        >>> _ = led.trade(a, 0, 7, 50_000.0), led.trade(b, 0, -7, 50_000.0)
        >>> ledger_open_interest(led).tolist()
        [7.0]
    """
    cdef const double[:, ::1] pos = led.pos
    cdef Py_ssize_t k = pos.shape[0], n = min(<Py_ssize_t>led.n, pos.shape[1]), m, i
    out = np.empty(k)
    cdef double[::1] o = out
    cdef vector[double] longs
    longs.resize(n)
    for m in range(k):
        for i in range(n):
            longs[i] = _npmax(pos[m, i], 0.0)  # numpy's maximum: NaN stays, −0.0 stays
        o[m] = _np_sum(longs.data(), n) + 0.0
    return out
