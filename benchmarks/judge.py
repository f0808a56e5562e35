"""Judging the committed validation measurements: the statistics alone, no model run.

Run: ``.venv/bin/python benchmarks/judge.py [--repeat K]``. Times ``crossmargin
validate --from-data docs/validation/run`` (every registered criterion's seed bootstrap,
the Clauset–Shalizi–Newman goodness-of-fit bootstrap, the figures and the report) in a
fresh process, wall and CPU, and checks that the table is the one committed in
``docs/validation.md``. Point ``PYTHONPATH`` at another checkout to time its code on the
same data.
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
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
