"""Imported first by every benchmark script: run as a script, a benchmark's folder is
first on ``sys.path`` and ``benchmarks/model.py`` would shadow the ``model`` package."""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.modules.pop("model", None)
