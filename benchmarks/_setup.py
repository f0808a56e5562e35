"""Imported first by every benchmark script: run as a script, a benchmark's folder is
first on ``sys.path`` and ``benchmarks/model.py`` would shadow the ``model`` package.
The repository root goes first and the folder to the end of the path (worker
processes spawned by Dask inherit the path and still find this module)."""

import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = (
    [str(_HERE.parent)]
    + [p for p in sys.path if Path(p or ".").resolve() not in (_HERE, _HERE.parent)]
    + [str(_HERE)]
)
if getattr(sys.modules.get("model"), "__file__", "").startswith(str(_HERE)):
    del sys.modules["model"]
