"""Start-up of the command line: how long a ``crossmargin`` command takes to answer
when it has nothing to simulate (help, a bad argument, a missing file).

Run: ``.venv/bin/python benchmarks/startup.py [--repeat K]``. Each command runs ``K``
times in a fresh process (``python -m crossmargin.experiments.cli ...``, as the tests
call it); the median and the fastest wall time are printed, with the exit code of the
last one (a bad input must still exit 2). Point ``PYTHONPATH`` at another checkout to
time its code. The test suite starts about a hundred such processes, most of them to
check an error message.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from crossmargin.analysis.report import RUN_INPUTS

COMMANDS = {
    "--help": ["--help"],
    "run, a missing scenario": ["run", "no-such-scenario.toml"],
    "sweep, a missing experiment": ["sweep", "no-such-experiment.toml"],
    "replay, a missing file": ["replay", "no-such-file.csv"],
    "report, not a results folder": ["report", "."],
    "report, a corrupt run folder": ["report", "corrupt"],
    "presets": ["presets"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    cli = [sys.executable, "-m", "crossmargin.experiments.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        # A run folder with every file a report reads, none of them readable (the test
        # suite's corrupt-folder cases): refused after the folder check, while reading.
        corrupt = Path(tmp, "corrupt")
        corrupt.mkdir()
        for name in RUN_INPUTS:
            (corrupt / name).write_text("{}" if name.endswith(".json") else "not a table")
        for name, argv in COMMANDS.items():
            times, code = [], None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                r = subprocess.run([*cli, *argv], cwd=tmp, capture_output=True, check=False)
                times.append(time.perf_counter() - t0)
                code = r.returncode
            print(
                f"{name:32s} median {statistics.median(times):.2f} s, "
                f"fastest {min(times):.2f} s, exit {code}",
                flush=True,
            )


if __name__ == "__main__":
    main()
