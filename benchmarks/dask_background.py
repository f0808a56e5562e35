"""What Dask's own housekeeping costs a run when every core is busy: the same runs on
one plain process alone (the other cores idle), on as many plain processes as workers,
on a cluster with Dask's default settings, and on the embedded cluster of ``crossmargin
sweep`` (``experiments.sweep.local_cluster``: profiler off, event-loop tick and memory
monitor every second, no work stealing), alternated in rounds. Also the CPU an idle
cluster of each kind uses (driver, scheduler, nannies and workers, from psutil).

With one worker a run pays almost nothing for Dask's timers (a spare core runs them);
with as many busy workers as cores each timer takes CPU from a run.

Run: ``.venv/bin/python benchmarks/dask_background.py [--workers 2] [--runs 4] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import psutil
from crossmargin.experiments.sweep import execute_run, local_cluster
from dask.distributed import Client, LocalCluster
from sweep import _warm, build, on_pool


def _idle_cpu(seconds: float) -> float:
    """CPU used by this process and its children over ``seconds``, in % of one core."""
    procs = [psutil.Process(), *psutil.Process().children(recursive=True)]
    before = [sum(p.cpu_times()[:2]) for p in procs]
    time.sleep(seconds)
    return (
        100 * sum(sum(p.cpu_times()[:2]) - b for p, b in zip(procs, before, strict=True)) / seconds
    )


def _on_dask(cluster: LocalCluster, runs, out: str, idle: list[float]) -> list[float]:
    with cluster, Client(cluster) as client:
        client.run(_warm)
        idle.append(_idle_cpu(5.0))
        statuses = client.gather(client.map(execute_run, runs, out=out, pure=False))
        return [st["seconds"] for st in statuses]


def _dask_defaults(workers: int) -> LocalCluster:
    return LocalCluster(
        n_workers=workers, threads_per_worker=1, dashboard_address=None, host="127.0.0.1"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=4, help="runs per setting per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    w = args.workers
    runs = build(16, 1440, 1000).runs[: args.runs]
    times: dict[str, list[float]] = {
        "one process alone": [],
        f"{w} plain processes": [],
        "Dask defaults": [],
        "embedded": [],
    }
    idle: dict[str, list[float]] = {"Dask defaults": [], "embedded": []}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        for _ in range(args.rounds):
            times["one process alone"] += on_pool(runs, out, 1)["runs"]
            times[f"{w} plain processes"] += on_pool(runs, out, w)["runs"]
            times["Dask defaults"] += _on_dask(
                _dask_defaults(w), runs, str(out), idle["Dask defaults"]
            )
            times["embedded"] += _on_dask(local_cluster(w), runs, str(out), idle["embedded"])
    print(f"{w} workers busy, {args.rounds} rounds x {args.runs} runs per setting")
    # Medians: this machine has bursts of slowness lasting a few runs.
    base = statistics.median(times[f"{w} plain processes"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(
            f"{name:>18}: median {med:.2f} s ({100 * (med / base - 1):+.1f}% vs plain), "
            f"mean {statistics.mean(ts):.2f} s; runs {', '.join(f'{t:.2f}' for t in ts)}"
        )
    for name, xs in idle.items():
        print(
            f"idle cluster, {name}: {statistics.median(xs):.1f}% of a core (median over "
            f"{len(xs)} clusters, 5 s each; driver, scheduler, nannies and workers)"
        )


if __name__ == "__main__":
    main()
