"""Analysis: every metric against small cases computed by hand; every figure renders
with its axes labelled; reports on a tiny run and a tiny sweep."""

from __future__ import annotations

import math
import tomllib

import networkx as nx
import numpy as np
import pandas as pd
import pytest
from crossmargin.analysis import figures as fg
from crossmargin.analysis import metrics as mx
from crossmargin.experiments.runner import run_scenario
from helpers import ROOT, cli, preset


def test_half_life_of_exponential_recovery():
    tau = 20.0
    base, drop = 100.0, 60.0
    t = np.arange(400)
    x = np.full(400, base)
    x[100:] = base - drop * np.exp(-(t[100:] - 100) / tau)
    hl = mx.half_life(x, 100)
    assert hl == pytest.approx(tau * math.log(2), abs=1.0)
    assert mx.half_life(np.full(400, 5.0), 100) is None  # no fall, no half-life
    never = x.copy()
    never[100:] = base - drop
    assert mx.half_life(never, 100) is None


def test_depth_retained_an_hour_later():
    x = np.r_[np.full(100, 10.0), np.full(30, 1.0), np.full(300, 4.0)]
    assert mx.depth_retained(x, 100) == pytest.approx(0.4)  # at steps 160-169
    assert mx.depth_retained(x, 100, after=10) == pytest.approx(0.1)
    assert mx.depth_retained(x[:150], 100) is None  # ends too soon
    assert mx.depth_retained(np.zeros(400), 100) is None  # no depth before
    assert mx.half_life(x, 100) is None  # the case it is for: never got half back


def test_spread_half_life_and_price_recovery():
    t = np.arange(300)
    spread = np.full(300, 2.0)
    spread[50:] = 2.0 + 8.0 * np.exp(-(t[50:] - 50) / 10.0)
    assert mx.spread_half_life(spread, 50) == pytest.approx(10 * math.log(2), abs=1.0)
    p = np.r_[np.full(50, 100.0), np.full(50, 80.0), np.full(200, 90.0)]
    assert mx.price_recovery(p, 50, window=250) == pytest.approx(0.5)


def test_replenishment_probability():
    d = np.r_[np.full(50, 10.0), np.full(20, 1.0), np.full(80, 10.0), np.full(100, 1.0)]
    assert mx.replenishment_probability(d, [50, 150], window=60) == pytest.approx(0.5)


def test_debtrank_chain_by_hand():
    g = nx.DiGraph()
    g.add_nodes_from("ABC", value=1.0)
    g.add_edge("A", "B", weight=0.5)
    g.add_edge("B", "C", weight=0.4)
    r, h = mx.debtrank(g, {"A": 1.0})
    assert h == pytest.approx({"A": 1.0, "B": 0.5, "C": 0.2})
    assert r == pytest.approx((0.5 + 0.2) / 3)


def test_debtrank_cycle_propagates_once():
    g = nx.DiGraph()
    g.add_nodes_from("AB", value=1.0)
    g.add_edge("A", "B", weight=1.0)
    g.add_edge("B", "A", weight=1.0)
    r, h = mx.debtrank(g, {"A": 0.5})
    assert h == pytest.approx({"A": 1.0, "B": 0.5})
    assert r == pytest.approx(0.5)


def test_kurtosis_tail_index_and_acf():
    two_point = np.tile([-1.0, 1.0], 500)
    assert mx.excess_kurtosis(two_point) == pytest.approx(-2.0)
    rng = np.random.default_rng(1)
    assert abs(mx.excess_kurtosis(rng.standard_normal(200_000))) < 0.05
    pareto = (rng.pareto(3.0, 200_000) + 1) * rng.choice([-1, 1], 200_000)
    assert mx.hill_tail_index(pareto, tail=0.02) == pytest.approx(3.0, rel=0.1)
    ar = np.zeros(50_000)
    e = rng.standard_normal(50_000)
    for k in range(1, len(ar)):
        ar[k] = 0.6 * ar[k - 1] + e[k]
    acf = mx.autocorrelation(ar, [1, 2])
    assert acf == pytest.approx([0.6, 0.36], abs=0.02)


def test_robust_autocorrelation_se():
    """1/√n for i.i.d. returns; wider under volatility clustering, and then it holds
    its nominal size where 1/√n rejects far too often."""
    rng = np.random.default_rng(5)
    n = 4000
    assert mx.autocorrelation_se(rng.standard_normal(n), [1, 5]) == pytest.approx(
        [1 / math.sqrt(n)] * 2, rel=0.05
    )
    naive = robust = 0
    for _ in range(200):
        # Uncorrelated returns with GARCH(1,1)-like variance clustering.
        z = rng.standard_normal(n)
        r, h = np.empty(n), 1.0
        for t in range(n):
            r[t] = math.sqrt(h) * z[t]
            h = 0.05 + 0.2 * r[t] ** 2 + 0.75 * h
        rho = mx.autocorrelation(r, [1])[0]
        naive += abs(rho) > 2 / math.sqrt(n)
        robust += abs(rho) > 2 * mx.autocorrelation_se(r, [1])[0]
    assert naive > 35  # 49 here: far above the nominal 5% of 200
    assert robust < 20  # 10 here


def test_stylized_facts_table():
    rng = np.random.default_rng(3)
    prices = 100 * np.exp(np.cumsum(0.001 * rng.standard_t(3, 5000)))
    sf = mx.stylized_facts(prices, horizons=(1, 10))
    assert list(sf["horizon"]) == [1, 10]
    assert sf.loc[0, "excess_kurtosis"] > 1  # Student-t(3) returns are heavy-tailed
    assert 1.5 < sf.loc[0, "tail_index"] < 5


def test_loss_shares():
    ev = pd.DataFrame(
        {
            "kind": ["insurance", "adl", "adl", "partial", "socialized"],
            "loss": [30.0, 10.0, 10.0, 99.0, 50.0],
            "notional": [0.0, 0.0, 0.0, 500.0, 0.0],
        }
    )
    s = mx.loss_shares(ev)
    assert s["insurance_fund"] == pytest.approx(0.3) and s["adl"] == pytest.approx(0.2)
    assert s["socialized"] == pytest.approx(0.5) and s.sum() == pytest.approx(1.0)
    assert mx.loss_shares(ev.iloc[3:4]).sum() == 0.0


def test_loss_table_counts_adl_closes_apart_from_adl_charges():
    """ADL closes at no worse than the mark carry notional but no loss (issue #16: 812 ADL
    events beside an ADL loss share of 0 is not a contradiction when the table says so)."""
    ev = pd.DataFrame(
        {
            "kind": ["insurance", "adl", "adl", "bad_debt"],
            "loss": [30.0, 0.0, 10.0, 20.0],
            "notional": [0.0, 500.0, 0.0, 0.0],
            "account": [0, 1, 2, 3],
        }
    )
    model = pd.DataFrame({"vault_pnl": [0.0, -40.0]})
    t = mx.loss_table(ev, model).set_index("bearer")
    assert t.loc["adl", "events"] == 2 and t.loc["adl", "notional"] == 500.0
    assert t.loc["adl", "loss"] == 10.0 and t.loc["vault", "loss"] == 40.0
    assert t.loc["total", "loss"] == 100.0 and t["share"].iloc[:-1].sum() == pytest.approx(1.0)
    assert t.loc["insurance_fund", "share"] == pytest.approx(0.3)


def _cascade_graph():
    """shock → L0 (gen 0) → its full order → L2 (gen 1); market → L5 (gen 0)."""
    g = nx.DiGraph()
    g.add_node("market", kind="root", account=-1, loss=0.0, notional=0.0, step=0, round=0)
    rows = [
        (0, "shock", -1, 0.0, []),
        (1, "liquidation", 10, 5.0, [0]),
        (2, "full", 10, 1.0, [1]),
        (3, "liquidation", 11, 3.0, [2]),
        (4, "liquidation", 12, 1.0, [2]),
        (5, "liquidation", 13, 2.0, []),
    ]
    for i, kind, acct, loss, causes in rows:
        g.add_node(str(i), kind=kind, account=acct, loss=loss, notional=10 * loss, step=1, round=0)
        for c in causes:
            g.add_edge(str(c), str(i), weight=1.0)
        if not causes and kind != "shock":
            g.add_edge("market", str(i), weight=loss)
    return g


def test_cascade_metrics_by_hand():
    g = _cascade_graph()
    gens = mx.branching_by_generation(g)
    assert list(gens["liquidations"]) == [2, 2, 4]  # generations 0, 1, then "all"
    assert gens.loc[0, "branching"] == pytest.approx(1.0)  # L1 has two children, L5 none
    assert list(gens["generation"]) == [0, 1, "all"]
    assert gens.loc[2, "branching"] == pytest.approx(0.5)  # 2 children / 4 liquidations
    sizes = mx.cascade_sizes(g)
    assert sorted(sizes["accounts"]) == [1, 3]
    assert sizes.loc[0, "depth"] == 2 and sizes.loc[0, "shock"]
    assert mx.summary_cascade(g) == {"max_depth": 2, "largest_size": 3, "mean_branching": 0.5}


def test_firesale_by_hand_and_on_an_exposure_graph():
    from crossmargin.analysis.firesale import fire_sale, from_exposure_graph

    # two banks share asset 1; bank 0 also holds the shocked asset 0
    Q = np.array([[0.5, 0.5], [0.0, 1.0]])
    equity = np.array([0.1, 0.3])
    failed, prices = fire_sale(Q, equity, alpha=1.0536, shocked_asset=0)
    # bank 0 loses 0.5 > 0.1 and sells its 0.5 of asset 1 (a third of it): the price
    # falls to exp(-1.0536/3) = 0.704, bank 1 loses 0.296 < 0.3 and survives
    assert failed.tolist() == [True, False]
    assert prices[1] == pytest.approx(math.exp(-1.0536 / 3))
    g = nx.Graph()
    g.add_node("market:A", kind="market")
    g.add_node("account:1", kind="account", equity=10.0)
    g.add_edge("account:1", "market:A", kind="position", weight=50.0)
    holders, markets, H, eq = from_exposure_graph(g)
    assert holders == ["account:1"] and markets == ["market:A"]
    assert H.tolist() == [[50.0]] and eq.tolist() == [10.0]


def labels(fig):
    return {ax.get_xlabel() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "r"
    run_scenario(preset("baseline", steps=150, traders=120), out)
    return out


def test_run_figures_render(tiny_run, tmp_path):
    fg.theme()
    df = pd.read_parquet(tiny_run / "model.parquet")
    ev = pd.read_parquet(tiny_run / "events.parquet")
    g = nx.read_graphml(tiny_run / "cascade.graphml")
    x = nx.read_graphml(tiny_run / "exposure.graphml")
    cases = {
        "prices": (fg.prices(df, ev), {"time (minutes)", "BTC (USD)"}),
        "liquidations": (
            fg.liquidations(df),
            {"time (minutes)", "liquidated notional\nper 5 min (USD)"},
        ),
        "pools": (fg.pools(df), {"time (minutes)", "change since start (USD)"}),
        "depth": (fg.depth_heatmap(df), {"time (minutes)", "BTC\nbp from mid"}),
        "margin": (fg.margin_ratio(df), {"margin ratio\nequity / MM"}),
        "leverage": (fg.leverage(df), {"aggregate leverage (×)", "open interest (USD)"}),
        "cascade": (fg.cascade(g), set()),
        "exposure": (fg.exposure(x), set()),
    }
    for name, (fig, want) in cases.items():
        assert want <= labels(fig), (name, labels(fig))
        for p in fg.save(fig, tmp_path, name):
            assert p.stat().st_size > 2_000


def test_sweep_figures_render(tmp_path):
    fg.theme()
    rng = np.random.default_rng(0)
    rows = [
        {
            "status": "ok",
            "param.margin_mode": mode,
            "param.shocks.0.size": s,
            "seed": k,
            "liquidations": rng.poisson(10 * -s * 10),
            "liquidated_notional": rng.random() * 1e6,
            "cascade_largest_size": rng.integers(1, 50),
        }
        for mode in ("cross", "isolated")
        for s in (-0.05, -0.1, -0.2)
        for k in range(3)
    ]
    t = pd.DataFrame(rows)
    figs = {
        "heat": (
            fg.heatmap(t, "param.margin_mode", "param.shocks.0.size", "liquidations"),
            {"margin mode", "shock 1 size (fraction)"},
        ),
        "lines": (
            fg.lines(t, "param.shocks.0.size", "liquidations", hue="param.margin_mode"),
            {"shock 1 size (fraction)", "liquidations (waterfall entries)"},
        ),
        "ccdf": (fg.ccdf(t, hue="param.margin_mode"), {"P(size ≥ x)"}),
        "points": (
            fg.points(t, "param.margin_mode", "liquidated_notional"),
            {"margin mode", "liquidated notional (USD)"},
        ),
        "cvi": (fg.cross_vs_isolated(t, "param.shocks.0.size"), {"shock size (%)"}),
        "sobol": (
            fg.sobol(
                pd.DataFrame(
                    {
                        "output": ["y", "y"],
                        "parameter": ["a", "b"],
                        "S1": [0.6, 0.2],
                        "S1_conf": [0.1, 0.1],
                        "ST": [0.7, 0.3],
                        "ST_conf": [0.1, 0.1],
                    }
                )
            ),
            {"Sobol index"},
        ),
    }
    for name, (fig, want) in figs.items():
        assert want <= labels(fig), (name, labels(fig))
        assert all(p.stat().st_size > 2_000 for p in fg.save(fig, tmp_path, name))


def test_report_on_a_run(tiny_run):
    r = cli("report", str(tiny_run))
    assert r.returncode == 0, r.stderr
    md = (tiny_run / "report.md").read_text()
    html = (tiny_run / "report.html").read_text()
    for name in (
        "prices",
        "liquidations",
        "pools",
        "depth",
        "margin_ratio",
        "leverage",
        "cascade",
        "exposure",
    ):
        assert (tiny_run / "figures" / f"{name}.png").stat().st_size > 0
        assert (tiny_run / "figures" / f"{name}.pdf").stat().st_size > 0
        assert f"figures/{name}.png" in md
    assert (
        "data:image/png;base64," in html
        and "figures/" not in html.split("<body>")[1].split('src="')[0]
    )
    assert "## Headline" in md and "## Every summary value" in md and "DebtRank" in md


def test_report_on_a_sweep(tmp_path):
    exp = tmp_path / "e.toml"
    exp.write_text(
        f"""[experiment]
name = "mini"
base = "{ROOT}/experiments/scenarios/baseline.toml"
seeds = 2
[overrides]
steps = 60
"shocks.0.step" = 30
"agents.leveraged.count" = 40
"agents.noise.count" = 20
"agents.market_makers.count" = 3
[grid]
margin_mode = ["cross", "isolated"]
"shocks.0.size" = [-0.05, -0.15]
"""
    )
    out = tmp_path / "sweep"
    r = cli("sweep", str(exp), "--out", str(out), "--workers", "2", "--no-progress")
    assert r.returncode == 0, r.stderr
    r = cli("report", str(out))
    assert r.returncode == 0, r.stderr
    md = (out / "report.md").read_text()
    assert "heatmap_liquidated_notional.png" in md and "cross_vs_isolated.png" in md
    assert (out / "report.html").stat().st_size > 10_000


def test_report_bad_dir(tmp_path):
    r = cli("report", str(tmp_path))
    assert r.returncode == 2 and "neither a run" in r.stderr


def test_sobol_report_on_a_sampled_sweep(tmp_path):
    exp = tmp_path / "s.toml"
    exp.write_text(
        f"""[experiment]
name = "sens"
base = "{ROOT}/experiments/scenarios/baseline.toml"
[overrides]
steps = 40
"shocks.0.step" = 20
"agents.leveraged.count" = 40
"agents.noise.count" = 20
"agents.market_makers.count" = 3
[sample]
method = "sobol"
n = 4
[sample.bounds]
"liquidation.fee" = [0.0, 0.01]
"shocks.0.size" = [-0.2, -0.02]
"""
    )
    out = tmp_path / "sweep"
    r = cli("sweep", str(exp), "--out", str(out), "--workers", "2", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert len(pd.read_parquet(out / "summary.parquet")) == 4 * (2 + 2)
    r = cli("report", str(out))
    assert r.returncode == 0, r.stderr
    md = (out / "report.md").read_text()
    assert "sobol.png" in md and "| output | parameter | S1 |" in md


@pytest.fixture(scope="module")
def crash_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("crash") / "r"
    # The October preset with the pre-calibration behaviour (leverage 7, makers that stay
    # away, no entrants, no peg arbitrage): a crash that reaches every pool, ADL included.
    sc = preset("oct2025_collateral_depeg", steps=220, traders=250).replace(
        **{
            "agents.leveraged.leverage_median": 7.0,
            "agents.leveraged.long_bias": 0.84,
            "agents.market_makers.reentry": "calm",
            "agents.market_makers.vol_source": "mark",
            "agents.market_makers.withdraw_vol": 0.004,
            "agents.market_makers.replenish_rate": 0.5,
            "agents.market_makers.cooldown": 30,
            "agents.entrants.count": 0,
            "collateral.arbitrage_capital": 0.0,
        }
    )
    run_scenario(sc, out)
    assert cli("report", str(out)).returncode == 0
    return out


def _md_row(md: str, first: str) -> list[str]:
    """The cells of the first markdown table row whose first cell is ``first``."""
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and cells[0] == first:
            return cells
    raise AssertionError(f"no row {first!r}")


def test_headline_numbers_agree_between_summary_report_and_figures(crash_run):
    """Issue #16: each headline number computed two ways (summary.json, the files, the
    report's tables and the cascade figure's title) gives the same value."""
    import json

    summary = json.loads((crash_run / "summary.json").read_text())
    ev = pd.read_parquet(crash_run / "events.parquet")
    df = pd.read_parquet(crash_run / "model.parquet")
    g = nx.read_graphml(crash_run / "cascade.graphml")
    md = (crash_run / "report.md").read_text()
    heads = ev[ev["kind"] == "liquidation"]
    assert summary["liquidations"] == len(heads) == df["liquidations"].sum()
    assert summary["accounts_liquidated"] == heads["account"].nunique()
    assert summary["accounts_liquidated"] < summary["liquidations"]  # re-entries exist
    assert _md_row(md, "accounts_liquidated")[1] == f"{summary['accounts_liquidated']:,}"
    # one branching ratio: summary = report's "all" row = the figure's title
    b = summary["cascade_mean_branching"]
    assert b > 0
    assert float(_md_row(md, "all")[2]) == pytest.approx(b, rel=1e-3)
    assert mx.summary_cascade(g)["mean_branching"] == pytest.approx(b)
    assert f"branching ratio {b:.2f}" == fg.cascade(g).axes[1].get_title()
    # losses by bearer: the summary's pools, the events and the report's table agree
    borne = summary["loss_borne"]
    assert borne["insurance_fund"] == pytest.approx(max(0.0, -summary["fund_pnl"]), abs=1e-6)
    assert borne["adl"] == pytest.approx(summary["adl_charged"], abs=1e-6)
    assert borne["socialized"] == pytest.approx(summary["socialized_loss"], abs=1e-6)
    assert borne["bad_debt"] == pytest.approx(summary["bad_debt"], abs=1e-6)
    assert borne["vault"] == pytest.approx(max(0.0, -summary["vault_pnl"]))
    table = mx.loss_table(ev, df).set_index("bearer")
    assert table.loc["total", "loss"] == pytest.approx(sum(borne.values()))
    assert table["share"].iloc[:-1].sum() == pytest.approx(1.0)
    assert table.loc["adl", "events"] == (ev["kind"] == "adl").sum() > 0
    total = float(_md_row(md, "total")[3].replace(",", ""))
    assert total == pytest.approx(sum(borne.values()), rel=1e-3)
    assert summary["long_share"] == pytest.approx(mx.long_share(ev))


def _documented(doc: str, section: str) -> tuple[set[str], list[list[str]]]:
    """Backticked names of one ``## `file` `` section of docs/outputs.md, and the
    backticked names of each table row (for ``_suffix`` and ``a … b`` shorthands)."""
    import re

    part = doc.split(f"## `{section}`")[1].split("\n", 1)[1].split("\n## ")[0]
    rows = [
        re.findall(r"`([^`]+)`", ln.split("|")[1]) for ln in part.splitlines() if ln[:2] == "| "
    ]
    return set(re.findall(r"`([^`]+)`", part)), rows


def _covered(col: str, names: set[str], rows: list[list[str]]) -> bool:
    import re

    if col in names:
        return True
    for row in rows:
        if not row:
            continue
        for tok in row[1:]:
            if tok.startswith("_") and col.endswith(tok) and row[0].startswith(col[: -len(tok)]):
                return True
        stem = re.sub(r"\d+$", "", row[0])
        if len(row) > 1 and stem != row[0] and re.fullmatch(re.escape(stem) + r"\d+", col):
            return True
    return False


def test_data_dictionary_covers_every_output_column(crash_run):
    """docs/outputs.md names every column of model.parquet, events.parquet and
    trades.parquet and every key of summary.json that the code writes (issue #16)."""
    import json

    doc = (ROOT / "docs" / "outputs.md").read_text()
    df = pd.read_parquet(crash_run / "model.parquet")
    markets = [c[: -len("_mark")] for c in df.columns if c.endswith("_mark")]
    cols = {next((f"{{M}}{c[len(m) :]}" for m in markets if c.startswith(m + "_")), c) for c in df}
    names, rows = _documented(doc, "model.parquet")
    assert not [c for c in cols if not _covered(c, names, rows)]
    for section, frame in (("events.parquet", "events"), ("trades.parquet", "trades")):
        names, _ = _documented(doc, section)
        missing = set(pd.read_parquet(crash_run / f"{frame}.parquet").columns) - names
        assert not missing, (section, missing)
    names, _ = _documented(doc, "summary.json")
    summary = json.loads((crash_run / "summary.json").read_text())
    assert not set(summary) - names, set(summary) - names


# ------------------------------------------------- issue #23: reports lead with the answer


def _texts_inside(fig) -> list[str]:
    """Every title, axis label, legend text, annotation and tick label of ``fig`` that is
    drawn, each checked to lie inside the figure (not cut at print size); return them."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    texts = [t for t in (fig._suptitle, *fig.texts) if t is not None]
    for leg in [*fig.legends, *(ax.get_legend() for ax in fig.axes)]:
        if leg is not None:
            texts += [*leg.get_texts(), leg.get_title()]
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        texts += ax.texts
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks():
                if lo - 1e-9 <= tick.get_loc() <= hi + 1e-9:
                    texts += [tick.label1, tick.label2]
    seen = []
    for t in texts:
        if not t.get_visible() or not t.get_text().strip():
            continue
        e = t.get_window_extent(renderer)
        assert e.x0 >= box.x0 - 1 and e.x1 <= box.x1 + 1, (t.get_text(), e, box)
        assert e.y0 >= box.y0 - 1 and e.y1 <= box.y1 + 1, (t.get_text(), e, box)
        seen.append(t.get_text())
    return seen


def _tick_values(axis) -> list[float]:
    lo, hi = axis.get_view_interval()
    return [v for v in axis.get_majorticklocs() if lo <= v <= hi]


def test_figures_at_print_size(crash_run):
    """Nothing cut, shocks labelled by kind and minute, a zoom panel beside a late
    crash, whole-number ticks on counts, a readable CCDF, the cascade's legend clear of
    its markers (issue #23, item 8)."""
    fg.theme()
    df = pd.read_parquet(crash_run / "model.parquet")
    sc = tomllib.loads((crash_run / "scenario.toml").read_text())
    marks = fg.shock_marks(sc["shocks"])
    fig = fg.liquidations(df, shocks=marks)
    texts = _texts_inside(fig)
    assert len(fig.axes) == 2, "a zoom panel beside the whole run"
    assert any("index −" in t and "@" in t for t in texts), texts
    assert not any(t.strip() == "shock" for t in texts)
    fig = fg.leverage(df, shocks=marks)
    _texts_inside(fig)
    assert all(float(v).is_integer() for v in _tick_values(fig.axes[2].yaxis))
    g = nx.read_graphml(crash_run / "cascade.graphml")
    fig = fg.cascade(g)
    _texts_inside(fig)
    ax = fig.axes[0]
    leg = ax.get_legend().get_window_extent(fig.canvas.get_renderer())
    assert leg.y1 <= ax.get_window_extent(fig.canvas.get_renderer()).y0 + 1  # below the axes
    assert all(float(v).is_integer() for v in _tick_values(fig.axes[1].xaxis))


def test_sweep_figures_at_print_size():
    fg.theme()
    rows = [
        {
            "status": "ok",
            "param.margin_mode": m,
            "param.shocks.0.size": s,
            "seed": k,
            "liquidations": 10 + k + (m == "isolated") * 30,
            "liquidated_notional": 1e6 * (k + 1),
            "cascade_largest_size": 5 + 7 * k + (s < -0.1) * 20,
        }
        for m in ("cross", "isolated")
        for s in (-0.05, -0.15)
        for k in range(6)
    ]
    t = pd.DataFrame(rows)
    for fig in (
        fg.points(t, "param.margin_mode", "liquidated_notional", hue="param.shocks.0.size"),
        fg.lines(t, "param.shocks.0.size", "liquidations", hue="param.margin_mode"),
        fg.heatmap(t, "param.margin_mode", "param.shocks.0.size", "liquidated_notional"),
    ):
        _texts_inside(fig)
    fig = fg.ccdf(t, hue="param.margin_mode")
    assert len(_tick_values(fig.axes[0].yaxis)) >= 3
    fig = fg.lines(t, "param.shocks.0.size", "liquidations", hue="param.margin_mode")
    assert all(float(v).is_integer() for v in _tick_values(fig.axes[0].yaxis))


def test_run_report_leads_with_a_headline(crash_run):
    md = (crash_run / "report.md").read_text()
    sections = [line for line in md.splitlines() if line.startswith("## ")]
    assert sections[0] == "## Headline"
    head = md.split("## Headline", 1)[1].split("## ", 1)[0]
    for needle in (
        "liquidated notional | $",
        "accounts liquidated",
        "bad debt written off",
        "depth within ±1%",
    ):
        assert needle in head, needle
    assert "e-0" not in head  # dust is 0, not 1.49e-08
    table = mx.loss_table(pd.read_parquet(crash_run / "events.parquet"))
    ev = pd.read_parquet(crash_run / "events.parquet")
    took = ev.loc[ev["kind"] == "backstop", "notional"].sum()
    assert table.set_index("bearer").loc["vault", "notional"] == pytest.approx(took)
