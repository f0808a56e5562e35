# A market maker's quoting rule compiled, included in model/_book.pyx (issue #24, the
# fifth stage of a compiled order path): :meth:`~crossmargin.model.agents.MarketMaker._quote`
# (the reference price, the spread, the inventory skew, the ladder's grid, the levels it
# wants, the diff against the ladder as quoted and the update sent to the exchange) and
# :meth:`~crossmargin.model.exchange.Exchange._requote_spot` (a ladder's post-only
# orders on a spot venue). The rule itself stays readable and changeable in Python:
# ``MarketMaker._quote_rule`` is the reference this file follows line by line, and the
# path without a compiler. As for the rest of the order path: the same steps in the same
# order, the same floats (``-ffp-contract=off``), the same random draws, the same Python
# containers written in the same order; ``tests/test_compiled.py`` holds the two to the
# same states and the same model output.

from cpython.buffer cimport PyObject_CheckBuffer
from cpython.object cimport PyObject
from libc.math cimport ceil, floor, isfinite, nearbyint, pow

cdef double _BIG_LOTS = 1e18  # a quote size in lots beyond this goes to Python's ints


cdef inline double _pmin(double a, double b) noexcept:
    """Python's ``min(a, b)`` on floats: ``a`` unless ``b < a`` (so NaNs go as there)."""
    return b if b < a else a


cdef inline double _pmax(double a, double b) noexcept:
    """Python's ``max(a, b)`` on floats: ``a`` unless ``b > a``."""
    return b if b > a else a


cdef inline bint _frozen(cfg) except -1:
    """Whether ``cfg`` is a frozen pydantic model (the scenario's configs are): its
    values cannot change, so what is read from it once holds while it is held."""
    conf = getattr(type(cfg), "model_config", None)
    return isinstance(conf, dict) and (<dict>conf).get("frozen") is True


cdef class _Kept:
    """Values read once from a frozen config ``cfg`` (held here, so that its identity
    stands for it while it is kept). A pydantic model's attribute read goes through
    its ``__getattr__`` hook: several hundred instructions, and a turn read several."""
    cdef object cfg


cdef Py_ssize_t _CONFIGS = 8  # frozen configs whose values are kept, per kind


cdef inline object _kept(list kept, cfg):
    """The values kept for the config ``cfg`` in ``kept`` (newest first), or None."""
    for c in kept:
        if (<_Kept>c).cfg is cfg:
            return c
    return None


cdef inline void _keep(list kept, _Kept c, cfg) except *:
    """Keep ``c``, the values of ``cfg``, if ``cfg`` is frozen (:func:`_frozen`): first
    in ``kept``, the oldest beyond :data:`_CONFIGS` dropped."""
    if _frozen(cfg):
        c.cfg = cfg
        kept.insert(0, c)
        del kept[_CONFIGS:]


cdef class _MakerCfg(_Kept):
    """The values of a maker's config that an activation reads: kept for the last few
    frozen configs, read afresh at each activation from any other."""
    cdef object cooldown
    cdef double index_weight, vol_widen, skew, level_gap_bps, replenish_rate, withdraw_loss
    cdef bint calm, mark_vol


cdef list _maker_cfgs = []  # the makers' frozen configs read last, newest first


cdef _MakerCfg _maker_cfg_of(cfg):
    """The values of ``cfg`` an activation reads (:class:`_MakerCfg`)."""
    found = _kept(_maker_cfgs, cfg)
    if found is not None:
        return <_MakerCfg>found
    cdef _MakerCfg c = _MakerCfg.__new__(_MakerCfg)
    c.index_weight = cfg.index_weight
    c.vol_widen = cfg.vol_widen
    c.skew = cfg.skew
    c.level_gap_bps = cfg.level_gap_bps
    c.replenish_rate = cfg.replenish_rate
    c.withdraw_loss = cfg.withdraw_loss
    c.cooldown = cfg.cooldown
    c.calm = cfg.reentry == "calm"
    c.mark_vol = cfg.vol_source == "mark"
    _keep(_maker_cfgs, c, cfg)
    return c


cdef class _Reads:
    """What a maker's quoting reads that holds through one activation: set in
    ``MarketMaker.__init__`` (or its config's constants), read once per activation
    instead of once per market (:func:`_reads`)."""
    cdef object model, ex, rng, account
    cdef list spec, grid, grid_price, quotes
    cdef double w, limit, half_bps, vol_widen, skew, refill, level_gap_bps, vol_limit
    cdef bint by_capital, take_stale, shrinks
    cdef long long levels


cdef _Reads _reads(mk, _MakerCfg c):
    """A maker's :class:`_Reads`, read now (in the order ``_maker_quote`` read them),
    its config's values from ``c``."""
    cdef _Reads r = _Reads.__new__(_Reads)
    r.model = mk.model
    r.ex = mk.venue.exchange
    r.spec = mk._spec
    r.w = c.index_weight
    r.limit = mk._limit
    r.half_bps = mk._half_bps
    r.vol_widen = c.vol_widen
    r.by_capital = mk._by_capital
    r.skew = c.skew
    r.grid = mk._grid
    r.grid_price = mk._grid_price
    r.level_gap_bps = c.level_gap_bps
    r.take_stale = mk._take_stale
    r.shrinks = mk._shrinks
    r.vol_limit = mk.vol_limit if r.shrinks else 0.0
    r.levels = len(mk._levels)
    r.quotes = mk.quotes
    r.rng = r.model.rng
    r.refill = c.replenish_rate
    r.account = mk.account
    return r


cdef inline bint _stopped_out(mk, t, _MakerCfg c) except -1:
    """:meth:`MarketMaker._stopped_out`: a drawdown beyond ``withdraw_loss`` of capital
    pulls every quote for the cool-down and re-anchors the drawdown; True if it did."""
    cdef double eq = mk.equity()
    if (<double>mk.start_equity - eq) > c.withdraw_loss * <double>mk.capital:
        mk.withdraw(None, t + c.cooldown)
        mk.start_equity = eq  # re-anchor after the cool-down
        return True
    return False


cdef inline bint _pulls(vol_gate, m, double vol, double vol_limit, bint calm) except -1:
    """:meth:`MarketMaker._pulls` for market ``m`` at volatility ``vol``: ``calm``
    re-entry, above the limit; else above the gate, which it moves as the rule does
    (:func:`_pulls_at` on the gate read out and written back)."""
    cdef double gate
    cdef bint pulled
    if calm:
        return vol > vol_limit
    gate = vol_gate[m]
    pulled = _pulls_at(&gate, vol, vol_limit, calm)
    vol_gate[m] = gate
    return pulled


cdef inline bint _pulls_at(double* gate_m, double vol, double vol_limit,
                          bint calm) noexcept:
    """:meth:`MarketMaker._pulls` on the gate of a market held as a double (``gate_m``),
    moved in place as the rule moves it."""
    cdef double gate
    if calm:
        return vol > vol_limit
    gate = _pmax(vol_limit, _pmin(gate_m[0], 1.5 * vol))
    gate_m[0] = gate
    if vol > gate:
        gate_m[0] = 1.5 * vol
        return True
    return False


cdef int _vector(object a, Py_buffer* b, char kind) except -1:
    """Hold the data of ``a`` when it is a writable C-contiguous 1-D numpy array of
    ``kind`` ('d': float64, 'l': int64; :func:`_buffer`): 1; else 0, nothing held (the
    caller indexes ``a`` as Python does)."""
    if not PyObject_CheckBuffer(a):
        return 0
    try:
        _buffer(a, b, kind)
    except (BufferError, TypeError, ValueError):
        return 0
    if b.ndim != 1 or b.itemsize != 8:
        PyBuffer_Release(b)
        return 0
    return 1


def maker_act(mk):
    """:meth:`MarketMaker._act_rule` compiled: one activation of the maker ``mk`` (its
    capacity from capital, or its stop-loss, cool-downs and volatility gates, then its
    quotes in every market it is in). A withdrawal runs ``MarketMaker.withdraw``.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> from crossmargin.model.agents import MarketMaker
        >>> model = CrossMarginModel(Scenario.preset("baseline"))
        >>> model.run_for(3)
        >>> maker = next(a for a in model.agents if type(a) is MarketMaker)
        >>> maker_act(maker)
        >>> [len(q) > 0 for q in maker.quotes]  # it quotes in every market
        [True, True, True, True]
    """
    t = mk.model.t
    cdef _MakerCfg c = _maker_cfg_of(mk.cfg)
    cdef double ratio, vol_limit
    if mk._by_capital:  # MarketMaker._capital_capacity
        ratio = <double>mk.equity() / <double>mk.capital
        if ratio <= 1 - c.withdraw_loss:
            mk._capacity = 0.0
        else:
            mk._capacity = pow(_pmin(ratio, 1.0), 2.0)  # min(ratio, 1.0) ** 2, libm's pow
        view = mk._view()
        reads = _reads(mk, c)
        for m in mk.markets:
            _maker_quote(mk, m, view, reads)
        return
    if _stopped_out(mk, t, c):
        return
    view = mk._view()
    venue = mk.venue
    out_until = mk.out_until
    cdef bint calm = c.calm
    vols = venue.vol if c.mark_vol else venue.index_vol
    vol_limit = mk.vol_limit
    vol_gate = mk.vol_gate
    reads = _reads(mk, c)
    # The cool-downs, volatilities and gates read as the doubles and ints they hold
    # when they are numpy's vectors (they are), without a numpy scalar per read.
    cdef Py_buffer bo, bv, bg
    cdef bint ho = False, hv = False, hg = False, pulled
    cdef long long tc, mi
    cdef double vol
    try:
        ho = _vector(out_until, &bo, b"l")
        hv = _vector(vols, &bv, b"d")
        hg = _vector(vol_gate, &bg, b"d")
        tc = t if ho else 0
        for m in mk.markets:
            mi = m
            if ho and 0 <= mi < bo.shape[0]:
                if tc < (<long long*>bo.buf)[mi]:
                    continue
            elif t < out_until[m]:
                continue
            vol = (<double*>bv.buf)[mi] if hv and 0 <= mi < bv.shape[0] else vols[m]
            if hg and 0 <= mi < bg.shape[0]:
                pulled = _pulls_at(<double*>bg.buf + mi, vol, vol_limit, calm)
            else:
                pulled = _pulls(vol_gate, m, vol, vol_limit, calm)
            if pulled:
                mk.withdraw(m, t + c.cooldown)
                continue
            _maker_quote(mk, m, view, reads)
    finally:
        if ho:
            PyBuffer_Release(&bo)
        if hv:
            PyBuffer_Release(&bv)
        if hg:
            PyBuffer_Release(&bg)


def maker_quote(mk, long long m, tuple view):
    """:meth:`MarketMaker._quote_rule` compiled: the maker ``mk``'s ladder in market
    ``m`` from ``view`` (:meth:`MarketMaker._view`), its changes sent to the exchange.

    A quote whose reference price is not a positive finite number, or whose size in
    lots would not fit a machine int, runs the Python rule (which raises where Python
    arithmetic does).

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> from crossmargin.model.agents import MarketMaker
        >>> model = CrossMarginModel(Scenario.preset("baseline"))
        >>> model.run_for(3)
        >>> maker = next(a for a in model.agents if type(a) is MarketMaker)
        >>> maker_quote(maker, 0, maker._view())
        >>> len(maker.quotes[0])
        10
    """
    _maker_quote(mk, m, view, _reads(mk, _maker_cfg_of(mk.cfg)))


cdef int _maker_quote(mk, long long m, tuple view, _Reads r) except -1:
    """:func:`maker_quote` for a compiled caller, with the activation's reads ``r``."""
    cdef list mids = view[0], indexes = view[1], vols = view[2], pos = view[3]
    spec = <tuple>r.spec[m]
    cdef double tick = spec[0], lot = spec[1], size = spec[2]
    cdef double mid = mids[m], index = indexes[m], w = r.w
    cdef double ref = index if mid != mid else w * index + (1 - w) * mid
    cdef double inv = <double>pos[m] * lot * ref
    cdef double limit = r.limit
    cdef double vol = vols[m]
    cdef double half = ref * (r.half_bps + r.vol_widen * vol)
    cdef bint by_capital = r.by_capital
    cdef double skew = r.skew
    if by_capital:  # beyond its limit it quotes one side; the skew stops there
        ref -= skew * _pmax(-1.0, _pmin(1.0, inv / limit)) * half
    else:
        ref -= skew * (inv / limit) * half
    if not (ref > 0 and isfinite(ref) and isfinite(half) and isfinite(inv)) or not (
        size / (lot * ref) < _BIG_LOTS
    ):
        mk._quote_rule(m, view)  # nothing was changed yet: Python's rule from the start
        return 0
    cdef list grid = r.grid, grid_price = r.grid_price
    cdef long long g = grid[m], bid0, ask0, k, v
    if not g or abs(ref / <double>grid_price[m] - 1.0) > 0.25:
        g = <long long>nearbyint(ref * r.level_gap_bps * 1e-4 / tick)  # round()
        if g < 1:
            g = 1
        grid[m] = g
        grid_price[m] = ref
    # Innermost grid prices at least half − g/2 from the reference, in ticks.
    cdef double inner = half / tick - 0.5 * g
    bid0 = <long long>floor((ref / tick - inner) / g) * g
    ask0 = <long long>ceil((ref / tick + inner) / g) * g
    if ask0 <= bid0:
        ask0 = bid0 + g
    cdef OrderBook book = r.ex.books[m]
    if r.take_stale and (
        (book._best_bid != NO_BID and book._best_bid >= ask0)
        or (book._best_ask != NO_ASK and book._best_ask <= bid0)
    ):  # a stale quote may be there to take: Python's _pick_off checks and takes it
        mk._pick_off(m, bid0, ask0, inv, max(1, int(size / (lot * ref))))
    cdef double vol_limit
    if r.shrinks:
        vol_limit = r.vol_limit
        if vol > vol_limit:
            size *= vol_limit / vol  # a risk budget: smaller in a wilder market
    cdef double size_buy = 0.0, size_sell = 0.0
    if by_capital:  # capacity from capital, headroom in inventory per side
        size *= <double>mk._capacity
        size_buy = size * _pmax(0.0, 1.0 - _pmax(inv, 0.0) / limit)
        size_sell = size * _pmax(0.0, 1.0 - _pmax(-inv, 0.0) / limit)
    cdef long long levels = r.levels
    cdef dict quotes = r.quotes[m]
    cdef list cancels, new
    # The levels wanted are bid0 - k*g (bids, unless long beyond the limit), then
    # -(ask0 + k*g) (asks, unless short beyond it), 0 <= k < levels, each above zero:
    # _grid_diff walks them without listing them.
    cancels, new = _grid_diff(quotes, book, r.rng, r.refill, bid0, ask0, g,
                              levels, not inv > limit, not inv < -limit)
    if not new and not cancels:
        return 0
    cdef list placed, done
    cdef long long qty, sell
    if not by_capital:
        qty = <long long>(size / (lot * ref))
        if qty < 1:
            qty = 1
        sell = qty
    else:  # one size per side; a side without capacity places nothing
        qty = <long long>(size_buy / (lot * ref))
        sell = <long long>(size_sell / (lot * ref))
    done = _requote(r.ex, _ex(r.ex), book, r.account, m, cancels, new, qty, sell)
    if not by_capital:
        placed = done
    else:
        placed = []
        k = 0
        for key in new:
            if (qty if key > 0 else sell) >= 1:
                placed.append(done[k])
                k += 1
            else:
                placed.append(0)
    cdef Py_ssize_t j
    for j in range(min(len(new), len(placed))):  # zip(new, placed), without a zip object
        key = new[j]
        oid = placed[j]
        if oid:
            quotes[key] = oid
        else:
            quotes.pop(key, None)
    return 0


cdef inline Py_ssize_t _slot(long long key, long long bid0, long long ask0, long long g,
                            long long levels, bint bids, bint asks) noexcept:
    """The ladder level of the signed price ``key``: ``k`` for the bid ``bid0 − k·g``
    (when bids are quoted), ``levels + k`` for the ask ``−(ask0 + k·g)`` (when asks
    are), ``0 ≤ k < levels``; −1 for a price off the ladder."""
    cdef long long d
    if key > 0:
        if not bids:
            return -1
        d = bid0 - key
    elif key < 0:
        if not asks:
            return -1
        d = -key - ask0
    else:
        return -1
    if d < 0 or d % g or d // g >= levels:
        return -1
    return d // g if key > 0 else levels + d // g


cdef tuple _grid_diff(dict quotes, OrderBook book, rng, double refill, long long bid0,
                      long long ask0, long long g, long long levels, bint bids, bint asks):
    """:func:`ladder_diff` for the ladder of :func:`_maker_quote`, whose levels are a
    grid: each quoted price is placed on it (:func:`_slot`) or cancelled, then the
    levels are walked in the order :meth:`MarketMaker._quote_rule` lists them (inner
    bids, then inner asks), without a list of them, a set of it or a dict lookup per
    level. The same cancels and new levels in the same order, the same draws."""
    cdef list cancels = [], new = [], gone
    # Each level's price and order as they are in ``quotes`` (borrowed: ``quotes``
    # keeps them while the levels are walked), NULL for a level not quoted.
    cdef vector[PyObject*] keys, oids
    keys.assign(2 * levels, NULL)
    oids.assign(2 * levels, NULL)
    cdef Py_ssize_t slot
    cdef long long v
    if quotes:
        gone = []
        for key, oid in quotes.items():
            slot = _slot(key, bid0, ask0, g, levels, bids, asks)
            if slot < 0:
                gone.append(key)  # a level that left the ladder
            else:
                keys[slot] = <PyObject*>key
                oids[slot] = <PyObject*>oid
        for key in gone:
            cancels.append(quotes.pop(key))
    for slot in range(2 * levels):
        if slot < levels:
            if not bids:
                continue
            v = bid0 - slot * g
        else:
            if not asks:
                break
            v = ask0 + (slot - levels) * g
        if v <= 0:
            continue
        if oids[slot] == NULL:
            new.append(v if slot < levels else -v)
        elif not book._table.count(<long long><object>oids[slot]):  # it was hit
            if not rng.random() > refill:  # a hit level refills at the replenishment rate
                new.append(<object>keys[slot])
    return cancels, new


cdef list _requote(ex, _ExReads x, OrderBook book, object account, long long m,
                   list cancels, list new, long long qty, long long sell):
    """:meth:`Exchange.requote` from a compiled caller, of the ladder's levels ``new``
    (signed prices: a bid above zero, an ask below) on the sides with a size of at
    least a lot: a cross-margined account on a perp venue takes the cheap path here
    (cancels, the margin view, ``ladder_post``, the levels as C pairs); any other goes
    through the method, the levels as ``(side, price)`` tuples. ``x``: what it reads of
    the exchange (:func:`_ex_reads`)."""
    led = x.ledger
    if x.spot or x.forced or led.mode[account] != C_CROSS:
        tuples = [(C_BUY, key) if key > 0 else (-C_BUY, -key)
                  for key in new if (qty if key > 0 else sell) >= 1]
        return ex.requote(account, m, cancels, tuples, qty, sell_qty=sell)
    if cancels:
        _cancels(book, x.reserved[m], x.order_margin, x.resting, account, cancels, m)
    cdef vector[pair[long long, long long]] ladder
    cdef pair[long long, long long] level
    cdef long long price
    for key in new:
        price = key
        if price > 0:
            if qty < 1:
                continue
            level.first = C_BUY
            level.second = price
        else:
            if sell < 1:
                continue
            level.first = -C_BUY
            level.second = -price
        ladder.push_back(level)
    cdef View w
    _margin_view_at(led, x.marks, x.coll_prices, account, m, &w)
    return _posts(led, x.ticks[m], x.taker, x.price_band, x.order_margin, x.reserved[m],
                  x.resting, book, account, m, ladder, qty, sell, &w)


def ladder_post_spot(ex, OrderBook book, object account, long long m, list quotes,
                     long long qty, long long sell):
    """:meth:`Exchange._requote_spot` compiled: a ladder's post-only orders on a spot
    venue, the account's free cash and its units not already offered read once and run
    down order by order (a buy holds its cash and the taker fee while it rests; a sell
    needs units no resting sell offers). Return each order's id, 0 where refused.

    Examples:
        >>> from crossmargin.model.exchange import Exchange
        >>> from crossmargin.model.markets import Market
        >>> ex = Exchange([Market("BTC", 0.1, 0.001)], spot=True)
        >>> a = ex.ledger.open_account(1000.0)
        >>> ex.set_mark(0, 10.0)
        >>> ladder_post_spot(ex, ex.books[0], a, 0, [(1, 99), (-1, 101)], 2, 2)
        [1, 0]
    """
    led = ex.ledger
    cdef dict om = ex.order_margin, reserved = ex._reserved[m]
    cdef double lot = float(led.lot[m]), tick = ex._ticks[m]
    cdef double cash = float(led.cash[account]) - float(led.cost[:, account].sum()) - <double>(
        om.get(account, 0.0)
    )
    cdef long long units = int(led.pos[m, account]), side, price, oid
    cdef set resting = _resting_set(ex._resting, account, m)
    cdef list gone = []  # filled since they were placed: dropped here, where they are read
    for o in resting:
        it = book._table.find(<long long>o)
        if it == book._table.end():
            gone.append(o)
        elif deref(it).second.side == -1:
            units -= deref(it).second.qty
    resting.difference_update(gone)
    band = ex.price_band
    cdef bint banded = band is not None
    cdef double bw = band if banded else 0.0
    cdef double mark = ex._marks[m], fee = 1 + <double>ex._taker, need
    cdef list out = []
    for item in quotes:
        side = (<tuple>item)[0]
        price = (<tuple>item)[1]
        if (book._best_ask <= price) if side == C_BUY else (book._best_bid >= price):
            book.rejected_post_only += 1  # it would take liquidity
            out.append(0)
            continue
        if banded and abs(price * tick - mark) > bw * mark:
            led.orders_rejected[account] += 1
            out.append(0)
            continue
        need = price * tick * lot * qty * fee if side == C_BUY else 0.0
        if (cash < need - 1e-9) if side == C_BUY else (units < sell):
            led.orders_rejected[account] += 1
            out.append(0)
            continue
        oid = book.post(side, price, qty if side == C_BUY else sell, account)  # not crossing
        resting.add(oid)
        if side == C_BUY:
            cash -= need
            reserved[oid] = _untracked((account, need / qty))
            om[account] = <double>om.get(account, 0.0) + need
        else:
            units -= sell
        out.append(oid)
    return out


def entrant_act(mk):
    """:meth:`LiquidityEntrant._entry_rule` compiled: one activation of the liquidity
    entrant ``mk`` (its stop-loss, then per market its entry or exit, its volatility
    gate and its quotes, from one view read at the first market it quotes). A
    withdrawal runs ``MarketMaker.withdraw``, the view ``MarketMaker._view``.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> from crossmargin.model.agents import LiquidityEntrant
        >>> model = CrossMarginModel(Scenario.preset("oct2025_collateral_depeg"))
        >>> model.run_for(3)
        >>> entrant = next(a for a in model.agents if type(a) is LiquidityEntrant)
        >>> entrant.venue.spread_bps[:] = 1e4  # spreads wide enough to enter
        >>> entrant_act(entrant)
        >>> [bool(a) for a in entrant.active], [len(q) > 0 for q in entrant.quotes]
        ([True, True, True, True], [True, True, True, True])
    """
    t = mk.model.t
    cfg = mk.cfg
    cdef _MakerCfg c = _maker_cfg_of(cfg)
    cdef double vol_limit
    if _stopped_out(mk, t, c):
        return
    venue = mk.venue
    entry_funding = cfg.entry_funding
    funding = None if entry_funding is None else abs(venue.predicted_funding())
    out_until = mk.out_until
    spreads = venue.spread_bps
    active = mk.active
    calm_steps = mk.calm_steps
    cdef bint calm = c.calm, paid
    vols = venue.vol if c.mark_vol else venue.index_vol
    vol_limit = mk.vol_limit
    vol_gate = mk.vol_gate
    view = None
    cdef _Reads reads = None
    for m in mk.markets:
        if t < out_until[m]:
            continue
        spread = spreads[m]  # as marked at the end of the last step
        paid = funding is not None and funding[m] > entry_funding
        if not active[m]:
            if spread <= cfg.entry_spread_bps and not paid:
                continue
            active[m] = True
            calm_steps[m] = 0
        elif spread < cfg.exit_spread_bps and not paid:
            calm_steps[m] += 1
            if calm_steps[m] >= cfg.min_stay:
                active[m] = False
                mk.withdraw(m, t + 1)
                continue
        else:
            calm_steps[m] = 0
        if _pulls(vol_gate, m, vols[m], vol_limit, calm):
            mk.withdraw(m, t + c.cooldown)
            continue
        if view is None:
            view = mk._view()
            reads = _reads(mk, c)
        _maker_quote(mk, m, view, reads)
