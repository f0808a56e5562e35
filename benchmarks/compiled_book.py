"""Where a compiled order path would pay: the order-book stream through a numba book.

Issue #24's day needs the order path about 3-5x faster, and the profile has no single
hot loop: Python executes one order at a time through admission, matching and
settlement. This benchmark measures the two places a compiled path could meet Python,
on the stream of ``benchmarks/orderbook.py`` (200,000 events: limit adds, cancels,
market orders, no self-trade prevention):

* **per order**: Python calls a compiled function for every limit, cancel and market
  order (the book's state in four int64 arrays, so a call unboxes four arrays);
* **per stream**: one compiled call runs the whole stream.

Against :class:`~crossmargin.model.orderbook.OrderBook`, the same stream in Python. The
compiled book keeps price-time priority with price levels indexed by price over the
stream's price range (a level's queue is a linked list through the order table), and
its fills must equal ``OrderBook``'s one by one, or the script stops. It is a
measuring device for the design of a compiled order path, not the model's book.

Two more facts such a design rests on are printed too: what one call from Python into
numba costs with 2, 8 and 16 arrays to unbox (against a Python method call), and
whether numba's ``np.random.Generator`` draws the numbers NumPy's does from the same
state (the model's outputs could then stay the same to the bit).

Run: ``.venv/bin/python benchmarks/compiled_book.py [--events N] [--repeat K]`` (needs
numba: ``.venv/bin/python -m pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import platform
import time
import timeit

import numpy as np
from crossmargin.model.orderbook import PyOrderBook
from orderbook import Touch, make_stream, run

try:
    from numba import njit
except ModuleNotFoundError:
    raise SystemExit(
        "error: numba: not installed; .venv/bin/python -m pip install -e '.[bench]'"
    ) from None

# orders[oid, field]: the order table, indexed by order id
OWNER, SIDE, PRICE, QTY, NEXT = range(5)
# levels[price - base, field]: a price level's queue (oldest first) and resting total
HEAD, TAIL, TOTAL = range(3)
# meta: best bid and ask (ticks; 0 and NO_ASK when a side is empty), the next order id,
# the fills written, the lowest price of the level table
BEST_BID, BEST_ASK, NEXT_ID, N_FILLS, BASE = range(5)
NO_ASK = 1 << 62


@njit(cache=True)
def _new_best(levels, meta, side, start) -> None:
    """The next best level of ``side`` from index ``start`` outwards (a scan of the
    price-indexed table: levels near the best are dense)."""
    if side == 1:
        meta[BEST_BID] = 0
        for k in range(start, -1, -1):
            if levels[k, TOTAL]:
                meta[BEST_BID] = k + meta[BASE]
                return
    else:
        meta[BEST_ASK] = NO_ASK
        for k in range(start, levels.shape[0]):
            if levels[k, TOTAL]:
                meta[BEST_ASK] = k + meta[BASE]
                return


@njit(cache=True)
def _match(orders, levels, meta, fills, side, limit, qty, owner, oid):
    """Take resting orders from the opposite side, best price first, oldest first at a
    price, until ``qty`` is filled or ``limit`` is reached; return the lots filled."""
    remaining = qty
    base = meta[BASE]
    while remaining:
        price = meta[BEST_ASK] if side == 1 else meta[BEST_BID]
        if (price > limit) if side == 1 else (price < limit):
            break
        s = price - base
        h = levels[s, HEAD]
        total = levels[s, TOTAL]
        while remaining and h:
            rq = orders[h, QTY]
            if rq == 0:  # cancelled: skipped, as OrderBook's lazy deletion does
                h = orders[h, NEXT]
                continue
            if rq <= remaining:
                orders[h, QTY] = 0
                trade = rq
                nxt = orders[h, NEXT]
            else:
                orders[h, QTY] = rq - remaining
                trade = remaining
                nxt = h
            n = meta[N_FILLS]
            fills[n, 0] = h
            fills[n, 1] = orders[h, OWNER]
            fills[n, 2] = oid
            fills[n, 3] = owner
            fills[n, 4] = price
            fills[n, 5] = trade
            fills[n, 6] = side
            meta[N_FILLS] = n + 1
            remaining -= trade
            total -= trade
            h = nxt
        levels[s, HEAD] = h
        levels[s, TOTAL] = total
        if total == 0:
            levels[s, HEAD] = 0
            _new_best(levels, meta, -side, s + 1 if side == 1 else s - 1)
    return qty - remaining


@njit(cache=True)
def limit(orders, levels, meta, fills, side, price, qty, owner, oid):
    """A GTC limit order with its id: match, then rest the remainder; lots filled."""
    if oid >= meta[NEXT_ID]:
        meta[NEXT_ID] = oid + 1
    filled = _match(orders, levels, meta, fills, side, price, qty, owner, oid)
    rest = qty - filled
    if rest:
        orders[oid, OWNER] = owner
        orders[oid, SIDE] = side
        orders[oid, PRICE] = price
        orders[oid, QTY] = rest
        orders[oid, NEXT] = 0
        s = price - meta[BASE]
        if levels[s, TOTAL] == 0:
            levels[s, HEAD] = oid
        else:
            orders[levels[s, TAIL], NEXT] = oid
        levels[s, TAIL] = oid
        levels[s, TOTAL] += rest
        if side == 1 and price > meta[BEST_BID]:
            meta[BEST_BID] = price
        elif side == -1 and price < meta[BEST_ASK]:
            meta[BEST_ASK] = price
    return filled


@njit(cache=True)
def market(orders, levels, meta, fills, side, qty):
    """A market order (the next free id, no owner); lots filled."""
    oid = meta[NEXT_ID]
    meta[NEXT_ID] = oid + 1
    return _match(orders, levels, meta, fills, side, NO_ASK - 1 if side == 1 else 1, qty, -1, oid)


@njit(cache=True)
def cancel(orders, levels, meta, oid):
    """Cancel a resting order; the lots cancelled (0 when it no longer rests)."""
    qty = orders[oid, QTY]
    if qty == 0:
        return 0
    orders[oid, QTY] = 0
    price = orders[oid, PRICE]
    s = price - meta[BASE]
    levels[s, TOTAL] -= qty
    if levels[s, TOTAL] == 0:
        levels[s, HEAD] = 0
        side = orders[oid, SIDE]
        if price == (meta[BEST_BID] if side == 1 else meta[BEST_ASK]):
            _new_best(levels, meta, side, s - 1 if side == 1 else s + 1)
    return qty


@njit(cache=True)
def stream(orders, levels, meta, fills, events) -> None:
    """The whole stream (rows ``op, side, price, qty, id``) in one call."""
    for e in range(events.shape[0]):
        op = events[e, 0]
        if op == 0:
            oid = events[e, 4]
            limit(orders, levels, meta, fills, events[e, 1], events[e, 2], events[e, 3], oid, oid)
        elif op == 1:
            cancel(orders, levels, meta, events[e, 4])
        else:
            market(orders, levels, meta, fills, events[e, 1], events[e, 3])


def fresh(events: np.ndarray) -> tuple[np.ndarray, ...]:
    """An empty book sized for ``events``: (orders, levels, meta, fills)."""
    prices = events[events[:, 0] == 0, 2]
    base = int(prices.min()) - 1
    orders = np.zeros((2 * len(events) + 2, 5), np.int64)
    levels = np.zeros((int(prices.max()) - base + 2, 3), np.int64)
    meta = np.array([0, NO_ASK, 1, 0, base], np.int64)
    fills = np.zeros((4 * len(events), 7), np.int64)
    return orders, levels, meta, fills


def per_order(events: np.ndarray) -> tuple[float, tuple]:
    """Python loops over the stream and calls the compiled book once per order."""
    book = fresh(events)
    orders, levels, meta, fills = book
    rows = events.tolist()
    t0 = time.perf_counter()
    for op, side, price, qty, oid in rows:
        if op == 0:
            limit(orders, levels, meta, fills, side, price, qty, oid, oid)
        elif op == 1:
            cancel(orders, levels, meta, oid)
        else:
            market(orders, levels, meta, fills, side, qty)
    return time.perf_counter() - t0, book


def per_stream(events: np.ndarray) -> tuple[float, tuple]:
    book = fresh(events)
    t0 = time.perf_counter()
    stream(*book, events)
    return time.perf_counter() - t0, book


def same_as_python(book: tuple, reference) -> None:
    """Stop unless the compiled book's fills and best prices are ``OrderBook``'s."""
    _, _, meta, fills = book
    got = fills[: meta[N_FILLS]]
    want = np.array(reference.fills, dtype=np.int64).reshape(-1, 7)
    if got.shape != want.shape or not (got == want).all():
        raise SystemExit("error: the compiled book's fills differ from OrderBook's")
    best = (meta[BEST_BID] or None, None if meta[BEST_ASK] == NO_ASK else int(meta[BEST_ASK]))
    if best != (reference.best_bid, reference.best_ask):
        raise SystemExit(f"error: best prices {best} differ from OrderBook's")


@njit(cache=True)
def _touch2(a, b, i):
    a[i] = i
    return i


@njit(cache=True)
def _touch8(a, b, c, d, e, f, g, h, i):
    a[i] = i
    return i


@njit(cache=True)
def _touch16(a, b, c, d, e, f, g, h, a2, b2, c2, d2, e2, f2, g2, h2, i):
    a[i] = i
    return i


def call_costs(n: int = 100_000) -> dict[str, float]:
    """Seconds per call (best of 5 runs of ``n``) from Python into numba, by arrays unboxed."""
    arrays = [np.zeros(8, np.int64) for _ in range(16)]
    obj = Touch()
    calls = {
        "a Python method": lambda: obj.touch(1),
        "numba, 2 arrays": lambda: _touch2(arrays[0], arrays[1], 1),
        "numba, 8 arrays": lambda: _touch8(*arrays[:8], 1),
        "numba, 16 arrays": lambda: _touch16(*arrays, 1),
    }
    out = {}
    for name, call in calls.items():
        call()
        out[name] = min(timeit.repeat(call, number=n, repeat=5)) / n
    return out


@njit(cache=True)
def _draws(rng, n):
    out = np.empty(3 * n)
    for i in range(n):
        out[3 * i] = rng.random()
        out[3 * i + 1] = rng.exponential()
        out[3 * i + 2] = rng.integers(0, 4)
    return out


def same_draws(n: int = 1000) -> bool:
    """numba's Generator, handed NumPy's, draws the same numbers and leaves the state
    where NumPy's own draws would."""
    ours, theirs = np.random.default_rng(7), np.random.default_rng(7)
    got = _draws(ours, n)
    want = [
        x for _ in range(n) for x in (theirs.random(), theirs.exponential(), theirs.integers(4))
    ]
    return bool((got == np.array(want)).all()) and ours.random() == theirs.random()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    raw = make_stream(args.events)
    events = np.array(raw, dtype=np.int64)
    t0 = time.perf_counter()
    per_stream(events[:100])  # compiles (or loads the cache) every kernel
    first = time.perf_counter() - t0
    rounds: dict[str, list[float]] = {"python": [], "per order": [], "per stream": []}
    for _ in range(args.repeat):  # alternated, so a load spell hits all three alike
        seconds, reference = run(raw, book_class=PyOrderBook)
        rounds["python"].append(seconds)
        seconds, book = per_order(events)
        same_as_python(book, reference)
        rounds["per order"].append(seconds)
        seconds, book = per_stream(events)
        same_as_python(book, reference)
        rounds["per stream"].append(seconds)
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}"
    )
    print(f"events: {len(events)}  fills: {len(reference.fills)} (the same in all three)")
    print(f"first compiled call: {first:.2f} s (compiling, or loading numba's cache)")
    python = min(rounds["python"])
    for name, times in rounds.items():
        best = min(times)
        print(
            f"{name:>10}: best of {args.repeat} {best * 1e3:7.1f} ms  "
            f"{len(events) / best / 1e6:6.2f} M events/s  {python / best:5.1f}x OrderBook"
        )
    for name, seconds in call_costs().items():
        print(f"one call, {name}: {seconds * 1e6:.2f} µs")
    print(f"numba's Generator draws NumPy's numbers: {same_draws()}")


if __name__ == "__main__":
    main()
