"""Every bad input is one line, ``error: <field>: <reason>``, exit code 2, no traceback,
nothing written and nothing deleted: scenario fields out of range or not finite, bad
names, malformed files, bad command-line options, unwritable or occupied output
folders, malformed experiments and replay streams. Run in process (through the CLI's
``main``) so that well over a hundred cases take seconds."""

from __future__ import annotations

import copy
import os
import tomllib
import warnings
from pathlib import Path

import pytest
import tomli_w
from crossmargin.experiments.cli import main
from helpers import SCENARIOS

BASE = tomllib.loads((SCENARIOS / "calm.toml").read_text())
BASE["steps"] = 20

INF, NAN = float("inf"), float("nan")

# (dotted key, value): each must be refused. "markets.0.x" is the first market.
SCENARIO_CASES = [
    ("markets.0.price", INF),
    ("markets.0.price", NAN),
    ("markets.0.price", -1.0),
    ("markets.0.price", 0.0),
    ("markets.0.price", "abc"),
    ("markets.0.price", 1e13),
    ("markets.0.tick", 0.0),
    ("markets.0.tick", -0.1),
    ("markets.0.tick", INF),
    ("markets.0.tick", 1e-15),
    ("markets.0.lot", 0.0),
    ("markets.0.lot", NAN),
    ("markets.0.lot", 1e-13),
    ("markets.0.volatility", -0.1),
    ("markets.0.volatility", NAN),
    ("markets.0.volatility", 10.0),
    ("markets.0.jump_intensity", -1.0),
    ("markets.0.jump_intensity", INF),
    ("markets.0.jump_mean", NAN),
    ("markets.0.jump_mean", 100.0),
    ("markets.0.jump_std", -1.0),
    ("markets.0.beta", INF),
    ("markets.0.beta", NAN),
    ("markets.0.beta", 100.0),
    ("markets.0.liquidity", 0.0),
    ("markets.0.liquidity", INF),
    ("markets.0.stress_move", 0.0),
    ("markets.0.stress_move", 1.0),
    ("markets.0.name", ""),
    ("markets.0.name", "BT C"),
    ("markets.0.name", "a\nb"),
    ("markets.0.name", "a\x07b"),
    ("markets.0.name", "x" * 100),
    ("markets.0.name", 7),
    ("markets.0.tiers", []),
    ("markets.0.tiers", [{"max_notional": "inf", "mmr": 1.5, "max_leverage": 10.0}]),
    ("markets.0.tiers", [{"max_notional": "inf", "mmr": 0.0, "max_leverage": 10.0}]),
    ("markets.0.tiers", [{"max_notional": "inf", "mmr": 0.01, "max_leverage": 0.0}]),
    ("markets.0.tiers", [{"max_notional": "inf", "mmr": 0.2, "max_leverage": 10.0}]),
    ("markets.0.tiers", [{"max_notional": "nan", "mmr": 0.01, "max_leverage": 10.0}]),
    ("markets.0.tiers", [{"max_notional": -5.0, "mmr": 0.01, "max_leverage": 10.0}]),
    (
        "markets.0.tiers",
        [
            {"max_notional": 1e6, "mmr": 0.01, "max_leverage": 50.0},
            {"max_notional": 1e5, "mmr": 0.02, "max_leverage": 20.0},
        ],
    ),
    (
        "markets.0.tiers",
        [
            {"max_notional": 1e5, "mmr": 0.02, "max_leverage": 20.0},
            {"max_notional": "inf", "mmr": 0.01, "max_leverage": 50.0},
        ],
    ),
    ("markets", []),
    ("correlation", 2.0),
    ("correlation", -1.5),
    ("correlation", NAN),
    ("correlation", [[1.0, 0.5], [0.5, 1.0]]),
    ("correlation", "high"),
    ("steps", 0),
    ("steps", -5),
    ("steps", 10**12),
    ("steps", "many"),
    ("steps", 2.5),
    ("seed", -1),
    ("seed", 2**64),
    ("seed", 1.5),
    ("name", ""),
    ("name", "."),
    ("name", "../escape"),
    ("name", "/abs/path"),
    ("name", "a/b"),
    ("name", "x y"),
    ("name", "\t"),
    ("margin_mode", "hybrid"),
    ("mark_rule", "vwap"),
    ("insurance_fund", INF),
    ("insurance_fund", -1.0),
    ("insurance_fund", NAN),
    ("insurance_fund", 1e16),
    ("vault_capital", -1.0),
    ("vault_capital", INF),
    ("vault_max_leverage", 0.0),
    ("vault_max_leverage", INF),
    ("garch_alpha", 1.0),
    ("garch_alpha", -0.1),
    ("garch_beta", 0.99),
    ("leverage_cap", 0.5),
    ("leverage_cap", 1.0),
    ("leverage_cap", INF),
    ("mmr_scale", 0.0),
    ("mmr_scale", INF),
    ("mmr_scale", 50.0),
    ("order_band", 0.0),
    ("order_band", 1.0),
    ("basis_halflife", 0),
    ("common_jump_mean", NAN),
    ("common_jump_intensity", -1.0),
    ("fees.maker", 1.0),
    ("fees.taker", -0.1),
    ("fees.unknown", 1.0),
    ("funding.interval", 0),
    ("funding.interest", INF),
    ("funding.interest", 1.0),
    ("funding.clamp", -1.0),
    ("funding.cap", 0.0),
    ("liquidation.step_share", 0.0),
    ("liquidation.step_share", 1.5),
    ("liquidation.target_ratio", 0.5),
    ("liquidation.full_ratio", 2.0),
    ("liquidation.fee", 0.5),
    ("liquidation.fee", -0.1),
    ("liquidation.max_slippage", 0.0),
    ("liquidation.max_slippage", 1.0),
    ("liquidation.shortfall", "pray"),
    ("liquidation.adl_price", "last"),
    ("liquidation.venue", "ftx"),
    ("liquidation.insurance_floor", -1.0),
    ("liquidation.unwind_share", 2.0),
    ("liquidation.max_rounds", 0),
    ("agents.leveraged.count", -1),
    ("agents.leveraged.count", 10**8),
    ("agents.leveraged.capital_median", 0.0),
    ("agents.leveraged.capital_median", INF),
    ("agents.leveraged.leverage_median", NAN),
    ("agents.leveraged.max_leverage", 0.0),
    ("agents.leveraged.long_bias", 2.0),
    ("agents.leveraged.markets_per_trader", 0),
    ("agents.leveraged.portfolio", "smart"),
    ("agents.leveraged.activation_rate", -1.0),
    ("agents.leveraged.collateral_share", 2.0),
    ("agents.market_makers.count", -1),
    ("agents.market_makers.capital", 0.0),
    ("agents.market_makers.replenish_rate", 2.0),
    ("agents.market_makers.withdraw_vol", 0.0),
    ("agents.market_makers.cooldown", 0),
    ("agents.entrants.entry_funding", 0.0),
    ("agents.noise.limit_share", 2.0),
    ("agents.noise.size_usd", INF),
    ("agents.noise.count", 300_000),
    ("agents.carry_leverage", 0.0),
    ("agents.aliens", {"count": 3}),
    ("unknown_key", 1),
    ("collect_agents", "yes please"),
    ("shocks", [{"kind": "meteor", "step": 5}]),
    ("shocks", [{"kind": "index_jump", "step": 0, "size": -0.1}]),
    ("shocks", [{"kind": "index_jump", "step": 50, "size": -0.1}]),
    ("shocks", [{"kind": "index_jump", "step": 5, "size": -1.0}]),
    ("shocks", [{"kind": "index_jump", "step": 5, "size": -2.0}]),
    ("shocks", [{"kind": "index_jump", "step": 5, "size": NAN}]),
    ("shocks", [{"kind": "index_jump", "step": 5, "size": INF}]),
    ("shocks", [{"kind": "mm_withdrawal", "step": 5, "size": 2.0}]),
    ("shocks", [{"kind": "mm_withdrawal", "step": 5, "size": -0.1}]),
    ("shocks", [{"kind": "vol_regime", "step": 5, "size": -1.0}]),
    ("shocks", [{"kind": "oracle_freeze", "step": 5, "size": 1.0}]),
    ("shocks", [{"kind": "index_jump", "step": 5, "size": -0.1, "duration": -1}]),
    ("shocks", [{"kind": "index_jump", "step": 5, "size": -0.1, "markets": ["DOGE"]}]),
    ("shocks", [{"kind": "depeg", "step": 5, "size": 1000.0}]),
    ("shocks", [{"kind": "index_jump", "step": 5, "size": -0.1, "colour": "red"}]),
]

COLLATERAL = {"name": "USDX", "price_source": "book"}
COLLATERAL_CASES = [
    ("haircut", 2.0),
    ("price_source", "oracle"),
    ("peg", 0.0),
    ("peg", INF),
    ("supply", -1.0),
    ("book_depth", 0.0),
    ("tick", 0.0),
    ("tick", 1.0),
    ("name", ""),
    ("name", "US DX"),
    ("lot", NAN),
    ("book_levels", 0),
]


def _set(data: dict, key: str, value) -> None:
    node = data
    parts = key.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value


def _toml(data: dict) -> str:
    """TOML that tomli_w refuses (nan, inf, control characters) written by hand."""

    def clean(v):
        if isinstance(v, float) and (v != v or v in (INF, -INF)):
            return f"@@{'nan' if v != v else ('inf' if v > 0 else '-inf')}@@"
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, list):
            return [clean(x) for x in v]
        return v

    text = tomli_w.dumps(clean(data))
    for w in ("nan", "inf", "-inf"):
        text = text.replace(f'"@@{w}@@"', w)
    return text


def expect_clean_error(tmp_path: Path, capsys, argv: list[str], *, needle: str = "") -> str:
    """Run the CLI; assert exit 2, one ``error:`` line, no traceback, nothing written."""
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        with pytest.raises(SystemExit) as exc:
            main(argv)
    finally:
        os.chdir(cwd)
    err = capsys.readouterr().err
    assert exc.value.code == 2, (argv, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    assert needle in err, (needle, err)
    after = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    assert after == before, "something was written"
    return lines[0]


def _field_of(key: str) -> str:
    """The field name an error message must name (list indices may be omitted)."""
    last = [p for p in key.split(".") if not p.isdigit()][-1]
    return last


@pytest.mark.parametrize(("key", "value"), SCENARIO_CASES, ids=lambda v: repr(v)[:40])
def test_bad_scenario_field(tmp_path, capsys, key, value):
    data = copy.deepcopy(BASE)
    _set(data, key, value)
    src = tmp_path / "s.toml"
    src.write_text(_toml(data), encoding="utf-8")
    line = expect_clean_error(tmp_path, capsys, ["run", "s.toml", "--out", "out", "--no-progress"])
    named = {_field_of(key), "correlation", "garch_alpha", "agents", "steps", "tiers", "shocks"}
    assert any(n in line for n in named), line


@pytest.mark.parametrize(("key", "value"), COLLATERAL_CASES, ids=lambda v: repr(v)[:40])
def test_bad_collateral_field(tmp_path, capsys, key, value):
    data = copy.deepcopy(BASE)
    data["collateral"] = dict(COLLATERAL) | {key: value}
    (tmp_path / "s.toml").write_text(_toml(data), encoding="utf-8")
    line = expect_clean_error(tmp_path, capsys, ["run", "s.toml", "--out", "out", "--no-progress"])
    assert "collateral" in line, line


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe\x00bad bytes",
        b"steps = \xe9\n",
        b"name = 'x'\nname = 'y'\n",
        b"[markets\n",
        b"steps = 10 10\n",
        b"\x00\x01\x02",
        b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n",  # nested too deeply for the parser
    ],
)
def test_malformed_files(tmp_path, capsys, body):
    (tmp_path / "s.toml").write_bytes(body)
    expect_clean_error(tmp_path, capsys, ["run", "s.toml", "--no-progress"], needle="s.toml")


def test_missing_file_and_folder_as_file(tmp_path, capsys):
    expect_clean_error(tmp_path, capsys, ["run", "nope.toml"], needle="no such file")
    (tmp_path / "d.toml").mkdir()
    expect_clean_error(tmp_path, capsys, ["run", "d.toml"], needle="d.toml")


@pytest.fixture
def scenario_file(tmp_path):
    (tmp_path / "s.toml").write_text(_toml(BASE), encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--seed", "abc"], "--seed"),
        (["--seed", "-1"], "seed"),
        (["--steps", "0"], "steps"),
        (["--steps", "x"], "--steps"),
        (["--steps", "2000000"], "steps"),
        (["--set", "nokey"], "--set"),
        (["--set", "a.b=1"], "unknown key"),
        (["--set", "steps=abc"], "steps"),
        (["--set", "markets.9.tick=1"], "markets.9"),
        (["--set", "liquidation.fee=inf"], "fee"),
        (["--set", "name=../x"], "name"),
        (["--set", "name="], "name"),
        (["--bogus"], "--bogus"),
        (["--out"], "--out"),
    ],
)
def test_bad_run_options(scenario_file, capsys, args, needle):
    expect_clean_error(
        scenario_file, capsys, ["run", "s.toml", "--no-progress", *args], needle=needle
    )


def test_out_that_is_a_file_or_occupied(scenario_file, capsys):
    (scenario_file / "f").write_text("mine")
    expect_clean_error(scenario_file, capsys, ["run", "s.toml", "--out", "f"], needle="--out")
    (scenario_file / "mine").mkdir()
    (scenario_file / "mine" / "notes.txt").write_text("precious")
    expect_clean_error(scenario_file, capsys, ["run", "s.toml", "--out", "mine"], needle="--out")
    line = expect_clean_error(
        scenario_file, capsys, ["run", "s.toml", "--out", "mine", "--overwrite"], needle="--out"
    )
    assert "not replacing" in line
    expect_clean_error(scenario_file, capsys, ["run", "s.toml", "--out", "."], needle="--out")
    expect_clean_error(scenario_file, capsys, ["run", "s.toml", "--out", ""], needle="--out")
    expect_clean_error(scenario_file, capsys, ["run", "s.toml", "--out", "f/sub"], needle="--out")
    assert (scenario_file / "mine" / "notes.txt").read_text() == "precious"


EXPERIMENT = """
[experiment]
name = "tiny"
base = "s.toml"
seeds = 1
[grid]
"liquidation.fee" = [0.001]
"""


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        (("seeds = 1", "seeds = 0"), "seeds"),
        (("seeds = 1", "seeds = [-1]"), "seeds"),
        (("seeds = 1", "seeds = [1, 1]"), "seeds"),
        (("seeds = 1", "seeds = 5000000"), "seeds"),
        (("[0.001]", "[0.5]"), "fee"),
        (("[0.001]", "[]"), "grid"),
        (("[0.001]", "[nan]"), "fee"),
        (('"liquidation.fee"', '"liquidation.nope"'), "nope"),
        (('name = "tiny"', 'name = "../x"'), "name"),
        (('base = "s.toml"', 'base = "missing.toml"'), "missing.toml"),
        (("seeds = 1", "seeds = 1\nretries = -1"), "retries"),
        (("seeds = 1", "seeds = 1\ncolour = 1"), "colour"),
        (
            ('"liquidation.fee" = [0.001]', '"liquidation.fee" = [0.001]\n"seed" = [1, 2]'),
            "",
        ),
        (
            ('"liquidation.fee" = [0.001]', '"steps" = [' + ", ".join(["5"] * 2) + "]"),
            "grid",
        ),
    ],
)
def test_bad_experiment(scenario_file, capsys, patch, needle):
    text = EXPERIMENT.replace(*patch)
    (scenario_file / "e.toml").write_text(text)
    expect_clean_error(scenario_file, capsys, ["sweep", "e.toml", "--no-progress"], needle=needle)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--workers", "0"], "--workers"),
        (["--workers", "abc"], "--workers"),
        (["--retries", "-1"], "--retries"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "--workers"),
        (["--scheduler", "not an address"], "--scheduler"),
    ],
)
def test_bad_sweep_options(scenario_file, capsys, args, needle):
    (scenario_file / "e.toml").write_text(EXPERIMENT)
    expect_clean_error(
        scenario_file,
        capsys,
        ["sweep", "e.toml", "--out", "sw", *args, "--no-progress"],
        needle=needle,
    )


def test_sweep_out_rules(scenario_file, capsys):
    (scenario_file / "e.toml").write_text(EXPERIMENT)
    (scenario_file / "f").write_text("mine")
    expect_clean_error(scenario_file, capsys, ["sweep", "e.toml", "--out", "f"], needle="--out")
    (scenario_file / "other").mkdir()
    (scenario_file / "other" / "a.txt").write_text("mine")
    expect_clean_error(scenario_file, capsys, ["sweep", "e.toml", "--out", "other"], needle="--out")


def test_unreachable_scheduler_fails_before_writing(scenario_file, capsys):
    (scenario_file / "e.toml").write_text(EXPERIMENT)
    expect_clean_error(
        scenario_file,
        capsys,
        ["sweep", "e.toml", "--out", "sw", "--scheduler", "tcp://127.0.0.1:9"],
        needle="--scheduler",
    )


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["report", "missing"], "missing"),
        (["report", "s.toml"], "s.toml"),
        (["report", "."], "neither a run"),
        (["replay", "missing.csv"], "missing.csv"),
        (["dashboard", "--port", "0"], "--port"),
        (["dashboard", "--port", "70000"], "--port"),
        (["dashboard", "--scenario", "missing.toml"], "missing.toml"),
        (["validate", "--out", "s.toml"], "--out"),
        (["validate", "--only", "nope"], "--only"),
        (["validate", "--seed-base", "-1"], "--seed-base"),
        (["validate", "--workers", "0"], "--workers"),
        (["nosuchcommand"], "nosuchcommand"),
    ],
)
def test_bad_other_commands(scenario_file, capsys, argv, needle):
    expect_clean_error(scenario_file, capsys, argv, needle=needle)


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("op,side,price,qty,id\nlimit,buy,4611686018427387904,1,1\n", "line 2"),
        ("op,side,price,qty,id\nlimit,buy,99999999999999999999999,1,1\n", "line 2"),
        ("op,side,price,qty,id\nlimit,buy,1.5,1,1\n", "line 2"),
        ("op,side,price,qty,id\nlimit,up,10,1,1\n", "line 2"),
        ("op,side,price,qty,id\nlimit,buy,10,0,1\n", "line 2"),
        ("op,side,price,qty,id\nlimit,buy,10,1,1\nlimit,buy,10,1,1\n", "line 3"),
        ("op,side,price,qty,id\nteleport,buy,10,1,1\n", "line 2"),
        ("op,side,price\n", "line 1"),
        ("op,side,price,qty,id\nlimit,buy,10,1\n", "line 2"),
    ],
)
def test_bad_replay_rows(tmp_path, capsys, body, needle):
    (tmp_path / "r.csv").write_text(body)
    expect_clean_error(tmp_path, capsys, ["replay", "r.csv"], needle=needle)


def test_replay_non_utf8(tmp_path, capsys):
    (tmp_path / "r.csv").write_bytes(b"op,side,price,qty,id\nlimit,buy,\xff,1,1\n")
    expect_clean_error(tmp_path, capsys, ["replay", "r.csv"], needle="UTF-8")


def test_there_are_over_a_hundred_cases():
    assert len(SCENARIO_CASES) + len(COLLATERAL_CASES) > 150


def test_too_many_shocks_or_markets_and_a_zero_vol_regime(tmp_path, capsys):
    """Issue #23: 200 000 shocks or 100 markets are refused at once (one line), and a
    volatility regime of size 0 is refused, not a NaN inside the run."""
    data = copy.deepcopy(BASE)
    data["shocks"] = [{"kind": "index_jump", "step": 5, "size": -0.01}] * 200_000
    (tmp_path / "s.toml").write_text(_toml(data), encoding="utf-8")
    expect_clean_error(tmp_path, capsys, ["run", "s.toml", "--no-progress"], needle="shocks")
    data = copy.deepcopy(BASE)
    m = data["markets"][0]
    data["markets"] = [m | {"name": f"M{i}"} for i in range(100)]
    data["correlation"] = 0.0
    data["shocks"] = []
    (tmp_path / "s.toml").write_text(_toml(data), encoding="utf-8")
    expect_clean_error(tmp_path, capsys, ["run", "s.toml", "--no-progress"], needle="markets")
    data = copy.deepcopy(BASE)
    data["shocks"] = [{"kind": "vol_regime", "step": 5, "size": 0.0, "duration": 3}]
    (tmp_path / "s.toml").write_text(_toml(data), encoding="utf-8")
    expect_clean_error(tmp_path, capsys, ["run", "s.toml", "--no-progress"], needle="size")


def test_a_volatility_beyond_the_books_range_stops_the_run_with_one_line(tmp_path, capsys):
    """A volatility regime of 1000 times for good takes an index below one tick within
    a hundred minutes (found by a randomized search, where two stacked regimes crashed a
    market maker's sizing with an OverflowError): the run stops with one line naming the
    market, exit 2, nothing written."""
    (tmp_path / "s.toml").write_text(
        'steps = 200\n[[shocks]]\nkind = "vol_regime"\nstep = 2\nsize = 1000.0\nduration = 0\n',
        encoding="utf-8",
    )
    argv = ["run", "s.toml", "--out", "out", "--no-progress"]
    err = expect_clean_error(tmp_path, capsys, argv, needle="outside what its book can quote")
    assert err.startswith("error: markets.")


def test_forced_flow_that_takes_the_value_beyond_the_books_range_stops_the_run(tmp_path, capsys):
    """In a world of venues the value is the news times the impact of everyone's flow:
    with the square-root law's prefactor at its largest and a day's volume of 1,000 USD,
    a minute's flow moves it by orders of magnitude. Before the value was range-checked
    the run went on to values of 1e21 USD and a cast of NaN (a ``RuntimeWarning``) in the
    sixth minute; now it stops with one line naming the market, exit 2, nothing
    written."""
    argv = ["run", "multivenue", "--steps", "30", "--out", "out", "--no-progress"]
    argv += ["--set", "impact.y=10", "--set", "impact.daily_volume=1000"]
    argv += ["--set", "shocks.0.step=10"]  # the preset's shock comes after the 30 steps
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        err = expect_clean_error(tmp_path, capsys, argv, needle="outside what its book can quote")
    assert err.startswith("error: markets.") and "the value reached" in err
