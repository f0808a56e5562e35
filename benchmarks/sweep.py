"""Sweep machinery: 16+ runs sequentially in one process vs on 2 Dask workers.

Prints the speed-up and the per-run overhead of the sweep machinery (cluster start,
scheduling, result files), as a share of the mean run time. This machine's speed drifts
by ±10% over minutes, so the comparison is repeated in rounds, alternating which of the
two goes first (sequential then Dask, Dask then sequential, ...), and the medians over
rounds are the figures. ``--pool`` also runs the same runs on a plain
``ProcessPoolExecutor`` of as many processes (no Dask): how much a run slows down when
the cores are all busy is the machine's ceiling on any speed-up.

Each run is the baseline day (1,440 steps, 1,000 leveraged traders) unless
``--steps`` / ``--traders`` say otherwise.

Run: ``.venv/bin/python benchmarks/sweep.py [--runs 16] [--rounds 3] [--workers 2] [--pool]``
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from crossmargin.experiments.design import ExperimentFile, resolve
from crossmargin.experiments.sweep import execute_run, local_cluster, run_sweep
from dask.distributed import Client

ROOT = Path(__file__).resolve().parent.parent


def build(runs: int, steps: int, traders: int):
    seeds = max(1, runs // 4)
    spec = ExperimentFile.model_validate(
        {
            "experiment": {
                "name": "bench",
                "base": str(ROOT / "experiments/scenarios/baseline.toml"),
                "seeds": seeds,
            },
            "overrides": {
                "steps": steps,
                "shocks.0.step": steps // 2,
                "agents.leveraged.count": traders,
            },
            "grid": {"margin_mode": ["cross", "isolated"], "liquidation.fee": [0.001, 0.004]},
        }
    )
    return resolve(spec, root=ROOT)


def _warm() -> None:
    """Every process that times runs first does a short one: imports and first-use costs
    (pandas, pyarrow, numpy) then weigh on no timed run, in the sequential driver and in
    the pool's and the cluster's processes alike."""
    from crossmargin.experiments.runner import run_scenario
    from crossmargin.model import Scenario

    with tempfile.TemporaryDirectory() as tmp:
        run_scenario(Scenario(steps=30), Path(tmp))


def _warm_pool(_: int) -> None:
    _warm()
    time.sleep(0.5)  # so that every process of the pool gets one


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    (path / "runs").mkdir(parents=True)
    return path


def sequential(exp, out: Path) -> dict:
    """All runs one after the other in this process (after one warm-up run, timed)."""
    t0 = time.perf_counter()
    _warm()
    seconds = [execute_run(r, str(_fresh(out)))["seconds"] for r in exp.runs]
    return {"wall": time.perf_counter() - t0, "runs": seconds}


def on_dask(exp, out: Path, workers: int) -> dict:
    """The sweep as ``crossmargin sweep`` runs it: embedded cluster started, warmed, the
    sweep with its result files and summary, the cluster closed; all timed."""
    _fresh(out)
    t0 = time.perf_counter()
    cluster = local_cluster(workers)
    client = Client(cluster)
    client.run(_warm)  # the workers' first import of the model
    t1 = time.perf_counter()
    table = run_sweep(exp, out, client=client, progress=False)
    t2 = time.perf_counter()
    client.close()
    cluster.close()
    t3 = time.perf_counter()
    assert (table["status"] == "ok").all()
    return {
        "wall": t3 - t0,
        "start": t1 - t0,
        "sweep": t2 - t1,
        "close": t3 - t2,
        "runs": table["seconds"].tolist(),
    }


def on_pool(runs, out: Path, workers: int) -> dict:
    """``runs`` on a plain process pool (warm; pool start not timed)."""
    _fresh(out)
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_warm_pool, range(workers)))
        t0 = time.perf_counter()
        statuses = list(pool.map(execute_run, runs, [str(out)] * len(runs)))
        wall = time.perf_counter() - t0
    return {"wall": wall, "runs": [st["seconds"] for st in statuses]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1440)
    parser.add_argument("--traders", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--pool", action="store_true", help="also time a plain process pool")
    args = parser.parse_args()
    exp = build(args.runs, args.steps, args.traders)
    n, w = len(exp.runs), args.workers
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} "
        f"{platform.python_version()}, {os.cpu_count()} cores"
    )
    print(
        f"runs: {n} ({args.steps} steps, {exp.base.agents.leveraged.count} leveraged "
        f"traders each), {args.rounds} rounds, {w} workers"
    )
    tmp = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    rows = []
    try:
        for k in range(args.rounds):
            if k % 2 == 0:
                seq = sequential(exp, tmp / "seq")
                par = on_dask(exp, tmp / "par", w)
            else:
                par = on_dask(exp, tmp / "par", w)
                seq = sequential(exp, tmp / "seq")
            pool = on_pool(exp.runs, tmp / "pool", w) if args.pool else None
            mean_run = sum(seq["runs"]) / n
            par_runs = sum(par["runs"])
            row = {
                "speedup": seq["wall"] / par["wall"],
                "slowdown": par_runs / sum(seq["runs"]) - 1,
                "all": (par["wall"] * w - par_runs) / n / mean_run,
                "machinery": (par["sweep"] * w - par_runs) / n / mean_run,
            }
            rows.append(row)
            order = "sequential, then Dask" if k % 2 == 0 else "Dask, then sequential"
            print(
                f"round {k + 1} ({order}): sequential {seq['wall']:.1f} s (a run {mean_run:.2f} s)"
                f" | Dask {par['wall']:.1f} s = start {par['start']:.1f} + sweep "
                f"{par['sweep']:.1f} + close {par['close']:.1f} (a run {par_runs / n:.2f} s, "
                f"{100 * row['slowdown']:+.1f}%) | speed-up {row['speedup']:.2f}x | overhead per "
                f"run: machinery {100 * row['machinery']:.1f}%, with start and close "
                f"{100 * row['all']:.1f}%"
            )
            if pool:
                print(
                    f"  plain pool of {w} (no Dask, warm): {pool['wall']:.1f} s, a run "
                    f"{sum(pool['runs']) / n:.2f} s ({100 * (sum(pool['runs']) / sum(seq['runs']) - 1):+.1f}%), "
                    f"speed-up {seq['wall'] / pool['wall']:.2f}x"
                )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(key: str) -> float:
        return statistics.median(r[key] for r in rows)

    print(
        f"median over {len(rows)} rounds: speed-up {med('speedup'):.2f}x "
        f"(rounds {', '.join(f'{r["speedup"]:.2f}' for r in rows)}); a run on a worker "
        f"{100 * med('slowdown'):+.1f}% vs alone"
    )
    print(
        "overhead per run of the sweep machinery (scheduling, result files, summary, idle "
        f"tail; start and close excluded): {100 * med('machinery'):.1f}% of a run; all "
        f"included: {100 * med('all'):.1f}%"
    )


if __name__ == "__main__":
    main()
