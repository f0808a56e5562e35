"""What Dask's own housekeeping costs a run when every core is busy: the same runs on
plain processes, on a cluster with Dask's default settings, and on the embedded cluster
of ``crossmargin sweep`` (``experiments.sweep.local_cluster``: profiler off, event-loop
tick and memory monitor every second, no work stealing), alternated in rounds.

With one worker a run pays almost nothing for Dask's timers (a spare core runs them);
with as many busy workers as cores each timer takes CPU from a run.

Run: ``.venv/bin/python benchmarks/dask_background.py [--workers 2] [--runs 4] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import _setup  # noqa: F401  (keeps benchmarks/model.py from shadowing the package)
from dask.distributed import Client, LocalCluster
from sweep import _warm, _warm_pool, build

from experiments.sweep import execute_run, local_cluster


def _seconds(statuses) -> list[float]:
    return [st["seconds"] for st in statuses]


def _plain(runs, out: str, workers: int) -> list[float]:
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_warm_pool, range(workers)))
        return _seconds(pool.map(execute_run, runs, [out] * len(runs)))


def _on_dask(cluster: LocalCluster, runs, out: str) -> list[float]:
    with cluster, Client(cluster) as client:
        client.run(_warm)
        return _seconds(client.gather(client.map(execute_run, runs, out=out, pure=False)))


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
    runs = build(16, 1440, 1000).runs[: args.runs]
    times: dict[str, list[float]] = {"plain processes": [], "Dask defaults": [], "embedded": []}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "runs").mkdir()
        for _ in range(args.rounds):
            times["plain processes"] += _plain(runs, tmp, args.workers)
            times["Dask defaults"] += _on_dask(_dask_defaults(args.workers), runs, tmp)
            times["embedded"] += _on_dask(local_cluster(args.workers), runs, tmp)
    print(f"{args.workers} workers busy, {args.rounds} rounds x {args.runs} runs per setting")
    # Medians: this machine has bursts of slowness lasting a few runs.
    base = statistics.median(times["plain processes"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(
            f"{name:>15}: median {med:.2f} s ({100 * (med / base - 1):+.1f}% vs plain), "
            f"mean {statistics.mean(ts):.2f} s; runs {', '.join(f'{t:.2f}' for t in ts)}"
        )


if __name__ == "__main__":
    main()
