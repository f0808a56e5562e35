"""Sweeps on Dask: every (design point × seed) run, in parallel, resumable and crash-safe.

* An embedded ``LocalCluster`` (one single-threaded worker process per core) by
  default, or an existing cluster by address (``tcp://host:8786``).
* Each run is identified by a hash of its fully resolved scenario and writes its own
  ``DIR/runs/<run_id>.json`` (its parameters and ``summary()``), atomically: a
  temporary name, then a rename. Only a few bytes of status travel back through the
  scheduler.
* Re-running the same command resumes: runs whose file exists are skipped. A run
  that raises, or whose worker dies (Dask's ``KilledWorker`` once the scheduler gives
  up on it), is recorded in ``DIR/runs/<run_id>.error.json`` with the reason and
  resubmitted up to ``retries`` times; the sweep goes on with the others and lists
  the failures in ``summary.parquet``. Ctrl-C stops it and says how to resume.
* At the end ``DIR/summary.parquet`` has one row per run (parameters and every summary
  metric), and ``DIR/experiment.toml`` the resolved design.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import dask
import pandas as pd
from dask.distributed import Client, LocalCluster

from .design import Experiment, Run
from .outputs import atomic_write, claim_sweep_design
from .provenance import provenance
from .runner import write_parquet

__all__ = [
    "SweepInterruptedError",
    "atomic_write",
    "collect_summary",
    "connect",
    "execute_run",
    "housekeeping",
    "local_cluster",
    "provenance_table",
    "quiet_environment",
    "record_error",
    "run_sweep",
]


class SweepInterruptedError(Exception):
    """Ctrl-C during a sweep; the message says how far it got and how to resume."""


def connect(address: str, *, timeout: str = "10s") -> Client:
    """A client of an existing Dask scheduler; an unreachable address raises
    :class:`~crossmargin.experiments.outputs.OutputError`-like one-line errors.

    Examples:
        >>> connect("tcp://127.0.0.1:9", timeout="1s")  # nothing listens there
        Traceback (most recent call last):
        ...
        crossmargin.experiments.outputs.OutputError: --scheduler: cannot reach tcp://127.0.0.1:9 ...
    """
    from .outputs import OutputError

    if not address.startswith(("tcp://", "tls://", "inproc://", "ucx://")) and ":" not in address:
        raise OutputError(f"--scheduler: {address!r} is not an address like tcp://host:8786")
    try:
        return Client(address, timeout=timeout)
    except (OSError, TimeoutError, ValueError) as exc:
        raise OutputError(
            f"--scheduler: cannot reach {address} ({type(exc).__name__}: {exc})"
        ) from None


def execute_run(run: Run, out: str, save_runs: bool = False) -> dict[str, Any]:
    """Run one point on a worker; write its result file; return a small status dict.

    Exceptions are caught and recorded, so a failing run never kills the worker.

    Examples:
        >>> from crossmargin.experiments.design import load_experiment
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "demo.toml").write_text(
        ...     '[experiment]\\nname = "demo"\\nbase = "baseline"\\nseeds = 2\\n'
        ...     "[overrides]\\nsteps = 20\\nshocks = []\\n"
        ... )
        >>> run = load_experiment(folder / "demo.toml").runs[0]
        >>> (folder / "out" / "runs").mkdir(parents=True)
        >>> execute_run(run, str(folder / "out"))["ok"]
        True
        >>> execute_run(run, str(folder / "out"))["seconds"]  # its result is there: not rerun
        0.0
    """
    from ..model import Scenario
    from .runner import simulate, write_results

    runs_dir = Path(out) / "runs"
    t0 = time.perf_counter()
    if (runs_dir / f"{run.run_id}.json").exists():  # finished already: never recomputed
        return {"run_id": run.run_id, "ok": True, "seconds": 0.0}
    try:
        scenario = Scenario.from_dict(run.scenario)
        model = simulate(scenario)
        summary = model.summary()  # the sweep's provenance is in experiment.toml
        if save_runs:
            write_results(model, runs_dir / run.run_id)
        seconds = time.perf_counter() - t0
        record = {
            "run_id": run.run_id,
            "index": run.index,
            "seed": run.seed,
            "params": run.params,
            "summary": summary,
            "seconds": seconds,
        }
        atomic_write(runs_dir / f"{run.run_id}.json", json.dumps(record, sort_keys=True))
        (runs_dir / f"{run.run_id}.error.json").unlink(missing_ok=True)
        return {"run_id": run.run_id, "ok": True, "seconds": seconds}
    except Exception as exc:  # recorded, retried by the driver
        message = f"{type(exc).__name__}: {exc}"
        record_error(run, runs_dir, message, traceback.format_exc())
        return {
            "run_id": run.run_id,
            "ok": False,
            "error": message,
            "seconds": time.perf_counter() - t0,
        }


def record_error(run: Run, runs_dir: Path, message: str, tb: str = "") -> None:
    """Write (or update) ``<run_id>.error.json``: the reason, the traceback if any, and
    how many attempts failed so far.

    Examples:
        >>> from crossmargin.experiments.design import load_experiment
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "demo.toml").write_text(
        ...     '[experiment]\\nname = "demo"\\nbase = "baseline"\\nseeds = 1\\n'
        ...     "[overrides]\\nsteps = 20\\nshocks = []\\n"
        ... )
        >>> run = load_experiment(folder / "demo.toml").runs[0]
        >>> record_error(run, folder, "RuntimeError: boom")
        >>> record_error(run, folder, "RuntimeError: boom")
        >>> json.loads((folder / f"{run.run_id}.error.json").read_text())["attempts"]
        2
    """
    err_path = runs_dir / f"{run.run_id}.error.json"
    attempts = 1
    if err_path.exists():
        try:
            attempts = json.loads(err_path.read_text()).get("attempts", 0) + 1
        except (OSError, ValueError):
            attempts = 1
    record = {
        "run_id": run.run_id,
        "params": run.params,
        "seed": run.seed,
        "error": message,
        "traceback": tb,
        "attempts": attempts,
    }
    atomic_write(err_path, json.dumps(record, sort_keys=True, default=str))


def _clean_partials(runs_dir: Path) -> int:
    """Remove temporary files left by a killed sweep (never a finished result)."""
    n = 0
    for p in runs_dir.glob(".*"):
        if p.is_dir():
            import shutil

            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        n += 1
    return n


#: Dask settings of the embedded cluster. A run is one task of seconds to minutes, so
#: Dask's sub-second housekeeping only takes CPU from the runs once every core is busy:
#: with Dask's defaults a run on 2 busy workers took 6–10% longer than on 2 plain
#: processes, with these 0–4% (``benchmarks/dask_background.py``, two runs). Each setting keeps its
#: purpose at a coarser grain; nothing a sweep uses is switched off.
QUIET = {
    # The statistical profiler samples the running task's stack every 10 ms for a
    # dashboard the embedded cluster does not have.
    "distributed.worker.profile.enabled": False,
    # Event-loop health check, every 20 ms in each of scheduler, nannies and workers; it
    # warns of a loop blocked longer than 3 s, which 1 s still catches.
    "distributed.admin.tick.interval": "1s",
    # CPU/memory/network counters for the dashboard, every 500 ms.
    "distributed.admin.system-monitor.interval": "5s",
    # Memory-limit checks of nannies and workers, every 100 ms; a run grows over
    # seconds, not milliseconds.
    "distributed.worker.memory.monitor-interval": "1s",
    # Nothing to steal or rebalance: runs wait on the scheduler (saturation 1.0) and
    # return a few bytes, so the stealing and active-memory-manager loops are idle work.
    "distributed.scheduler.work-stealing": False,
    "distributed.scheduler.active-memory-manager.start": False,
    # A worker holds exactly the run it is running, the rest wait on the scheduler, so
    # the last runs go to whichever worker frees first (one round trip per run, in
    # milliseconds).
    "distributed.scheduler.worker-saturation": 1.0,
}


def quiet_environment() -> dict[str, str]:
    """:data:`QUIET` as ``DASK_…`` environment variables, for the scheduler and workers of
    an existing cluster (Dask reads them at start; the README lists them).

    Examples:
        >>> env = quiet_environment()
        >>> env["DASK_DISTRIBUTED__SCHEDULER__WORK_STEALING"]
        'False'
    """
    return {
        "DASK_" + key.upper().replace(".", "__").replace("-", "_"): str(value)
        for key, value in QUIET.items()
    }


def housekeeping(dask_worker=None, dask_scheduler=None) -> dict[str, float]:
    """The periodic callbacks of a Dask worker, nanny or scheduler and their intervals
    in ms: ``client.run(housekeeping)`` / ``client.run_on_scheduler(housekeeping)`` show
    whether a cluster runs with :data:`QUIET`.

    Examples:
        >>> with local_cluster(1, processes=False) as cluster, Client(cluster) as client:
        ...     "stealing" in client.run_on_scheduler(housekeeping)  # no work stealing
        False
    """
    server = dask_worker or dask_scheduler
    return {name: pc.callback_time for name, pc in server.periodic_callbacks.items()}


def local_cluster(n_workers: int | None = None, *, processes: bool = True) -> LocalCluster:
    """The embedded cluster: one single-threaded worker per core, on loopback, no
    dashboard, with Dask's periodic housekeeping made coarse (:data:`QUIET`).

    Workers of an existing cluster keep their own settings; started with
    :func:`quiet_environment` they do the same.

    Examples:
        >>> with local_cluster(1, processes=False) as cluster:
        ...     len(cluster.workers)
        1
    """
    n = n_workers or os.cpu_count() or 1
    # Worker processes listen on loopback only; threads share one process
    # (in-process transport, no sockets at all).
    net = {"host": "127.0.0.1"} if processes else {}
    with dask.config.set(QUIET):
        return LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
            **net,
        )


def run_sweep(
    experiment: Experiment,
    out: Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    retries: int | None = None,
    processes: bool = True,
    progress: bool = True,
    client: Client | None = None,
    clear: bool = False,
) -> pd.DataFrame:
    """Run every unfinished run of ``experiment`` into ``out``; return the summary table.

    ``client``: an already connected Dask client to use (and leave open) instead of
    starting a local cluster or connecting to ``scheduler``. ``clear``: ``out`` holds
    a sweep of another experiment that the user asked to replace (``--overwrite``):
    its run files go first.

    Examples:
        >>> from crossmargin.experiments.design import load_experiment
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "demo.toml").write_text(
        ...     '[experiment]\\nname = "demo"\\nbase = "baseline"\\nseeds = 2\\n'
        ...     "[overrides]\\nsteps = 20\\nshocks = []\\n"
        ... )
        >>> exp = load_experiment(folder / "demo.toml")
        >>> df = run_sweep(exp, folder / "out", workers=1, processes=False, progress=False)
        >>> df[["seed", "status"]]
           seed status
        0     7     ok
        1     8     ok
    """
    out = Path(out)
    client_owned = connect(scheduler) if scheduler is not None and client is None else None
    runs_dir = out / "runs"
    design = experiment.to_toml() + provenance_table()
    out.mkdir(parents=True, exist_ok=True)
    if clear:  # --overwrite: another experiment's sweep goes
        if runs_dir.is_dir() and (out / "experiment.toml").is_file():
            for f in runs_dir.glob("*.json"):
                f.unlink()
        atomic_write(out / "experiment.toml", design)
    else:  # the folder is this experiment's from here on, or OutputError
        claim_sweep_design(out, experiment, design)
    runs_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o755)
    os.chmod(runs_dir, 0o755)
    _clean_partials(runs_dir)
    if client_owned is not None:
        client = client_owned
    retries = experiment.retries if retries is None else retries
    todo = [r for r in experiment.runs if not (runs_dir / f"{r.run_id}.json").exists()]
    done_before = len(experiment.runs) - len(todo)
    failed: dict[str, str] = {}
    if todo and client is not None:
        failed = _drive(client, experiment, todo, out, retries, done_before, progress)
    elif todo:
        cluster = local_cluster(workers, processes=processes)
        client = Client(cluster)
        try:
            failed = _drive(client, experiment, todo, out, retries, done_before, progress)
        finally:
            client.close()
            cluster.close()
    if client_owned is not None:
        client_owned.close()
    # A worker killed while it wrote a result leaves its temporary file (its own clean-up
    # never ran); every run is settled here, so none is still being written.
    _clean_partials(runs_dir)
    table = collect_summary(experiment, out)
    write_parquet(table, out / ".summary.parquet.tmp")
    os.replace(out / ".summary.parquet.tmp", out / "summary.parquet")
    if failed:
        atomic_write(out / "failed.json", json.dumps(failed, indent=2, sort_keys=True))
    else:
        (out / "failed.json").unlink(missing_ok=True)
    return table


#: Seconds a sweep waits with runs pending and no worker alive (every worker dead and
#: not restarted) before it records those runs as failed and finishes.
NO_WORKER_TIMEOUT = 120.0


def _drive(client, experiment, todo, out, retries, done_before, progress) -> dict[str, str]:
    from dask.distributed import wait
    from tqdm import tqdm

    # Longest first (Graham's LPT rule): a sweep whose runs differ in size does not end
    # with one worker finishing a long run while the others idle. Equal sizes keep the
    # design order.
    todo = sorted(todo, key=lambda r: -r.work)
    by_id = {r.run_id: r for r in todo}
    save = experiment.spec.experiment.save_runs
    attempts = dict.fromkeys(by_id, 0)
    runs_dir = Path(out) / "runs"
    # The driver holds a run's future only until it has read its status: a finished
    # run's result (a few bytes) must not stay wanted, or a worker's death would make
    # the scheduler recompute every run that had finished on it.
    pending = {
        client.submit(execute_run, r, str(out), save, key=f"run-{r.run_id}-0", pure=False): r.run_id
        for r in todo
    }
    failed: dict[str, str] = {}
    done = 0
    bar = tqdm(
        total=len(experiment.runs),
        initial=done_before,
        unit="run",
        desc=experiment.name,
        disable=not progress or not sys.stderr.isatty(),
    )
    no_worker_since: float | None = None
    try:
        while pending:
            try:
                finished, _ = wait(list(pending), timeout=5, return_when="FIRST_COMPLETED")
            except TimeoutError:
                finished = set()
            read = []
            for fut in finished:
                try:
                    read.append((fut, fut.result(timeout=5)))
                except TimeoutError:
                    # Finished, but its result went with its worker before it was read:
                    # the scheduler computes it again (or, with every worker dead,
                    # never), so the run stays pending.
                    continue
                except Exception as exc:  # the worker died (KilledWorker) or the task was lost
                    message = f"{type(exc).__name__}: {exc}"
                    record_error(by_id[pending[fut]], runs_dir, message)
                    read.append((fut, {"run_id": pending[fut], "ok": False, "error": message}))
            if not read:
                # Nothing read: a run may be long, or every worker may be dead.
                if client.scheduler_info().get("workers"):
                    no_worker_since = None
                    continue
                no_worker_since = no_worker_since or time.monotonic()
                if time.monotonic() - no_worker_since < NO_WORKER_TIMEOUT:
                    continue
                for fut, rid in list(pending.items()):
                    message = f"no worker alive for {NO_WORKER_TIMEOUT:.0f} s (workers died)"
                    record_error(by_id[rid], runs_dir, message)
                    failed[rid] = message
                    fut.release()
                    bar.update(1)
                pending.clear()
                break
            no_worker_since = None
            for fut, status in read:
                rid = pending.pop(fut)
                fut.release()
                if status["ok"]:
                    failed.pop(rid, None)
                    done += 1
                    bar.update(1)
                else:
                    attempts[rid] += 1
                    if attempts[rid] <= retries:
                        nxt = client.submit(
                            execute_run,
                            by_id[rid],
                            str(out),
                            save,
                            key=f"run-{rid}-{attempts[rid]}",
                            pure=False,
                        )
                        pending[nxt] = rid
                    else:
                        failed[rid] = status["error"]
                        bar.update(1)
            bar.set_postfix(done=done_before + done, failed=len(failed))
    except KeyboardInterrupt:
        bar.close()
        kept = len(list(runs_dir.glob("*.json"))) - len(list(runs_dir.glob("*.error.json")))
        raise SweepInterruptedError(
            f"{kept} of {len(experiment.runs)} runs finished and kept in {out}/runs/; "
            "run the same command again to resume"
        ) from None
    bar.close()
    return failed


def provenance_table() -> str:
    """``[provenance]`` for experiment.toml: what made the sweep.

    Examples:
        >>> provenance_table().splitlines()[1]
        '[provenance]'
    """
    import tomli_w

    p = {k: v for k, v in provenance().items() if v is not None}
    return "\n" + tomli_w.dumps({"provenance": p})


def collect_summary(experiment: Experiment, out: Path) -> pd.DataFrame:
    """One row per run, in design order: id, seed, parameters, flattened summary metrics,
    and ``status`` (``ok``, ``failed`` with ``error``, or ``missing``).

    Examples:
        >>> from crossmargin.experiments.design import load_experiment
        >>> import tempfile
        >>> folder = Path(tempfile.mkdtemp())
        >>> _ = (folder / "demo.toml").write_text(
        ...     '[experiment]\\nname = "demo"\\nbase = "baseline"\\nseeds = 2\\n'
        ...     "[overrides]\\nsteps = 20\\nshocks = []\\n"
        ... )
        >>> exp = load_experiment(folder / "demo.toml")
        >>> (folder / "runs").mkdir()
        >>> _ = execute_run(exp.runs[0], str(folder))
        >>> collect_summary(exp, folder)[["seed", "status"]]  # the second never ran
           seed   status
        0     7       ok
        1     8  missing
    """
    runs_dir = Path(out) / "runs"
    rows = []
    for r in experiment.runs:
        row: dict[str, Any] = {"run_id": r.run_id, "point": r.index, "seed": r.seed}
        row.update({f"param.{k}": v for k, v in r.params.items()})
        path = runs_dir / f"{r.run_id}.json"
        err = runs_dir / f"{r.run_id}.error.json"
        if path.exists():
            rec = json.loads(path.read_text())
            row["status"] = "ok"
            row["error"] = ""
            row["seconds"] = rec["seconds"]
            row.update(_flatten(rec["summary"]))
        elif err.exists():
            row["status"] = "failed"
            row["error"] = json.loads(err.read_text())["error"]
        else:
            row["status"] = "missing"
            row["error"] = ""
        rows.append(row)
    df = pd.DataFrame(rows)
    for col in df.columns:
        if df[col].dtype == object and col not in ("run_id", "status", "error", "scenario"):
            df[col] = df[col].map(lambda v: json.dumps(v) if isinstance(v, list | dict) else v)
    return df


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            flat.update(_flatten(v, key + "."))
        else:
            flat[key] = v
    return flat
