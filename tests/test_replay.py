"""``crossmargin replay``: the JSON summary and malformed input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "crossmargin.experiments.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "stream.csv"
    p.write_text("op,side,price,qty,id\n" + body)
    return p


def test_replay_summary(tmp_path):
    f = write(
        tmp_path,
        "limit,buy,100,5,1\nlimit,buy,100,4,2\nlimit,sell,103,3,3\n"
        "market,sell,,7,\ncancel,,,,1\ncancel,,,,9\nlimit,sell,100,1,4\n",
    )
    r = run("replay", str(f))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["events"] == 7
    assert out["fills"] == 3  # 5 from id 1, 2 from id 2, then 1 more from id 2
    assert out["traded_qty"] == 8
    assert out["best_bid"] == 100 and out["bid_qty"] == 1
    assert out["best_ask"] == 103 and out["ask_qty"] == 3
    assert out["events_per_s"] > 0 and out["seconds"] >= 0


def test_replay_empty_book_gives_nulls(tmp_path):
    out = json.loads(run("replay", str(write(tmp_path, "limit,buy,10,1,1\ncancel,,,,1\n"))).stdout)
    assert out["best_bid"] is None and out["best_ask"] is None


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("limit,buy,100,5,1\nlimit,hold,100,5,2\n", "line 3: side"),
        ("limit,buy,1.5,5,1\n", "line 2: price"),
        ("limit,buy,100,0,1\n", "line 2: qty"),
        ("market,buy,,x,\n", "line 2: qty"),
        ("cancel,,,,\n", "line 2: id"),
        ("swap,buy,1,1,1\n", "line 2: op"),
        ("limit,buy,100,5\n", "line 2: expected 5 fields"),
        ("limit,buy,100,5,1\nlimit,buy,101,5,1\n", "line 3: id"),
    ],
)
def test_replay_malformed_row(tmp_path, body, needle):
    r = run("replay", str(write(tmp_path, body)))
    assert r.returncode == 2
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_replay_bad_header_and_missing_file(tmp_path):
    p = tmp_path / "h.csv"
    p.write_text("a,b\n")
    r = run("replay", str(p))
    assert r.returncode == 2 and "line 1: header" in r.stderr
    r = run("replay", str(tmp_path / "missing.csv"))
    assert r.returncode == 2 and "no such file" in r.stderr
