"""Scenarios and ``crossmargin run``: round trips, result files, and every bad input."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import networkx as nx
import pandas as pd
import pytest
from crossmargin.experiments.runner import RESULT_FILES
from crossmargin.model import Scenario, ScenarioError
from helpers import PRESETS, SCENARIOS, preset

CLI = [sys.executable, "-m", "crossmargin.experiments.cli"]


@pytest.mark.parametrize("name", PRESETS)
def test_presets_validate_and_round_trip(name):
    sc = Scenario.from_toml(SCENARIOS / f"{name}.toml")
    assert Scenario.from_dict(tomllib.loads(sc.to_toml())) == sc


def test_replace_dotted_and_errors():
    sc = Scenario()
    assert sc.replace(**{"liquidation.fee": 0.01}).liquidation.fee == 0.01
    assert sc.replace(markets__0__tick=1.0).markets[0].tick == 1.0
    with pytest.raises(ScenarioError, match=r"liquidation\.nope: unknown key"):
        sc.replace(**{"liquidation.nope": 1})


def run_cli(*args, cwd=None):
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_run_writes_every_file(tmp_path):
    sc = preset("baseline", steps=60, traders=40)
    src = tmp_path / "s.toml"
    src.write_text(sc.to_toml())
    out = tmp_path / "out"
    r = run_cli(
        "run",
        str(src),
        "--out",
        str(out),
        "--seed",
        "3",
        "--set",
        "liquidation.fee=0.003",
        "--no-progress",
    )
    assert r.returncode == 0, r.stderr
    for f in RESULT_FILES:
        assert (out / f).stat().st_size > 0, f
    df = pd.read_parquet(out / "model.parquet")
    assert len(df) == 60 and "BTC_depth1" in df and "insurance_fund" in df
    summary = json.loads((out / "summary.json").read_text())
    for key in (
        "steps",
        "n_accounts",
        "liquidations",
        "liquidated_notional",
        "bankruptcies",
        "backstop_notional",
        "insurance_fund_start",
        "insurance_fund_end",
        "insurance_fund_min",
        "adl_events",
        "socialized_loss",
        "max_drawdown",
        "cascade_max_depth",
        "cascade_largest_size",
        "cascade_mean_branching",
        "resilience_half_life",
        "depth_retained_1h",
        "conservation_error",
    ):
        assert key in summary
    resolved = Scenario.from_toml(out / "scenario.toml")
    assert resolved.seed == 3 and resolved.liquidation.fee == 0.003
    assert nx.is_directed_acyclic_graph(nx.read_graphml(out / "cascade.graphml"))
    assert nx.read_graphml(out / "exposure.graphml").number_of_nodes() > 0
    assert "results in" in r.stdout


BAD = [
    ('name = "x"\nbogus = 1\n', "bogus: unknown key"),
    ('steps = "many"\n', "steps:"),
    ("[agents.leveraged]\nmax_leverage = -3.0\n", "agents.leveraged.max_leverage"),
    ("correlation = [[1.0, 0.99], [0.99, -1.0]]\n", "correlation"),
    ("correlation = [[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 1.0]]\n", "correlation"),
    ('[[shocks]]\nkind = "meteor"\nstep = 3\n', "shocks.0.kind"),
    ("this is not toml", "not valid TOML"),
]


@pytest.mark.parametrize(("body", "needle"), BAD)
def test_bad_scenarios_fail_cleanly(tmp_path, body, needle):
    src = tmp_path / "bad.toml"
    src.write_text(body)
    out = tmp_path / "out"
    r = run_cli("run", str(src), "--out", str(out), "--no-progress")
    assert r.returncode == 2, r.stdout + r.stderr
    assert needle in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".out*"))


def test_non_psd_3x3_is_named(tmp_path):
    src = tmp_path / "bad.toml"
    src.write_text(
        "correlation = [[1.0, 0.9, -0.9], [0.9, 1.0, 0.9], [-0.9, 0.9, 1.0]]\n"
        + "".join(
            f'[[markets]]\nname = "M{k}"\nprice = 10.0\ntick = 0.01\nlot = 1.0\n' for k in range(3)
        )
    )
    r = run_cli("run", str(src), "--no-progress")
    assert r.returncode == 2 and "positive semi-definite" in r.stderr


def test_missing_file_and_bad_set(tmp_path):
    r = run_cli("run", str(tmp_path / "nope.toml"))
    assert r.returncode == 2 and "no such file" in r.stderr
    src = tmp_path / "s.toml"
    src.write_text('name = "x"\n')
    r = run_cli("run", str(src), "--set", "liquidation.fee")
    assert r.returncode == 2 and "key=value" in r.stderr
    r = run_cli("run", str(src), "--set", "liquidation.fee=-1")
    assert r.returncode == 2 and "liquidation.fee" in r.stderr
    r = run_cli("run", str(src), "--steps", "0")
    assert r.returncode == 2 and "steps" in r.stderr
