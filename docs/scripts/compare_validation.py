"""Two runs of the same validation checks, compared: the numbers of the "on another
machine" paragraphs of docs/validation.md and docs/scorecards.md.

For each measurement table both folders hold, the runs (rows) that differ and, per
column, how many and by how much (the largest relative difference of a float column, the
largest absolute one of a USD column); then, for each criterion both ``validation.json``
files judge, whether the second estimate equals the first to the bit, lies inside the
first's interval, or not; and the checks each run passes.

Run: ``.venv/bin/python docs/scripts/compare_validation.py FIRST SECOND``, e.g. the
committed ``docs/validation/run`` against a rerun's ``--out`` folder. Estimates are
compared as each ``validation.json`` holds them: to compare with the committed
measurements as they are judged today, judge them again first
(``crossmargin validate --from-data docs/validation/run --out DIR``) and pass ``DIR``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd


def _differs(a: pd.Series, b: pd.Series) -> np.ndarray:
    if isinstance(a.dtype, np.dtype) and a.dtype != object:
        return ~((a == b) | (a.isna() & b.isna())).to_numpy()
    return np.array([str(x) != str(y) for x, y in zip(a, b, strict=True)])


def tables(first: Path, second: Path) -> None:
    for path in sorted((first / "data").glob("*.parquet")):
        other = second / "data" / path.name
        if not other.exists():
            print(f"{path.stem}: not in {second}")
            continue
        a, b = pd.read_parquet(path), pd.read_parquet(other)
        if list(a.columns) != list(b.columns) or len(a) != len(b):
            print(f"{path.stem}: other columns or rows")
            continue
        rows = np.zeros(len(a), dtype=bool)
        notes = []
        for col in a.columns:
            ne = _differs(a[col], b[col])
            if not ne.any():
                continue
            rows |= ne
            note = f"{col}: {ne.sum()} runs"
            if isinstance(a[col].dtype, np.dtype) and np.issubdtype(a[col].dtype, np.floating):
                x, y = a[col][ne], b[col][ne]
                rel = (np.abs(x - y) / np.maximum(np.abs(x), 1e-300)).max()
                note += f", largest relative {rel:.1e}, absolute {np.abs(x - y).max():.1e}"
            notes.append(note)
        same = path.read_bytes() == other.read_bytes()
        print(
            f"{path.stem}: {rows.sum()} of {len(a)} runs differ"
            + (" (the same bytes)" if same else "")
            + "".join(f"\n    {n}" for n in notes)
        )


def estimates(first: Path, second: Path) -> None:
    def read(folder: Path) -> tuple[dict, list[str]]:
        res = json.loads((folder / "validation.json").read_text())["results"]
        crit = {(r["name"], c["id"]): c for r in res for c in r.get("criteria", [])}
        return crit, [r["name"] for r in res if r["passed"]]

    (a, passed_a), (b, passed_b) = read(first), read(second)
    equal = inside = outside = 0
    for key, c in a.items():
        if key not in b:
            continue
        d = b[key]
        if (c["value"], c["lo"], c["hi"]) == (d["value"], d["lo"], d["hi"]):
            equal += 1
            continue
        numbers = [x for x in (c["lo"], c["hi"], d["value"]) if isinstance(x, int | float)]
        ok = len(numbers) == 3 and c["lo"] <= d["value"] <= c["hi"]
        inside += ok
        outside += not ok
        verdict = "" if c["passed"] == d["passed"] else f", verdict {c['passed']} -> {d['passed']}"
        where = "inside" if ok else "NOT inside"
        print(
            f"{key[0]} {key[1]}: {c['value']!r} [{c['lo']!r}, {c['hi']!r}] -> {d['value']!r} "
            f"({where} the first interval{verdict})"
        )
    print(
        f"estimates: {equal} equal to the bit, {inside} differ inside the first interval, "
        f"{outside} not inside"
    )
    print(f"checks passed: {passed_a} -> {passed_b}")


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: compare_validation.py FIRST SECOND")
    first, second = Path(sys.argv[1]), Path(sys.argv[2])
    tables(first, second)
    estimates(first, second)


if __name__ == "__main__":
    main()
