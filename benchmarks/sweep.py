"""Sweep machinery: 16+ runs sequentially in one process vs on 2 Dask workers.

Prints the speed-up and the per-run overhead of the sweep machinery (cluster start,
scheduling, result files), as a share of the mean run time. For scale it also runs the
same runs on a plain ``ProcessPoolExecutor`` of as many processes (no Dask): how much a
run slows down when the cores are all busy is the machine's ceiling on any speed-up.

Each run is the baseline day (1,440 steps, 1,000 leveraged traders) unless
``--steps`` / ``--traders`` say otherwise.

Run: ``.venv/bin/python benchmarks/sweep.py [--runs 16] [--steps 1440] [--traders 1000] [--workers 2]``
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import _setup  # noqa: F401  (keeps benchmarks/model.py from shadowing the package)
from dask.distributed import Client

from experiments.design import ExperimentFile, resolve
from experiments.sweep import execute_run, local_cluster, run_sweep

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
    from experiments.runner import run_scenario
    from model import Scenario

    with tempfile.TemporaryDirectory() as tmp:
        run_scenario(Scenario(steps=30), Path(tmp))


def _warm_pool(_: int) -> None:
    _warm()
    time.sleep(0.5)  # so that every process of the pool gets one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=16)
    parser.add_argument("--steps", type=int, default=1440)
    parser.add_argument("--traders", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    exp = build(args.runs, args.steps, args.traders)
    n = len(exp.runs)
    tmp = Path(tempfile.mkdtemp(prefix="sweep-bench-"))
    try:
        seq_dir = tmp / "seq"
        (seq_dir / "runs").mkdir(parents=True)
        t0 = time.perf_counter()
        _warm()
        run_seconds = [execute_run(r, str(seq_dir))["seconds"] for r in exp.runs]
        sequential = time.perf_counter() - t0
        pool_dir = tmp / "pool"
        (pool_dir / "runs").mkdir(parents=True)
        with ProcessPoolExecutor(args.workers) as pool:
            list(pool.map(_warm_pool, range(args.workers)))
            t0 = time.perf_counter()
            statuses = list(pool.map(execute_run, exp.runs, [str(pool_dir)] * n))
            pooled = time.perf_counter() - t0
        pool_runs = sum(st["seconds"] for st in statuses)
        t0 = time.perf_counter()
        cluster = local_cluster(args.workers)
        client = Client(cluster)
        client.run(_warm)  # the workers' first import of the model
        t1 = time.perf_counter()
        table = run_sweep(exp, tmp / "par", client=client, progress=False)
        t2 = time.perf_counter()
        client.close()
        cluster.close()
        t3 = time.perf_counter()
        parallel = t3 - t0
        startup, closing, sweeping = t1 - t0, t3 - t2, t2 - t1
        assert (table["status"] == "ok").all()
        par_runs = float(table["seconds"].sum())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mean_run = sum(run_seconds) / n
    overhead = (parallel * args.workers - par_runs) / n
    per_run = (sweeping * args.workers - par_runs) / n
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores"
    )
    print(
        f"runs: {n} ({args.steps} steps, {exp.base.agents.leveraged.count} leveraged traders each)"
    )
    print(f"sequential: {sequential:.1f} s (mean run {mean_run:.2f} s)")
    print(
        f"dask, {args.workers} workers: {parallel:.1f} s = start {startup:.1f} s (cluster and "
        f"the workers' imports) + sweep {sweeping:.1f} s + close {closing:.1f} s"
    )
    print(f"mean run on a worker: {par_runs / n:.2f} s (vs {mean_run:.2f} s alone)")
    print(f"speed-up: {sequential / parallel:.2f}x")
    print(
        f"machine ceiling: on {args.workers} plain processes (no Dask, warm) a run takes "
        f"{pool_runs / n:.2f} s ({100 * (pool_runs / sum(run_seconds) - 1):+.1f}% vs alone); "
        f"speed-up {sequential / pooled:.2f}x, at most {args.workers * sum(run_seconds) / pool_runs:.2f}x "
        "with no overhead at all"
    )
    print(
        f"overhead per run, all included: {overhead:.3f} s = {100 * overhead / mean_run:.1f}% of a run"
    )
    print(
        f"overhead per run of the sweep machinery (scheduling, result files, summary; "
        f"start and close excluded): {per_run:.3f} s = {100 * per_run / mean_run:.1f}% of a run"
    )


if __name__ == "__main__":
    main()
