"""Issue #23, the researcher's path: presets by name everywhere, the reference of the
files from their models, "did you mean", a dry run of a sweep, quiet logs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from crossmargin.experiments.design import load_experiment
from crossmargin.experiments.reference import markdown
from crossmargin.model.scenario import Scenario, ScenarioError
from helpers import cli

ROOT = Path(__file__).resolve().parent.parent


def test_presets_by_name_on_the_command_line(tmp_path):
    out = tmp_path / "r"
    r = cli("run", "calm", "--steps", "5", "--out", str(out), "--no-progress")
    assert r.returncode == 0, r.stderr
    assert (out / "summary.json").exists()
    r = cli("presets")
    assert r.returncode == 0 and "baseline" in r.stdout and "oct2025_collateral_depeg" in r.stdout
    r = cli("run", "no_such_preset", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "presets: " in r.stderr and r.stderr.count("\n") == 1


def test_presets_by_name_in_an_experiment_file(tmp_path):
    f = tmp_path / "e.toml"
    f.write_text('[experiment]\nname = "e"\nbase = "calm"\nseeds = 2\n[overrides]\nsteps = 5\n')
    exp = load_experiment(f)
    assert exp.base.name == "calm" and len(exp.runs) == 2


def test_reference_page_is_generated_and_current():
    """docs/reference.md is exactly what `crossmargin schema --markdown` prints, and it
    names every field with a default and a meaning."""
    page = (ROOT / "docs" / "reference.md").read_text()
    assert page == markdown(), (
        "docs/reference.md is stale: crossmargin schema --markdown > docs/reference.md"
    )
    for key in ("`liquidation.fund_max_hold`", "`agents.market_makers.level_gap_bps`", "`grid`"):
        assert key in page
    r = cli("schema")
    assert r.returncode == 0 and "vault_max_leverage (number; default 5.0)" in r.stdout
    for line in r.stdout.splitlines():
        assert ":" in line, line  # every field has bounds or a meaning


def test_unknown_keys_suggest_the_close_one(tmp_path):
    try:
        Scenario.from_dict({"liquidation": {"fe": 0.1}})
    except ScenarioError as exc:
        assert "did you mean 'fee'" in str(exc)
    else:
        raise AssertionError("accepted")
    s = tmp_path / "s.toml"
    s.write_text("stesp = 10\n")
    r = cli("run", str(s), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "did you mean 'steps'" in r.stderr
    r = cli("run", "baseline", "--set", "liquidation.fe=0.1", "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "did you mean 'liquidation.fee'" in r.stderr


def test_sweep_dry_run_counts_and_writes_nothing(tmp_path):
    f = tmp_path / "e.toml"
    f.write_text(
        '[experiment]\nname = "e"\nbase = "calm"\nseeds = 3\n[overrides]\nsteps = 10\n'
        '[grid]\nmargin_mode = ["cross", "isolated"]\n'
    )
    out = tmp_path / "out"
    r = cli("sweep", str(f), "--out", str(out), "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "6 runs" in r.stdout and "agent-steps" in r.stdout and "MB" in r.stdout
    assert not out.exists()


def test_a_run_logged_to_a_file_has_no_progress_frames(tmp_path):
    r = cli("run", "calm", "--steps", "30", "--out", str(tmp_path / "r"))
    assert r.returncode == 0 and "\r" not in r.stderr


def test_a_command_with_nothing_to_simulate_does_not_import_the_simulation(tmp_path):
    """Help, the version and a refused command answer without importing Mesa or the agents (about
    1.5 s of imports: `benchmarks/startup.py`). Once, the provenance module imported the
    order path's check at its top, and the command line, which records its command
    through it first, imported the whole simulation for every command."""
    probe = (
        "import sys\n"
        "from crossmargin.experiments.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit as e:\n"
        "    code = e.code\n"
        "print(code, sorted(m for m in ('mesa', 'crossmargin.model.agents') if m in sys.modules))\n"
    )
    for argv, code in (
        (["--help"], 0),
        (["--version"], 0),
        (["run", str(tmp_path / "missing.toml")], 2),
        (["report", str(tmp_path)], 2),
        (["replay", str(tmp_path / "missing.csv")], 2),
    ):
        r = subprocess.run(
            [sys.executable, "-c", probe, *argv], capture_output=True, text=True, timeout=300
        )
        assert r.stdout.splitlines()[-1] == f"{code} []", (argv, r.stdout, r.stderr)
