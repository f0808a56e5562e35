"""What made a result: the crossmargin version, the git commit when run from a
checkout, the versions of Python, numpy and Mesa, whether the exchange's order path ran
compiled or in Python (``order_book``: ``compiled``, ``python``, or ``compiled book`` when
a Python twin of the order path was changed and so runs instead; the same outputs, by
test), and the command line."""

from __future__ import annotations

import functools
import platform
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

__all__ = ["provenance", "set_command", "version_line"]

_ROOT = Path(__file__).resolve().parent.parent
_command: list[str] | None = None


def set_command(argv: list[str]) -> None:
    """Record the command line of this process (the CLI calls it with its arguments)."""
    global _command
    _command = ["crossmargin", *argv]


@functools.cache
def _commit() -> str | None:
    if not (_ROOT / ".git").exists():
        return None
    try:
        out = subprocess.run(
            ["git", "-C", str(_ROOT), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "-C", str(_ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "unknown"


def version_line() -> str:
    """``crossmargin --version``'s line: the version and, from a checkout, the commit.
    Without :func:`provenance`'s order-path check, which imports the simulation.

    Examples:
        >>> version_line().startswith("crossmargin ")
        True
    """
    sha = _commit()
    commit = f" (commit {sha[:12]})" if sha else ""
    return f"crossmargin {_version('crossmargin')}{commit}"


def provenance() -> dict[str, Any]:
    """The versions and command behind a result (JSON-ready).

    Examples:
        >>> sorted(provenance())[:3]
        ['command', 'commit', 'crossmargin']
    """
    # Imported here, not at the top: the CLI records its command line through this
    # module before it knows whether a model will run, and the order path's check
    # imports the agents (and Mesa, about 1.3 s), which a refused command never needs.
    from ..model.twins import order_path

    return {
        "crossmargin": _version("crossmargin"),
        "commit": _commit(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "mesa": _version("mesa"),
        "order_book": order_path(),
        "command": " ".join(_command)
        if _command is not None
        else " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
    }
