"""Run one scenario end to end and write its result files atomically.

The files of DESIGN §5: ``model.parquet`` (one row per step), ``events.parquet``,
``trades.parquet``, ``cascade.graphml``, ``exposure.graphml``, ``summary.json`` and
``scenario.toml`` (the fully resolved scenario). Everything is written into a
temporary sibling directory that is renamed into place at the end, so a run that
fails or is killed leaves nothing half-written; files are mode 0644. A folder that is
already there is replaced only if it holds an earlier run (the command line's
``--overwrite``, checked by :mod:`~crossmargin.experiments.outputs` before the run).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..model import CrossMarginModel, Scenario
from .provenance import provenance

__all__ = ["RESULT_FILES", "run_scenario", "simulate", "write_parquet", "write_results"]

RESULT_FILES = (
    "model.parquet",
    "events.parquet",
    "trades.parquet",
    "cascade.graphml",
    "exposure.graphml",
    "summary.json",
    "scenario.toml",
)


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Deterministic Parquet: no index, fixed compression, the same bytes for the same data.

    Examples:
        >>> folder = Path(tempfile.mkdtemp())
        >>> df = pd.DataFrame({"step": [1, 2], "price": [100.0, 101.5]})
        >>> write_parquet(df, folder / "a.parquet")
        >>> write_parquet(df, folder / "b.parquet")
        >>> (folder / "a.parquet").read_bytes() == (folder / "b.parquet").read_bytes()
        True
    """
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path, compression="zstd", write_statistics=True)


def simulate(scenario: Scenario, *, progress: bool = False) -> CrossMarginModel:
    """Build the model and run every step (with a tqdm bar on stderr if asked and
    stderr is a terminal: a log file gets no carriage-return frames).

    Examples:
        >>> m = simulate(Scenario.preset("baseline").replace(steps=30, shocks=[]))
        >>> m.t, m.running
        (30, False)
    """
    model = CrossMarginModel(scenario)
    if progress and sys.stderr.isatty():
        from tqdm import tqdm

        with tqdm(total=scenario.steps, unit="step", desc=scenario.name, leave=False) as bar:
            while model.running:
                model.run_for(1)
                bar.update(1)
    else:
        model.run_for(scenario.steps)
    return model


def write_results(model: CrossMarginModel, out: Path) -> dict[str, Any]:
    """Write the result files of ``model`` into ``out``; return the summary.

    The files are written into a temporary sibling folder first. A new or empty
    ``out`` (or one holding only this run's claim) is then replaced by it in one
    rename; into a folder that holds other things (``--overwrite``) the files
    crossmargin wrote there before are removed and the new ones moved in one by one,
    the manifest last, and nothing else in it is touched.

    Examples:
        >>> m = simulate(Scenario.preset("baseline").replace(steps=20, shocks=[]))
        >>> out = Path(tempfile.mkdtemp()) / "run"
        >>> summary = write_results(m, out)
        >>> summary["steps"], (out / "summary.json").is_file(), (out / "scenario.toml").is_file()
        (20, True, True)
    """
    from .outputs import CLAIM, MANIFEST, read_manifest, remove_written, write_manifest

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    try:
        summary = model.summary()
        summary["provenance"] = provenance()
        write_parquet(model.model_frame(), tmp / "model.parquet")
        write_parquet(model.events, tmp / "events.parquet")
        write_parquet(model.trades, tmp / "trades.parquet")
        if model.scenario.collect_agents:
            write_parquet(model.agent_frame(), tmp / "agents.parquet")
        nx.write_graphml(_stringify(model.cascade_graph), tmp / "cascade.graphml")
        nx.write_graphml(model.exposure_graph, tmp / "exposure.graphml")
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        (tmp / "scenario.toml").write_text(model.scenario.to_toml())
        names = sorted(f.name for f in tmp.iterdir())
        for f in tmp.iterdir():
            f.chmod(0o644)
        others = [p for p in out.iterdir() if p.name != CLAIM] if out.is_dir() else []
        if not others:
            write_manifest(tmp, names)
            if out.is_dir():
                (out / CLAIM).unlink(missing_ok=True)
                out.rmdir()
            tmp.rename(out)
        else:
            remove_written(out, read_manifest(out))
            for name in names:
                os.replace(tmp / name, out / name)
            write_manifest(out, names)
            (out / MANIFEST).chmod(0o644)
            tmp.rmdir()
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _stringify(g: nx.DiGraph) -> nx.DiGraph:
    return nx.relabel_nodes(g, {n: str(n) for n in g.nodes})


def run_scenario(scenario: Scenario, out: Path, *, progress: bool = False) -> dict[str, Any]:
    """Simulate ``scenario`` and write its results to ``out``; return the summary.

    Examples:
        >>> out = Path(tempfile.mkdtemp()) / "run"
        >>> summary = run_scenario(Scenario.preset("baseline").replace(steps=30, shocks=[]), out)
        >>> summary["steps"], sorted(p.name for p in out.glob("*.parquet"))
        (30, ['events.parquet', 'model.parquet', 'trades.parquet'])
    """
    return write_results(simulate(scenario, progress=progress), out)
