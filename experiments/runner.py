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
import tempfile
from pathlib import Path
from typing import Any

import networkx as nx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..model import CrossMarginModel, Scenario
from .provenance import provenance

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
    """Deterministic Parquet: no index, fixed compression, the same bytes for the same data."""
    table = pa.Table.from_pandas(df, preserve_index=False)
    pq.write_table(table, path, compression="zstd", write_statistics=True)


def simulate(scenario: Scenario, *, progress: bool = False) -> CrossMarginModel:
    """Build the model and run every step (with a tqdm bar on stderr if asked)."""
    model = CrossMarginModel(scenario)
    if progress:
        from tqdm import tqdm

        with tqdm(total=scenario.steps, unit="step", desc=scenario.name, leave=False) as bar:
            while model.running:
                model.run_for(1)
                bar.update(1)
    else:
        model.run_for(scenario.steps)
    return model


def write_results(model: CrossMarginModel, out: Path) -> dict[str, Any]:
    """Write the result files of ``model`` into ``out`` atomically; return the summary."""
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
        for f in tmp.iterdir():
            f.chmod(0o644)
        old = None
        if out.exists() and not any(out.iterdir()):
            out.rmdir()
        elif out.exists():
            if not ((out / "summary.json").is_file() and (out / "scenario.toml").is_file()):
                raise FileExistsError(f"{out}: holds no crossmargin run; not replacing it")
            old = out.with_name(f".{out.name}.old-{os.getpid()}")
            out.rename(old)
        tmp.rename(out)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _stringify(g: nx.DiGraph) -> nx.DiGraph:
    return nx.relabel_nodes(g, {n: str(n) for n in g.nodes})


def run_scenario(scenario: Scenario, out: Path, *, progress: bool = False) -> dict[str, Any]:
    """Simulate ``scenario`` and write its results to ``out``; return the summary."""
    return write_results(simulate(scenario, progress=progress), out)
