"""The pre-registered criteria (``criteria.toml``) and where they came from."""

from __future__ import annotations

import copy
import hashlib
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["CRITERIA", "EVENTS", "MULTIVENUE", "Criteria", "load_criteria"]

CRITERIA = Path(__file__).resolve().parent / "criteria.toml"
"""The committed criteria file."""
EVENTS = Path(__file__).resolve().parent / "events.toml"
"""The committed score cards of the event presets (``validate --events``)."""
MULTIVENUE = Path(__file__).resolve().parent / "multivenue.toml"
"""The committed checks of the world of venues (``validate --venues``)."""


@dataclass
class Criteria:
    """The parsed criteria file with its identity.

    Attributes:
        checks: one dict per ``[[check]]``, quick sizes already applied if asked.
        defaults: the ``[defaults]`` table.
        blob: the file's git blob hash (``git hash-object``), computed from its bytes.
        commit: the commit that last changed the file, or "" outside a git checkout.
        modified: True when the file differs from that commit.
    """

    checks: list[dict[str, Any]]
    defaults: dict[str, Any]
    blob: str
    commit: str
    modified: bool
    path: Path
    world: str = ""
    """``multivenue`` when every check runs on a world of venues (``--world``)."""


def _git(path: Path, *args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def load_criteria(
    path: Path = CRITERIA,
    *,
    quick: bool = False,
    seed_base: int | None = None,
    only: list[str] | None = None,
    world: str | None = None,
) -> Criteria:
    """Read the criteria; ``quick`` swaps in each check's ``[check.quick]`` sizes,
    ``seed_base`` replaces every check's first seed, ``only`` keeps the named checks,
    ``world = "multivenue"`` runs every check on its scenario turned into a world of
    venues (:meth:`Scenario.as_multivenue`), the criteria unchanged.

    Examples:
        >>> c = load_criteria(only=["sqrt_impact"], seed_base=9000)
        >>> [ch["name"] for ch in c.checks], c.checks[0]["seeds"]["base"], len(c.blob)
        (['sqrt_impact'], 9000, 40)
    """
    raw = path.read_bytes()
    data = tomllib.loads(raw.decode("utf-8"))
    blob = hashlib.sha1(b"blob %d\0" % len(raw) + raw).hexdigest()
    names = [c["name"] for c in data["check"]]
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ValueError(f"--only: unknown check(s) {unknown}; known: {', '.join(names)}")
    checks = []
    for c in data["check"]:
        if only and c["name"] not in only:
            continue
        c = copy.deepcopy(c)
        q = c.pop("quick", {})
        if quick:
            c |= q
            c["population"] = data["defaults"]["quick_population"]
        else:
            c.setdefault("population", data["defaults"].get("population", {}))
        if seed_base is not None:
            c["seeds"] = {"base": seed_base, "count": c["seeds"]["count"]}
        if world is not None:
            c["world"] = world
        checks.append(c)
    commit = _git(path, "log", "-1", "--format=%H", "--", path.name)
    modified = bool(commit) and bool(_git(path, "status", "--porcelain", "--", path.name))
    return Criteria(checks, data["defaults"], blob, commit, modified, path, world or "")
