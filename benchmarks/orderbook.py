"""Order-book throughput on a seeded mixed stream.

About 60% limit adds, 25% cancels of resting orders, 15% market orders, with the
limit prices random-walking around a mid; every fill is recorded. Prints events/s.

Run: ``.venv/bin/python benchmarks/orderbook.py [--events N] [--repeat K]``: the book the
model uses, compiled when it is built (``CROSSMARGIN_PURE_PYTHON=1``: the Python book).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from crossmargin.model.orderbook import COMPILED, OrderBook


def make_stream(n: int, *, seed: int = 7) -> list[tuple]:
    """A reproducible list of ``(op, side, price, qty, id)`` events."""
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    sides = np.where(rng.random(n) < 0.5, 1, -1)
    steps = rng.choice([-1, 0, 1], size=n, p=[0.05, 0.9, 0.05]).cumsum()
    offsets = rng.geometric(0.15, size=n)
    qtys = rng.integers(1, 20, size=n)
    mid0 = 100_000
    live: list[int] = []
    stream = []
    next_id = 1
    for i in range(n):
        if u[i] < 0.60 or not live:
            side = int(sides[i])
            mid = mid0 + int(steps[i])
            price = mid - int(offsets[i]) if side == 1 else mid + int(offsets[i])
            stream.append((0, side, price, int(qtys[i]), next_id))
            live.append(next_id)
            next_id += 1
        elif u[i] < 0.85:
            j = int(rng.integers(len(live)))
            live[j], live[-1] = live[-1], live[j]
            stream.append((1, 0, 0, 0, live.pop()))
        else:
            stream.append((2, int(sides[i]), 0, int(qtys[i]) * 2, 0))
    return stream


def run(stream: list[tuple], *, book_class: type = OrderBook) -> tuple[float, OrderBook]:
    """The stream through a fresh book of ``book_class`` (the model's, by default);
    (seconds, book)."""
    book = book_class(stp=False)
    limit, market, cancel = book.limit, book.market, book.cancel
    t0 = time.perf_counter()
    for op, side, price, qty, oid in stream:
        if op == 0:
            limit(side, price, qty, oid, oid=oid)
        elif op == 1:
            cancel(oid)
        else:
            market(side, qty)
    return time.perf_counter() - t0, book


class Touch:
    """One Python method call that writes a dict entry: the yardstick the compiled
    books' call costs are printed against (``compiled_book.py``, ``cython_book.py``)."""

    def __init__(self) -> None:
        self.a: dict[int, int] = {}

    def touch(self, i: int) -> int:
        self.a[i] = i
        return i


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    stream = make_stream(args.events)
    best = float("inf")
    for _ in range(args.repeat):
        seconds, book = run(stream)
        best = min(best, seconds)
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}"
    )
    print(f"book: {'compiled (model/_book.pyx)' if COMPILED else 'Python (PyOrderBook)'}")
    print(f"events: {len(stream)}  fills: {len(book.fills)}  resting: {book.n_orders}")
    print(
        f"best of {args.repeat}: {best * 1e3:.1f} ms  ->  {len(stream) / best / 1e6:.2f} M events/s"
    )


if __name__ == "__main__":
    main()
