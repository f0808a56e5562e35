"""Where results go, and the rules that keep them from being lost.

* ``run`` writes to ``results/<name>-<seed>-<hash>/`` by default, where ``hash`` is the
  first 8 hex digits of the SHA-256 of the fully resolved scenario: a second run with
  another seed or ``--set`` gets its own folder.
* A run **claims** its folder before it starts, atomically (the folder created with
  ``mkdir``, or a claim file created with ``O_EXCL`` in an empty one): of two runs
  started into the same ``--out`` one works and the other stops at once with one line.
* An ``--out`` that exists and is not empty is refused unless ``--overwrite`` is
  given, and even then only a folder holding an earlier crossmargin run is touched,
  and only the files crossmargin wrote there (listed in its manifest,
  ``.crossmargin-manifest.json``; for a folder written before manifests, the result
  and report files by name): anything else in it, the user's notes say, stays. A sweep
  folder only holds runs of the same experiment unless ``--overwrite``; a report never
  replaces an earlier report unless ``--overwrite``.
* Every output folder is checked for writability before any simulation starts.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "CLAIM",
    "MANIFEST",
    "RUN_FILES",
    "OutputError",
    "atomic_write",
    "check_report_out",
    "check_run_out",
    "check_sweep_out",
    "check_writable",
    "claim_run_out",
    "claim_sweep_design",
    "read_manifest",
    "release_claim",
    "remove_written",
    "run_folder",
    "write_manifest",
]

REPORT_FILES = ("report.md", "report.html", "figures")
RUN_FILES = (
    "model.parquet",
    "events.parquet",
    "trades.parquet",
    "agents.parquet",
    "cascade.graphml",
    "exposure.graphml",
    "summary.json",
    "scenario.toml",
)
"""What a run writes (``agents.parquet`` only with ``collect_agents``)."""
MANIFEST = ".crossmargin-manifest.json"
"""The list of files crossmargin wrote into a folder: what ``--overwrite`` may remove."""
CLAIM = ".crossmargin-claim"
"""Present while a run is writing into the folder."""


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

    Examples:
        >>> folder = Path(tempfile.mkdtemp())
        >>> check_writable(folder / "new" / "run")  # its nearest existing folder is writable
        >>> (folder / "notes.txt").write_text("mine")
        4
        >>> check_writable(folder / "notes.txt")
        Traceback (most recent call last):
        ...
        crossmargin.experiments.outputs.OutputError: --out: .../notes.txt is a file, not a folder
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
    """The rules for ``run --out`` (see the module docstring).

    Examples:
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "notes.txt").write_text("mine")
        4
        >>> check_run_out(folder, overwrite=True)  # not a crossmargin run: never replaced
        Traceback (most recent call last):
        ...
        crossmargin.experiments.outputs.OutputError: --out: ... does not hold a crossmargin run ...
    """
    check_writable(out)
    if out.is_symlink():
        raise OutputError(f"--out: {out} is a symbolic link; give the folder itself")
    if (out / CLAIM).exists() and not _stale(out / CLAIM):
        raise OutputError(f"--out: another crossmargin run is writing into {out}")
    (out / CLAIM).unlink(missing_ok=True)  # a killed run's claim: nobody holds it
    _replaceable(out, overwrite=overwrite)


def _replaceable(out: Path, *, overwrite: bool) -> None:
    """The rules for what ``out`` may already hold (its claim file aside): nothing, or
    with ``overwrite`` an earlier crossmargin run."""
    if not out.exists() or not any(p.name != CLAIM for p in out.iterdir()):
        return
    if not overwrite:
        raise OutputError(
            f"--out: {out} exists and is not empty; choose another folder or pass "
            "--overwrite to replace an earlier crossmargin run"
        )
    if not (out / MANIFEST).is_file() and not (
        (out / "summary.json").is_file() and (out / "scenario.toml").is_file()
    ):
        raise OutputError(
            f"--out: {out} does not hold a crossmargin run (no manifest, no summary.json "
            "and scenario.toml): not replacing it, even with --overwrite"
        )


def claim_run_out(out: Path, *, overwrite: bool = False) -> bool:
    """Claim ``out`` for one run, atomically: create the folder, or the claim file in
    an existing folder with ``O_EXCL``; raise :class:`OutputError` if another run got
    there first. Return whether the folder was created (:func:`release_claim` then
    removes it if the run wrote nothing).

    Holding the claim, the rules of :func:`check_run_out` are checked again: another run
    may have claimed the folder, written its results and let go between the check and
    this claim, and those results are replaced only with ``overwrite``.

    Examples:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()) / "run"
        >>> claim_run_out(d)
        True
        >>> claim_run_out(d)
        Traceback (most recent call last):
        ...
        crossmargin.experiments.outputs.OutputError: --out: another crossmargin run is writing into ...
        >>> release_claim(d, created=True); d.exists()
        False
        >>> done = Path(tempfile.mkdtemp())  # checked empty; then another run finished in it
        >>> (done / "summary.json").write_text("{}")
        2
        >>> claim_run_out(done)
        Traceback (most recent call last):
        ...
        crossmargin.experiments.outputs.OutputError: --out: ... exists and is not empty; ...
        >>> sorted(p.name for p in done.iterdir())  # the claim is let go
        ['summary.json']
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    created = True
    try:
        out.mkdir()
    except FileExistsError:
        created = False
        if out.is_symlink() or not out.is_dir():
            raise OutputError(f"--out: {out} is not a folder") from None
    try:
        fd = os.open(out / CLAIM, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise OutputError(f"--out: another crossmargin run is writing into {out}") from None
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{os.getpid()}\n")
    if not created:
        try:
            _replaceable(out, overwrite=overwrite)
        except OutputError:
            (out / CLAIM).unlink(missing_ok=True)
            raise
    return created


def _stale(claim: Path) -> bool:
    """Whether a claim file names a process that is no longer running."""
    try:
        pid = int(claim.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False  # being written: not stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def release_claim(out: Path, *, created: bool = False) -> None:
    """Remove the claim file of :func:`claim_run_out`, and the folder if the claim
    created it and the run left it empty.

    Examples:
        >>> out = Path(tempfile.mkdtemp()) / "run"
        >>> created = claim_run_out(out)
        >>> created, (out / CLAIM).exists()
        (True, True)
        >>> release_claim(out, created=created)  # the run wrote nothing: its folder goes too
        >>> out.exists()
        False
    """
    import contextlib

    (out / CLAIM).unlink(missing_ok=True)
    if created:
        with contextlib.suppress(OSError):
            out.rmdir()  # only if empty


def read_manifest(folder: Path) -> list[str]:
    """The files crossmargin wrote into ``folder`` (relative names), from its manifest;
    for a folder written before manifests, the run and report files present by name.

    Examples:
        >>> folder = Path(tempfile.mkdtemp())
        >>> write_manifest(folder, ["model.parquet", "summary.json"])
        >>> read_manifest(folder)
        ['model.parquet', 'summary.json']
    """
    path = folder / MANIFEST
    if path.is_file():
        try:
            import json

            names = json.loads(path.read_text())["files"]
            return [n for n in names if isinstance(n, str) and _inside(folder, n)]
        except (OSError, ValueError, KeyError, TypeError):
            return []
    return [n for n in (*RUN_FILES, *REPORT_FILES) if (folder / n).exists()]


def write_manifest(folder: Path, names: list[str]) -> None:
    """Add ``names`` to the manifest of ``folder`` (written atomically).

    Examples:
        >>> folder = Path(tempfile.mkdtemp())
        >>> write_manifest(folder, ["summary.json"])
        >>> write_manifest(folder, ["report.md", "summary.json"])  # added to, not replaced
        >>> read_manifest(folder)
        ['report.md', 'summary.json']
    """
    import json

    have = read_manifest(folder) if (folder / MANIFEST).is_file() else []
    files = sorted(set(have) | set(names))
    tmp = folder / f".{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"files": files}, indent=1) + "\n")
    tmp.chmod(0o644)
    os.replace(tmp, folder / MANIFEST)


def remove_written(folder: Path, names: list[str]) -> None:
    """Remove the files (and report figure folders) of ``names`` that crossmargin wrote
    into ``folder``; never follows a symbolic link out of it, never touches anything
    else.

    Examples:
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in ("summary.json", "notes.txt"):
        ...     _ = (folder / name).write_text("{}")
        >>> remove_written(folder, ["summary.json", "../elsewhere.txt"])
        >>> sorted(p.name for p in folder.iterdir())
        ['notes.txt']
    """
    import shutil

    for n in names:
        p = folder / n
        if not _inside(folder, n):
            continue
        if p.is_symlink() or p.is_file():
            p.unlink(missing_ok=True)
        elif p.is_dir():
            shutil.rmtree(p)


def _inside(folder: Path, name: str) -> bool:
    """Whether ``folder / name`` stays inside ``folder`` (no ``..``, not absolute)."""
    p = Path(name)
    return not p.is_absolute() and ".." not in p.parts and name not in ("", ".")


def check_sweep_out(out: Path, experiment: Any, *, overwrite: bool) -> None:
    """The rules for ``sweep --out``: a new or empty folder, or one holding a sweep of
    the same experiment (which resumes); another experiment's sweep only with
    ``--overwrite``; anything else never.

    Examples:
        >>> folder = Path(tempfile.mkdtemp())
        >>> (folder / "notes.txt").write_text("mine")
        4
        >>> check_sweep_out(folder, None, overwrite=True)
        Traceback (most recent call last):
        ...
        crossmargin.experiments.outputs.OutputError: --out: ... holds no sweep (no experiment.toml); choose another folder
    """
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


def claim_sweep_design(out: Path, experiment: Any, text: str) -> None:
    """Write a sweep's design (``text``, the experiment with its provenance) to
    ``out/experiment.toml`` without replacing another experiment's.

    :func:`check_sweep_out` ran before; another sweep may have started into the same
    folder since. The file is created whole or not at all (:func:`atomic_write` with
    ``replace=False``), so two sweeps cannot both find the folder empty. If it exists,
    it must be this experiment's (a sweep of the same experiment shares the folder
    and resumes it; its provenance is refreshed), else :class:`OutputError` and
    nothing is written.

    Examples:
        >>> from crossmargin.experiments.design import load_experiment
        >>> folder = Path(tempfile.mkdtemp())
        >>> for name in ("a", "b"):
        ...     _ = (folder / f"{name}.toml").write_text('[experiment]\\nbase = "baseline"\\n')
        >>> a, b = (load_experiment(folder / f"{name}.toml") for name in ("a", "b"))
        >>> claim_sweep_design(folder, a, a.to_toml())
        >>> claim_sweep_design(folder, a, a.to_toml())  # the same experiment: resumes
        >>> claim_sweep_design(folder, b, b.to_toml())
        Traceback (most recent call last):
        ...
        crossmargin.experiments.outputs.OutputError: --out: ... another experiment's sweep (a) started writing into it; choose another folder
    """
    toml = out / "experiment.toml"
    if atomic_write(toml, text, replace=False):
        return
    theirs = _design_of(toml)
    if theirs != _design_of(experiment.to_toml()):
        name = (theirs or {}).get("experiment", {}).get("name", "unreadable")
        raise OutputError(
            f"--out: {out} changed after it was checked: another experiment's sweep "
            f"({name}) started writing into it; choose another folder"
        )
    atomic_write(toml, text)


def atomic_write(path: Path, text: str, *, replace: bool = True) -> bool:
    """Write ``text`` to ``path`` (mode 0644) through a complete temporary file in the
    same folder, renamed over ``path``; with ``replace=False`` hard-linked to it
    instead, which creates ``path`` whole or not at all: False (nothing written) if it
    exists. A file system without hard links gets the rename.

    Examples:
        >>> folder = Path(tempfile.mkdtemp())
        >>> atomic_write(folder / "status.json", '{"ok": true}')
        True
        >>> oct((folder / "status.json").stat().st_mode & 0o777), os.listdir(folder)
        ('0o644', ['status.json'])
        >>> atomic_write(folder / "status.json", "{}", replace=False)
        False
        >>> (folder / "status.json").read_text(), os.listdir(folder)
        ('{"ok": true}', ['status.json'])
    """
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        if not replace:
            try:
                os.link(tmp, path)
                return True
            except FileExistsError:
                return False
            except OSError:
                pass  # no hard links on this file system: the rename
        os.replace(tmp, path)
        return True
    finally:
        Path(tmp).unlink(missing_ok=True)


def _design_of(source: Path | str) -> dict | None:
    """An experiment.toml without its ``[provenance]`` (which names the command)."""
    import tomllib

    try:
        text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
        data = tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
    data.pop("provenance", None)
    return data


def check_report_out(directory: Path, *, overwrite: bool) -> None:
    """A report is written into its run or sweep folder; an earlier one is replaced only
    with ``--overwrite``.

    Examples:
        >>> folder = Path(tempfile.mkdtemp())
        >>> check_report_out(folder, overwrite=False)  # no report there yet
        >>> (folder / "report.md").write_text("# an earlier report")
        19
        >>> check_report_out(folder, overwrite=False)
        Traceback (most recent call last):
        ...
        crossmargin.experiments.outputs.OutputError: DIR: ... already has a report (report.md); pass --overwrite to replace it
    """
    if directory.is_dir():
        check_writable(directory, "DIR")
        earlier = [f for f in REPORT_FILES if (directory / f).exists()]
        if earlier and not overwrite:
            raise OutputError(
                f"DIR: {directory} already has a report ({', '.join(earlier)}); pass "
                "--overwrite to replace it"
            )
