"""Issue #23: faults and hostile input. The report does not trust the folder it reads;
two runs never share an output folder; ``--overwrite`` removes only what crossmargin
wrote; a poisoned sweep run ends as a recorded failure and finished runs are never
recomputed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from crossmargin.experiments.runner import run_scenario
from helpers import cli, preset

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def a_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("hostile") / "run"
    run_scenario(preset("baseline", steps=60, traders=30), out)
    return out


def copy_of(run: Path, tmp: Path, name: str = "r") -> Path:
    dst = tmp / name
    shutil.copytree(run, dst)
    return dst


def test_report_escapes_what_it_reads(a_run, tmp_path):
    """A string in summary.json never becomes markup: no script, no image of a file from
    outside the folder, in the Markdown or the HTML."""
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG top secret")
    d = copy_of(a_run, tmp_path)
    s = json.loads((d / "summary.json").read_text())
    s["scenario"] = "<script>alert(1)</script>"
    s["provenance"]["command"] = f"![x]({secret}) <img src=x onerror=alert(2)>"
    s["bankruptcies"] = "![y](../secret.png)"
    (d / "summary.json").write_text(json.dumps(s))
    r = cli("report", str(d))
    assert r.returncode == 0, r.stderr
    page = (d / "report.html").read_text()
    assert "<script>" not in page and "<img src=x" not in page
    assert "top secret" not in page and "dG9wIHNlY3JldA" not in page  # not embedded
    md = (d / "report.md").read_text()
    assert "](../secret.png)" not in md.replace("\\](", "")


def test_report_never_writes_through_a_symlink(a_run, tmp_path):
    d = copy_of(a_run, tmp_path)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (d / "report.md").symlink_to(outside)
    r = cli("report", str(d), "--overwrite")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "symbolic link" in r.stderr
    assert outside.read_text() == "keep me"
    (d / "report.md").unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (d / "figures").symlink_to(elsewhere)
    r = cli("report", str(d), "--overwrite")
    assert r.returncode == 2 and "symbolic link" in r.stderr
    assert not any(elsewhere.iterdir())


CORRUPT = {
    "summary_not_json": lambda d: (d / "summary.json").write_text("{not json"),
    "summary_a_list": lambda d: (d / "summary.json").write_text("[1, 2]"),
    "summary_binary": lambda d: (d / "summary.json").write_bytes(b"\xff\xfe\x00"),
    "model_missing": lambda d: (d / "model.parquet").unlink(),
    "model_not_parquet": lambda d: (d / "model.parquet").write_text("nope"),
    "events_truncated": lambda d: (d / "events.parquet").write_bytes(
        (d / "events.parquet").read_bytes()[:100]
    ),
    "model_wrong_columns": lambda d: pd.DataFrame({"x": [1.0]}).to_parquet(d / "model.parquet"),
    "graph_not_xml": lambda d: (d / "cascade.graphml").write_text("<graphml"),
    "summary_symlink_out": lambda d: (
        (d / "summary.json").unlink(),
        (d / "summary.json").symlink_to("/etc/hostname"),
    ),
    "trades_empty_file": lambda d: (d / "trades.parquet").write_bytes(b""),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_report_on_a_corrupt_folder_is_one_line(a_run, tmp_path, case):
    d = copy_of(a_run, tmp_path)
    CORRUPT[case](d)
    before = sorted(p.name for p in d.iterdir())
    r = cli("report", str(d))
    assert r.returncode == 2, (case, r.stdout, r.stderr)
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert sorted(p.name for p in d.iterdir()) == before  # nothing written


def test_report_refuses_a_folder_that_is_not_results(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    r = cli("report", str(tmp_path))
    assert r.returncode == 2 and "not a results folder" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_two_runs_into_one_folder_never_both_succeed(tmp_path):
    """The output folder is claimed atomically: of two runs started into the same
    --out at once, one writes and the other stops with one line."""
    sc = tmp_path / "s.toml"
    base = preset("baseline", steps=40, traders=20)
    sc.write_text(base.to_toml())
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "crossmargin.experiments.cli", "run", str(sc), "--out", str(out)]
    procs = [
        subprocess.Popen(
            [*cmd, "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = [(*p.communicate(timeout=300), p.returncode) for p in procs]
    codes = sorted(r[2] for r in results)
    assert codes == [0, 2], results
    loser = next(r for r in results if r[2] == 2)
    assert "another crossmargin run" in loser[1] or "exists and is not empty" in loser[1]
    assert json.loads((out / "summary.json").read_text())["steps"] == 40


def test_a_run_that_finished_between_check_and_claim_is_not_replaced(a_run, tmp_path):
    """The interleaving the test above can only hit by chance, made to happen: the
    folder is checked while empty, another run then claims it, writes and lets go, and
    only then is it claimed; without --overwrite the claim is refused and the other
    run's results stay as they are."""
    from crossmargin.experiments import outputs

    out = tmp_path / "out"
    out.mkdir()
    outputs.check_run_out(out, overwrite=False)  # empty: may be used
    for f in a_run.iterdir():  # the other run's results
        if f.is_file():
            (out / f.name).write_bytes(f.read_bytes())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(outputs.OutputError, match="exists and is not empty"):
        outputs.claim_run_out(out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # claim let go too
    assert outputs.claim_run_out(out, overwrite=True) is False  # --overwrite may replace it
    outputs.release_claim(out)


def test_overwrite_removes_only_what_crossmargin_wrote(a_run, tmp_path):
    d = copy_of(a_run, tmp_path)
    (d / "notes.md").write_text("my own notes")
    (d / "analysis").mkdir()
    (d / "analysis" / "plot.py").write_text("print(1)")
    sc = tmp_path / "s.toml"
    sc.write_text(preset("baseline", steps=30, traders=20).to_toml())
    r = cli("run", str(sc), "--out", str(d), "--overwrite", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert (d / "notes.md").read_text() == "my own notes"
    assert (d / "analysis" / "plot.py").exists()
    assert json.loads((d / "summary.json").read_text())["steps"] == 30
    manifest = json.loads((d / ".crossmargin-manifest.json").read_text())["files"]
    assert "notes.md" not in manifest and "summary.json" in manifest
