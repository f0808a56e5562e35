"""What Dask's worker profiler costs a run: the same runs on one worker with the
statistical profiler on and off, alternated, and in a plain process.

The profiler samples the running task's stack every 10 ms from the worker's event-loop
thread (``distributed.worker.profile``); the embedded cluster of ``crossmargin sweep``
(``experiments.sweep.local_cluster``) switches it off.

Run: ``.venv/bin/python benchmarks/dask_profiler.py [--runs 3] [--rounds 2]``
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import _setup  # noqa: F401  (keeps benchmarks/model.py from shadowing the package)
import dask
from dask.distributed import Client, LocalCluster
from sweep import _warm, build

from experiments.sweep import execute_run


def _on_worker(runs, out: str, *, profile: bool) -> list[float]:
    with dask.config.set({"distributed.worker.profile.enabled": profile}):
        cluster = LocalCluster(
            n_workers=1, threads_per_worker=1, dashboard_address=None, host="127.0.0.1"
        )
    with cluster, Client(cluster) as client:
        client.run(_warm)
        return [client.submit(execute_run, r, out, pure=False).result()["seconds"] for r in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    runs = build(16, 1440, 1000).runs[: args.runs]
    times: dict[str, list[float]] = {"plain process": [], "profiler on": [], "profiler off": []}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "runs").mkdir()
        _warm()
        for _ in range(args.rounds):
            times["plain process"] += [execute_run(r, tmp)["seconds"] for r in runs]
            times["profiler on"] += _on_worker(runs, tmp, profile=True)
            times["profiler off"] += _on_worker(runs, tmp, profile=False)
    # Medians: this machine has bursts of slowness lasting a few runs.
    base = statistics.median(times["plain process"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(
            f"{name:>14}: median {med:.2f} s ({100 * (med / base - 1):+.1f}% vs plain), "
            f"mean {statistics.mean(ts):.2f} s; runs {', '.join(f'{t:.2f}' for t in ts)}"
        )


if __name__ == "__main__":
    main()
