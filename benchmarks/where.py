"""Where a model step's time goes, Python and compiled code together, sampled by perf.

cProfile sees neither the compiled order path (Cython functions are not profiled) nor
what numpy and the C API spend inside a Python line, and it slows a step several-fold.
This script runs ``--steps`` steps of a preset after ``--warm`` steps under ``perf
record --call-graph dwarf`` with Python's perf trampoline (``python -X perf``, which
names each Python frame in the native stack), then groups the samples by their
innermost Python frame (``agents.py:MarketMaker.act``: everything that frame and the
compiled code it calls spent, up to the next Python frame), and, with ``--inside
NAME``, the samples under one such frame by their innermost compiled function of
``model/_book`` and by their leaf (the C function the CPU was in).

Stacks are cut at ``--stack`` bytes, so deep ones lose their outer frames: use the
shares, not absolute times. Sampling runs only while the steps do (perf's control
fifo: not the imports, the build or the interpreter's exit); samples of a first call's
lazy imports are left out (a frame of ``importlib``, ``inspect``, pydantic or the twins
check among them), and so are other threads' unless ``--all-threads`` (OpenBLAS's
threads spin for a while after the start-up's linear algebra).

Run: ``.venv/bin/python benchmarks/where.py [--scenario baseline] [--steps 1300]
[--warm 100] [--inside MarketMaker.act]``; ``--traders N`` profiles the day of
``benchmarks/scale.py`` with N leveraged traders instead (its build left out; at a
million, ``--warm 10 --steps 20 --frequency 300``: about 30 s of steps, 5,000 samples).
Needs perf (``apt-get install linux-perf``) and permission to use it (root, or
``kernel.perf_event_paranoid`` ≤ 1).
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile

PROGRAM = """
import sys, time
from crossmargin.model import CrossMarginModel, Scenario
if sys.argv[1].startswith("traders="):  # benchmarks/scale.py's day
    sys.path.insert(0, sys.argv[4])
    from scale import scenario
    sc = scenario(int(sys.argv[1][8:]))
else:
    sc = Scenario.preset(sys.argv[1])
m = CrossMarginModel(sc)
with open(sys.argv[5], "w", buffering=1) as ctl:  # perf's control fifo
    ctl.write("enable\\n")
    time.sleep(0.05)  # no acknowledgement is read: let perf switch on
    m.run_for(int(sys.argv[2]))
    m.run_for(int(sys.argv[3]))
    ctl.write("disable\\n")
    time.sleep(0.05)
"""

_SKIP = (
    "importlib",
    "<frozen",
    "inspect.py",
    "pydantic",
    "dataclasses.py",
    "typing.py",
    "textwrap.py",
    "tokenize.py",
    "ast.py",
    "twins.py",
)
_BOOK = re.compile(r"__pyx_[a-z]+_11crossmargin_5model_5_book_\d*")


def samples(perf_data: str, *, all_threads: bool = False) -> list[list[str]]:
    """Each sample's stack as symbol names, leaf first (``perf script``): the main
    thread's only (the one with the most samples), unless ``all_threads`` (OpenBLAS's
    threads spin for a while after the start-up's linear algebra)."""
    out = subprocess.run(
        ["perf", "script", "-i", perf_data, "-F", "tid,ip,sym"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    stacks = []
    for block in out.split("\n\n"):
        lines = block.strip().splitlines()
        if not lines:
            continue
        frames = [line.strip().split(" ", 1) for line in lines[1:]]
        frames = [f[1].replace(" (inlined)", "") for f in frames if len(f) == 2]
        if frames:
            stacks.append((lines[0].split()[0], frames))
    main = collections.Counter(tid for tid, _ in stacks).most_common(1)[0][0] if stacks else ""
    return [frames for tid, frames in stacks if all_threads or tid == main]


def python_frame(stack: list[str]) -> int | None:
    """Index of the innermost Python frame (``py::name:file``), None without one."""
    return next((i for i, f in enumerate(stack) if f.startswith("py::")), None)


def label(frame: str) -> str:
    """``py::Class.method:/path/to/module.py`` → ``module.py:Class.method``."""
    name, _, path = frame[4:].partition(":")
    return f"{os.path.basename(path)}:{name}"


def table(title: str, counts: collections.Counter, total: int, rows: int) -> None:
    print(f"-- {title} ({total:,} samples)")
    for key, n in counts.most_common(rows):
        print(f"{n:7,d} {100 * n / total:5.1f}%  {key}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="baseline", help="a preset's name")
    parser.add_argument(
        "--traders", type=int, help="benchmarks/scale.py's day with this many traders instead"
    )
    parser.add_argument("--steps", type=int, default=1300)
    parser.add_argument("--warm", type=int, default=100, help="steps run before, also sampled")
    parser.add_argument("--frequency", type=int, default=1500, help="samples a second")
    parser.add_argument("--stack", type=int, default=16384, help="bytes of stack per sample")
    parser.add_argument("--inside", help="break down one Python frame, e.g. MarketMaker.act")
    parser.add_argument("--rows", type=int, default=30)
    parser.add_argument("--all-threads", action="store_true", help="not only the main thread")
    args = parser.parse_args()
    if shutil.which("perf") is None:
        sys.exit("error: perf: not installed (apt-get install linux-perf)")
    with tempfile.TemporaryDirectory(prefix="where-") as tmp:
        data = os.path.join(tmp, "perf.data")
        ctl = os.path.join(tmp, "ctl")
        os.mkfifo(ctl)
        # Sampling off (-D -1) until the model is built, and off again before the
        # interpreter's exit (its final collection): the program says when.
        cmd = ["perf", "record", "-q", "-D", "-1", "--control", f"fifo:{ctl}"]
        cmd += ["-F", str(args.frequency)]
        cmd += ["--call-graph", f"dwarf,{args.stack}", "-o", data, "--"]
        what = f"traders={args.traders}" if args.traders else args.scenario
        cmd += [sys.executable, "-X", "perf", "-c", PROGRAM, what]
        cmd += [str(args.warm), str(args.steps), os.path.dirname(os.path.abspath(__file__)), ctl]
        r = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            last = r.stderr.strip().splitlines()[-1:] or ["no output"]
            sys.exit(f"error: perf: {last[0]}")
        stacks = samples(data, all_threads=args.all_threads)
    by_frame: collections.Counter = collections.Counter()
    inner: collections.Counter = collections.Counter()
    leaves: collections.Counter = collections.Counter()
    total = inside = 0
    for stack in stacks:
        i = python_frame(stack)
        if i is not None and any(s in stack[i] for s in _SKIP):
            continue
        total += 1
        key = label(stack[i]) if i is not None else f"(no Python frame) {stack[0]}"
        by_frame[key] += 1
        if args.inside and i is not None and args.inside in stack[i]:
            inside += 1
            compiled = [_BOOK.sub("", f) for f in stack[:i] if "crossmargin" in f]
            inner[compiled[0][:70] if compiled else "(the frame itself, the C API)"] += 1
            leaves[_BOOK.sub("", stack[0])[:70]] += 1
    what = f"scale.py's day, {args.traders:,} traders" if args.traders else args.scenario
    print(f"scenario {what}: {args.warm} + {args.steps} steps, {len(stacks):,} samples")
    table("innermost Python frame", by_frame, total, args.rows)
    if args.inside:
        if not inside:
            sys.exit(f"error: --inside: no sample under a Python frame matching {args.inside!r}")
        table(f"under {args.inside}: innermost compiled function", inner, inside, args.rows)
        table(f"under {args.inside}: leaf", leaves, inside, args.rows)


if __name__ == "__main__":
    main()
