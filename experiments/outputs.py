"""Where results go, and the rules that keep them from being lost.

* ``run`` writes to ``results/<name>-<seed>-<hash>/`` by default, where ``hash`` is the
  first 8 hex digits of the SHA-256 of the fully resolved scenario: a second run with
  another seed or ``--set`` gets its own folder.
* An ``--out`` that exists and is not empty is refused unless ``--overwrite`` is
  given, and even then only a folder holding an earlier crossmargin run
  (``summary.json`` and ``scenario.toml``) is replaced; a sweep folder only holds
  runs of the same experiment unless ``--overwrite``; a report never replaces an
  earlier report unless ``--overwrite``.
* Every output folder is checked for writability before any simulation starts.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "OutputError",
    "check_report_out",
    "check_run_out",
    "check_sweep_out",
    "check_writable",
    "run_folder",
]

REPORT_FILES = ("report.md", "report.html", "figures")


class OutputError(ValueError):
    """An output folder that cannot or must not be written (one line)."""


def run_folder(scenario: Any, *, root: Path = Path("results")) -> Path:
    """The default folder of a run: ``results/<name>-<seed>-<hash8>``.

    Examples:
        >>> from crossmargin import Scenario
        >>> run_folder(Scenario(name="demo", seed=3)).name.startswith("demo-3-")
        True
    """
    digest = hashlib.sha256(scenario.to_toml().encode()).hexdigest()[:8]
    return root / f"{scenario.name}-{scenario.seed}-{digest}"


def check_writable(out: Path, option: str = "--out") -> None:
    """Raise :class:`OutputError` unless ``out`` can be created or written into.

    The nearest existing folder is probed by creating (and removing) a temporary
    folder in it: permission bits alone do not tell when running as root or on a
    read-only file system.
    """
    if str(out) == "":
        raise OutputError(f"{option}: empty path")
    if out.exists() and not out.is_dir():
        raise OutputError(f"{option}: {out} is a file, not a folder")
    probe = out
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise OutputError(f"{option}: {probe} is a file, not a folder")
    try:
        tmp = tempfile.mkdtemp(prefix=".crossmargin-probe-", dir=probe)
        os.rmdir(tmp)
    except OSError as exc:
        raise OutputError(f"{option}: {probe} is not writable ({exc.strerror})") from None


def check_run_out(out: Path, *, overwrite: bool) -> None:
    """The rules for ``run --out`` (see the module docstring)."""
    check_writable(out)
    if not out.exists() or not any(out.iterdir()):
        return
    if not overwrite:
        raise OutputError(
            f"--out: {out} exists and is not empty; choose another folder or pass "
            "--overwrite to replace an earlier crossmargin run"
        )
    if not ((out / "summary.json").is_file() and (out / "scenario.toml").is_file()):
        raise OutputError(
            f"--out: {out} does not hold a crossmargin run (no summary.json and "
            "scenario.toml): not replacing it, even with --overwrite"
        )


def check_sweep_out(out: Path, experiment: Any, *, overwrite: bool) -> None:
    """The rules for ``sweep --out``: a new or empty folder, or one holding a sweep of
    the same experiment (which resumes); another experiment's sweep only with
    ``--overwrite``; anything else never."""
    check_writable(out)
    if not out.exists() or not any(out.iterdir()):
        return
    toml = out / "experiment.toml"
    if not toml.is_file():
        raise OutputError(
            f"--out: {out} exists, is not empty and holds no sweep (no experiment.toml); "
            "choose another folder"
        )
    if _design_of(toml) == _design_of(experiment.to_toml()):
        return  # the same experiment: resume
    if not overwrite:
        raise OutputError(
            f"--out: {out} holds a sweep of another experiment (or another version of "
            "it); choose another folder or pass --overwrite to replace it"
        )


def _design_of(source: Path | str) -> dict | None:
    """An experiment.toml without its ``[provenance]`` (which names the command)."""
    import tomllib

    try:
        text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    data.pop("provenance", None)
    return data


def check_report_out(directory: Path, *, overwrite: bool) -> None:
    """A report is written into its run or sweep folder; an earlier one is replaced only
    with ``--overwrite``."""
    if directory.is_dir():
        check_writable(directory, "DIR")
        earlier = [f for f in REPORT_FILES if (directory / f).exists()]
        if earlier and not overwrite:
            raise OutputError(
                f"DIR: {directory} already has a report ({', '.join(earlier)}); pass "
                "--overwrite to replace it"
            )
