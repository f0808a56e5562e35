# A fundamentalist's decision compiled, included in model/_book.pyx (issue #24, the
# seventh stage of a compiled order path): :meth:`~crossmargin.model.agents.
# Fundamentalist._decide_rule` with the module's ``_room`` and ``_lots`` (the market
# drawn, the gap to the anchor, side, size within the leverage room, lots, the limit at
# the anchor) for every active fundamentalist of a venue. With a handful active a step,
# numpy's per-call cost was nearly all of the rule's (56 µs a step in the baseline day
# for about five traders). ``Fundamentalist._decide_rule`` stays the rule to read and
# change, and the path without a compiler; this file follows it element by element: the
# same draw, the same IEEE operations in the same order (numpy's ``minimum`` and
# ``maximum`` with their NaN rule, ``rint`` as ``nearbyint``, a float's cast to int64 as
# numpy's on x86-64), the same plan (``tests/test_compiled.py``).

import numpy as np

from libc.limits cimport LLONG_MIN
from libc.math cimport fabs, isfinite, isnan, nearbyint

cdef double _TWO63 = 9223372036854775808.0  # 2**63: from here on no int64 holds it
cdef long long _INT64_MIN = LLONG_MIN


cdef inline double _npmin(double a, double b) noexcept:
    """numpy's ``minimum(a, b)``: ``a`` if ``a <= b`` or ``a`` is NaN, else ``b``."""
    return a if (a <= b or isnan(a)) else b


cdef inline double _npmax(double a, double b) noexcept:
    """numpy's ``maximum(a, b)``: ``a`` if ``a >= b`` or ``a`` is NaN, else ``b``."""
    return a if (a >= b or isnan(a)) else b


cdef inline long long _to_int64(double x) noexcept:
    """numpy's cast of a float64 to int64 on x86-64: truncation toward zero, and the
    "integer indefinite" INT64_MIN for NaN or a value no int64 holds."""
    if x != x or not (-_TWO63 <= x < _TWO63):
        return _INT64_MIN
    return <long long>x


cdef inline double _room_of(double max_lev, double equity, double gross) noexcept:
    """``agents._room`` for one account: ``np.maximum(0.0, max_lev × equity − gross)``."""
    return _npmax(0.0, max_lev * equity - gross)


cdef inline long long _lots_of(double usd, double lot, double price) noexcept:
    """``agents._lots`` for one order: ``usd / (lot × price)`` cast to int64 as numpy
    casts it (0 where not finite), at least 1."""
    cdef double q = usd / (lot * price)
    if not isfinite(q):
        q = 0.0
    cdef long long lots = _to_int64(q)
    return lots if lots > 1 else 1


def fundamentalist_decide(venue, list agents):
    """:meth:`Fundamentalist._decide_rule` compiled: the plan of the active
    fundamentalists ``agents`` of ``venue`` (act, market, side, lots, limit per trader).

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> from crossmargin.model.agents import Fundamentalist
        >>> model = CrossMarginModel(Scenario.preset("baseline"))
        >>> model.run_for(5)
        >>> traders = [a for a in model.agents if type(a) is Fundamentalist][:3]
        >>> venue = traders[0].venue
        >>> state = venue.rng.bit_generator.state
        >>> plan = fundamentalist_decide(venue, traders)
        >>> venue.rng.bit_generator.state = state  # the same draw for the Python rule
        >>> plan == Fundamentalist._decide_rule(venue, traders)
        True
    """
    cfg = agents[0].cfg
    ex = venue.exchange
    led = ex.ledger
    cdef Py_ssize_t n = len(agents), j, mj
    accounts = [a.account for a in agents]
    draws = venue.rng.integers(len(ex.markets), size=n)
    cdef list ms = draws.tolist()
    cdef list mids = venue.mid.tolist(), anchors = venue.anchor.tolist()
    cdef list lots_usd = led.lot.tolist()
    cdef list ticks = [spec.tick for spec in ex.markets]
    val = venue.val
    cdef double thr = cfg.threshold_bps, size_usd = cfg.size_usd
    cdef double max_lev = cfg.max_leverage
    cdef double thr1 = max(cfg.threshold_bps, 1.0)
    cdef Books v
    _open(led, &v)
    cdef double mid, index, gap, size, usd, room, eq, gross
    cdef long long side, acc, lots
    cdef bint act, reducing
    cdef list out_act = [], out_side = [], out_lots = [], out_limit = []
    equity, grosses = val.equity, val.gross
    for j in range(n):
        mj = ms[j]
        acc = accounts[j]
        mid = mids[mj]
        index = anchors[mj]
        gap = (mid - index) / index
        size = fabs(gap)
        act = not isnan(mid) and size * 1e4 >= thr
        side = -C_BUY if gap > 0 else C_BUY
        reducing = v.pos[mj * v.cap + acc] * side < 0
        if isnan(size):
            size = 0.0
        usd = size_usd * _npmin(size * 1e4 / thr1, 3.0)
        if not reducing:
            eq = equity.item(acc)
            gross = grosses.item(acc)
            room = _room_of(max_lev, eq, gross)
            usd = _npmin(usd, room)
        act = act and usd > 0
        lots = _lots_of(usd, lots_usd[mj], index)
        out_act.append(act)
        out_side.append(side)
        out_lots.append(lots)
        out_limit.append(_to_int64(nearbyint(index / <double>ticks[mj])))
    return out_act, ms, out_side, out_lots, out_limit


def momentum_decide(venue, list agents):
    """:meth:`MomentumTrader._decide_rule` compiled: the plan of the active momentum
    traders ``agents`` of ``venue`` (act, market, side, lots per trader). The log
    returns are numpy's own ``log`` of the same quotients (whose last bit depends on the
    CPU's code path numpy picks); the rest runs per trader.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> from crossmargin.model.agents import MomentumTrader
        >>> model = CrossMarginModel(Scenario.preset("baseline"))
        >>> model.run_for(30)
        >>> traders = [a for a in model.agents if type(a) is MomentumTrader][:3]
        >>> venue = traders[0].venue
        >>> state = venue.rng.bit_generator.state
        >>> plan = momentum_decide(venue, traders)
        >>> venue.rng.bit_generator.state = state  # the same draw for the Python rule
        >>> plan == MomentumTrader._decide_rule(venue, traders)
        True
    """
    cfg = agents[0].cfg
    ex = venue.exchange
    led = ex.ledger
    cdef Py_ssize_t n = len(agents), j, mj
    accounts = [a.account for a in agents]
    draws = venue.rng.integers(len(ex.markets), size=n)
    hist = venue.mark_hist
    past = hist[max(0, len(hist) - 1 - cfg.lookback)]
    mark = venue.mark
    cdef list rs = np.log(mark[draws] / past[draws]).tolist()
    cdef list ms = draws.tolist(), marks = mark.tolist(), lots_usd = led.lot.tolist()
    val = venue.val
    cdef double thr = cfg.threshold, size_usd = cfg.size_usd, max_lev = cfg.max_leverage
    cdef Books v
    _open(led, &v)
    cdef double r, usd, room
    cdef long long side, acc, lots
    cdef bint act
    cdef list out_act = [], out_side = [], out_lots = []
    equity, grosses = val.equity, val.gross
    for j in range(n):
        mj = ms[j]
        acc = accounts[j]
        r = rs[j]
        act = fabs(r) >= thr
        side = C_BUY if r > 0 else -C_BUY
        usd = size_usd
        if v.pos[mj * v.cap + acc] * side >= 0:  # adding
            room = _room_of(max_lev, equity.item(acc), grosses.item(acc))
            usd = _npmin(size_usd, room)
        act = act and usd > 0
        lots = _lots_of(usd, lots_usd[mj], marks[mj])
        out_act.append(act)
        out_side.append(side)
        out_lots.append(lots)
    return out_act, ms, out_side, out_lots


def leveraged_decide(venue, list agents):
    """:meth:`LeveragedTrader._decide_rule` compiled for a step on which none of
    ``agents`` owes interest or meets a margin call (the common one): each trader's
    activity stamped, then, for one whose leverage left its band around its target
    (equity above zero), the lots per market that bring it back (action 2). On a step
    with interest owed or a margin call, it runs the Python rule itself: those book
    deposits, top-ups and isolated margin, before anything here was written.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> from crossmargin.model.agents import LeveragedTrader
        >>> model = CrossMarginModel(Scenario.preset("baseline"))
        >>> model.run_for(5)
        >>> traders = [a for a in model.agents if type(a) is LeveragedTrader][:20]
        >>> venue = traders[0].venue
        >>> stamps = venue.leveraged.last_active.copy()
        >>> plan = leveraged_decide(venue, traders)
        >>> venue.leveraged.last_active[:] = stamps
        >>> plan == LeveragedTrader._decide_rule(venue, traders)
        True
    """
    st = venue.leveraged
    cfg = agents[0].cfg
    ex = venue.exchange
    led = ex.ledger
    val = venue.val
    cdef Py_ssize_t n = len(agents), j, q, k = len(ex.markets), row, acc
    cdef vector[Py_ssize_t] rows, accs
    for a in agents:
        rows.push_back(a.row)
    cdef const long long[:] account = st.account
    cdef long long[:] last_active = st.last_active
    cdef const double[:] borrowed = st.borrowed, target_lev = st.target_leverage
    cdef const double[:, :] weights = st.weights
    cdef const double[:] equity = val.equity, mm = val.mm, gross = val.gross
    cdef long long t = venue.t
    cdef double call_ratio = cfg.call_ratio, band = cfg.rebalance_band
    cdef double eq, m_m
    for j in range(n):  # interest owed or a margin call: the Python rule
        row = rows[j]
        acc = account[row]
        accs.push_back(acc)
        eq = equity[acc]
        m_m = mm[acc]
        if (borrowed[row] > 0 and t > last_active[row]) or (
            eq > 0 and m_m > 0 and eq < call_ratio * m_m
        ):
            return type(agents[0])._decide_rule(venue, agents)  # the caller's class
    for j in range(n):
        last_active[rows[j]] = t
    cdef Books v
    _open(led, &v)
    cdef vector[double] price
    lots_usd, marks = led.lot.tolist(), venue.mark.tolist()
    for q in range(k):
        price.push_back(<double>lots_usd[q] * <double>marks[q])
    cdef list action = [], delta = []
    # The rows that do not rebalance share one list of zeros (execute only reads a row):
    # at a million traders, 20,000 lists a step fewer for the garbage collector.
    cdef list d, zeros = [0] * k
    cdef double lev, target, g, w
    cdef long long want, have
    for j in range(n):
        row, acc = rows[j], accs[j]
        eq = equity[acc]
        if eq > 0:  # live, and no call on this step: it may rebalance
            target = target_lev[row]
            lev = gross[acc] / eq
            if fabs(lev - target) > band * target:
                d = [0] * k
                g = target * eq
                for q in range(k):
                    w = weights[q, row]
                    if w != 0:
                        want = _to_int64(w * g / price[q])
                        have = _to_int64(v.pos[q * v.cap + acc])
                        # int64 arithmetic as numpy's: wrapping, never undefined
                        d[q] = <long long>(<unsigned long long>want - <unsigned long long>have)
                action.append(2)
                delta.append(d)
                continue
        action.append(0)
        delta.append(zeros)
    return action, delta
