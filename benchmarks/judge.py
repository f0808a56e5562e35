"""Judging the committed validation measurements: the statistics alone, no model run.

Run: ``.venv/bin/python benchmarks/judge.py [--repeat K]``. Times ``crossmargin
validate --from-data docs/validation/run`` (every registered criterion's seed bootstrap,
the Clauset–Shalizi–Newman goodness-of-fit bootstrap, the figures and the report) in a
fresh process, wall and CPU, and checks that the table is the one committed in
``docs/validation.md``. Point ``PYTHONPATH`` at another checkout to time its code on the
same data.

``--estimates FILE`` instead judges every committed measurement folder
(``docs/validation/run``, ``world*``, ``multivenue``) in this process and writes every
estimate (``repr`` of value, interval and p, the note, the per-lag table, the verdict) to
FILE as JSON, with the seconds spent judging: two checkouts' files compare with ``cmp``.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _table(text: str) -> list[str]:
    return [ln for ln in text.split("\n## ")[0].splitlines() if ln.startswith("| ")]


def estimates(path: Path) -> float:
    """Judge every committed measurement folder; write every estimate to ``path``;
    return the seconds spent judging."""
    import json

    import pandas as pd
    from crossmargin.analysis.validation import CRITERIA, MULTIVENUE, load_criteria, suite

    out, seconds = {}, 0.0
    for folder in sorted((ROOT / "docs/validation").iterdir()):
        if not (folder / "data").is_dir():
            continue
        crit = load_criteria(MULTIVENUE if folder.name == "multivenue" else CRITERIA)
        for spec in crit.checks:
            table = folder / "data" / f"{spec['name']}.parquet"
            if not table.exists():
                continue
            df = pd.read_parquet(table)
            t0 = time.perf_counter()
            results = suite.judge(spec, df, crit.defaults)
            seconds += time.perf_counter() - t0
            for r in results:
                e = r.estimate
                lags = None if e.per_lag is None else e.per_lag.to_json(double_precision=15)
                out[f"{folder.name}/{spec['name']}/{r.id}"] = [
                    *(repr(x) for x in (e.value, e.lo, e.hi, e.p)),
                    e.note,
                    lags,
                    r.passed,
                ]
    path.write_text(json.dumps(out, indent=0, sort_keys=True))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--estimates", type=Path, default=None)
    args = parser.parse_args()
    if args.estimates is not None:
        seconds = estimates(args.estimates)
        print(f"judged every committed folder in {seconds:.1f} s -> {args.estimates}")
        return
    committed = _table((ROOT / "docs/validation.md").read_text().split("\n---\n", 1)[1])
    cmd = [sys.executable, "-m", "crossmargin.experiments.cli", "validate", "--from-data"]
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "judged"
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(
                [*cmd, str(ROOT / "docs/validation/run"), "--out", str(out)],
                cwd=tmp,
                capture_output=True,
                check=False,
            )
            wall = time.perf_counter() - t0
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            same = _table((out / "validation.md").read_text()) == committed
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        print(f"judge: {wall:.1f} s wall, {cpu:.1f} s CPU; committed table reproduced: {same}")


if __name__ == "__main__":
    main()
