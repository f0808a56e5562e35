"""Instructions a model step executes, counted by valgrind: a measure of the work a
change saves that this shared machine's load does not blur.

Wall and CPU times of the same code drift by 10–40% between runs here, more than most
single changes save. The number of instructions the interpreter executes drifts far
less: two counts of one tree agree within 0.5% (10.30 and 10.30 M a step, 9.66 and 9.71
M, 10.91 and 10.87 M; 2026-12-07), so differences above about 1% are resolved. Before
that day, counts of the same code spread by 1.2–2% between runs (20.28–20.53 M a step
in eight counts on 2026-12-06): OpenBLAS's threads, which valgrind counts too, spin for
a while after each use of BLAS, for as long as the machine lets them. The counts now
run with one BLAS thread (``OPENBLAS_NUM_THREADS=1``; the model's results do not depend
on it).

This script runs the model under ``valgrind --tool=cachegrind`` (no cache simulation)
twice, once building the model and once building it and running ``--steps`` steps, and
prints the difference per step: the steps' instructions, without Python's start-up, the
imports and the build. Give ``--before DIR`` (a checkout's parent folder, as for
``PYTHONPATH``) to count another version of the code in the same way, side by side.

Run: ``.venv/bin/python benchmarks/instructions.py [--steps 300] [--scenario baseline]
[--before /tmp/bh0]``. Needs valgrind (``apt-get install valgrind``); a 300-step count
takes about 4 minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

PROGRAM = """
import sys
from crossmargin.model import CrossMarginModel, Scenario
m = CrossMarginModel(Scenario.preset(sys.argv[1]))
m.run_for(int(sys.argv[2]))
"""


def _env(pythonpath: str | None, pycache: str) -> dict:
    """The environment of a count: fixed hash seed (the same set and dict orders each
    run) and every module's bytecode from ``pycache`` (``PYTHONPYCACHEPREFIX``).

    Both trees then start alike: ``make test`` writes ``__pycache__`` into a checkout
    and a fresh worktree has none, and compiling from source counted 0.5 G more
    instructions to build the model (5.43 G against 4.92 G).
    """
    env = dict(os.environ, PYTHONHASHSEED="0", PYTHONPYCACHEPREFIX=pycache)
    env["OPENBLAS_NUM_THREADS"] = "1"  # no BLAS thread spinning while valgrind counts
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return env


def warm(scenario: str, pythonpath: str | None, pycache: str) -> str:
    """Run two steps outside valgrind, so every module the count imports has its
    bytecode in ``pycache``; return which order book the tree runs ("compiled", or
    "python": a worktree whose ``model/_book.pyx`` was never built, or
    ``CROSSMARGIN_PURE_PYTHON=1``)."""
    book = "from crossmargin.model.orderbook import COMPILED\nprint(COMPILED)\n"
    cmd = [sys.executable, "-c", PROGRAM + book, scenario, "2"]
    env = _env(pythonpath, pycache)
    r = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(), check=False
    )
    if r.returncode != 0:
        last = r.stderr.strip().splitlines()[-1:] or ["no output"]
        sys.exit(f"error: {pythonpath or 'this checkout'}: {last[0]}")
    return "compiled" if r.stdout.strip().endswith("True") else "python"


def count(steps: int, scenario: str, pythonpath: str | None, pycache: str) -> int:
    """Instructions (valgrind's ``I refs``) of building ``scenario`` and running
    ``steps`` steps in a fresh interpreter, with the bytecode :func:`warm` wrote."""
    env = _env(pythonpath, pycache)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmd = [
        "valgrind",
        "--tool=cachegrind",
        "--cache-sim=no",
        "--cachegrind-out-file=/dev/null",
        sys.executable,
        "-c",
        PROGRAM,
        scenario,
        str(steps),
    ]
    r = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(), check=False
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", r.stderr)
    if r.returncode != 0 or found is None:
        last = r.stderr.strip().splitlines()[-1:] or ["no output"]
        sys.exit(f"error: valgrind: {last[0]}")
    return int(found.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--scenario", default="baseline", help="a preset's name")
    parser.add_argument("--before", help="another checkout's parent folder, counted alike")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("error: valgrind: not installed (apt-get install valgrind)")
    trees = (
        {"this checkout": None}
        if args.before is None
        else {
            f"before ({args.before})": args.before,
            "this checkout": None,
        }
    )
    jobs = [(name, steps) for name in trees for steps in (0, args.steps)]
    with (
        tempfile.TemporaryDirectory(prefix="instructions-") as pycache,
        ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool,
    ):
        books = {name: warm(args.scenario, path, pycache) for name, path in trees.items()}
        counts = dict(
            zip(
                jobs,
                pool.map(lambda job: count(job[1], args.scenario, trees[job[0]], pycache), jobs),
                strict=True,
            )
        )
    print(f"scenario {args.scenario}, {args.steps} steps (instructions of the steps alone)")
    per_step = {}
    for name in trees:
        steps = counts[(name, args.steps)] - counts[(name, 0)]
        per_step[name] = steps / args.steps
        print(
            f"{name:40s} ({books[name]} book) build {counts[(name, 0)] / 1e9:7.3f} G   "
            f"steps {steps / 1e9:7.3f} G   {per_step[name] / 1e6:8.2f} M a step"
        )
    if len(per_step) == 2:
        a, b = per_step.values()
        print(f"change: {100 * (b / a - 1):+.2f}% instructions a step")


if __name__ == "__main__":
    main()
