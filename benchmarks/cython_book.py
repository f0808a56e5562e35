"""Where a compiled order path can meet Python: a book as a Cython extension type.

``benchmarks/compiled_book.py`` found that a numba book called once per order gains
little (1.1-1.9x ``OrderBook``): every call unboxes the book's arrays, 0.7-3.8 us. A
Cython extension type (``cdef class``) is called like a Python object, its state held in
C++ containers inside it. This script builds ``benchmarks/cython_book.pyx`` (levels in a
``std::map`` per side, orders in a ``std::vector``; see its docstring), runs
``benchmarks/orderbook.py``'s stream (200,000 events) through it one Python call per
order, and checks its fills one by one and its best prices against ``OrderBook``'s (or
stops). Printed beside it: the stream's own loop with a no-op call (what every variant
pays for Python walking the stream), and one call of a ``cpdef`` method against a
Python method.

It is a measuring device for a compiled order path, not the model's book.

Run: ``.venv/bin/python benchmarks/cython_book.py [--events N] [--repeat K]`` (needs
Cython and a C++ compiler: ``.venv/bin/python -m pip install -e '.[bench]'``); the build
goes to a temporary folder (``--build DIR`` to choose it).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import platform
import sys
import tempfile
import time
import timeit
from pathlib import Path

from crossmargin.model.orderbook import PyOrderBook
from orderbook import Touch, make_stream, run

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "cython_book.pyx"


def build(folder: Path):
    """Compile ``cython_book.pyx`` into ``folder`` (once per source version); the module."""
    try:
        from Cython.Build import cythonize
    except ModuleNotFoundError:
        raise SystemExit(
            "error: Cython: not installed; .venv/bin/python -m pip install -e '.[bench]'"
        ) from None
    from setuptools import Distribution, Extension

    name = "cython_book_" + hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:12]
    folder.mkdir(parents=True, exist_ok=True)
    if not list(folder.glob(f"{name}.*.so")):
        pyx = folder / f"{name}.pyx"
        pyx.write_text(SOURCE.read_text())
        ext = Extension(name, [str(pyx)], language="c++", extra_compile_args=["-O2"])
        dist = Distribution({"ext_modules": cythonize([ext], quiet=True)})
        cmd = dist.get_command_obj("build_ext")
        cmd.build_lib, cmd.build_temp = str(folder), str(folder / "tmp")
        cmd.ensure_finalized()
        cmd.run()
    sys.path.insert(0, str(folder))
    return importlib.import_module(name)


def timed(stream: list[tuple], limit, market, cancel) -> float:
    """Seconds to walk the stream, one call per event (a limit order with its id)."""
    t0 = time.perf_counter()
    for op, side, price, qty, oid in stream:
        if op == 0:
            limit(side, price, qty, oid, oid)
        elif op == 1:
            cancel(oid)
        else:
            market(side, qty)
    return time.perf_counter() - t0


def per_order(ext, stream: list[tuple]):
    """The stream through the Cython book, one Python call per order."""
    book = ext.CythonBook()
    return timed(stream, book.limit, book.market, book.cancel), book


def loop_only(stream: list[tuple]) -> float:
    """The same loop over the stream calling a no-op: Python's own share."""

    def noop(*args) -> int:
        return 0

    return timed(stream, noop, noop, noop)


def same_as_python(book, reference) -> None:
    """Stop unless the Cython book's fills and best prices are ``OrderBook``'s."""
    if book.fills != reference.fills:
        raise SystemExit("error: the Cython book's fills differ from OrderBook's")
    best = (book.best_bid_ or None, None if book.best_ask_ == 1 << 62 else book.best_ask_)
    if best != (reference.best_bid, reference.best_ask):
        raise SystemExit(f"error: best prices {best} differ from OrderBook's")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--build", type=Path, default=Path(tempfile.gettempdir()) / "cython_book")
    args = parser.parse_args()
    t0 = time.perf_counter()
    ext = build(args.build)
    built = time.perf_counter() - t0
    stream = make_stream(args.events)
    rounds: dict[str, list[float]] = {"python": [], "cython": [], "loop": []}
    for _ in range(args.repeat):  # alternated, so a load spell hits all three alike
        seconds, reference = run(stream, book_class=PyOrderBook)
        rounds["python"].append(seconds)
        seconds, book = per_order(ext, stream)
        same_as_python(book, reference)
        rounds["cython"].append(seconds)
        rounds["loop"].append(loop_only(stream))
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}"
    )
    print(f"events: {len(stream)}  fills: {len(reference.fills)} (the same in both books)")
    print(f"build (or load): {built:.2f} s")
    loop = min(rounds["loop"])
    python = min(rounds["python"]) - loop
    for name in ("python", "cython"):
        best = min(rounds[name])
        own = best - loop
        print(
            f"{name:>7}: best of {args.repeat} {best * 1e3:7.1f} ms  "
            f"{len(stream) / best / 1e6:5.2f} M events/s  "
            f"book's own {own / len(stream) * 1e6:.3f} us/event ({python / own:4.1f}x OrderBook)"
        )
    print(f"   loop: best of {args.repeat} {loop * 1e3:7.1f} ms (the stream's loop, a no-op call)")
    obj, cobj = Touch(), ext.Touch()
    for name, call in (("a Python method", obj.touch), ("a cpdef method", cobj.touch)):
        call(1)
        seconds = min(timeit.repeat(lambda c=call: c(1), number=100_000, repeat=5)) / 100_000
        print(f"one call, {name}: {seconds * 1e6:.3f} us")


if __name__ == "__main__":
    main()
