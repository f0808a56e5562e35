"""The validation suite: the registered criteria file, its statistics, its jobs, the
CLI end to end (quick sizes), and the helpers that used to be "checks" but never built
the model (the zero-intelligence book; Eisenberg–Noe against the LP and the DebtRank
hand example live in test_pools.py and test_analysis.py)."""

from __future__ import annotations

import json
import math
import re
import tomllib

import numpy as np
import pandas as pd
import pytest
from crossmargin.analysis.validation import CRITERIA, build_jobs, load_criteria
from crossmargin.analysis.validation.measures import recovery_times
from crossmargin.analysis.validation.stats import (
    STATISTICS,
    Estimate,
    bootstrap,
    evaluate,
    km_median,
)
from crossmargin.analysis.validation.suite import judge
from crossmargin.model import CrossMarginModel, Scenario
from crossmargin.model.orderbook import BUY, SELL, OrderBook
from helpers import cli

TESTS = {"within", "above", "below", "all_contain_zero", "untestable"}


# ------------------------------------------------------------------ the criteria file


def test_criteria_file_is_complete_and_registered_at_full_size():
    data = tomllib.loads(CRITERIA.read_text())
    ids = [c["id"] for ch in data["check"] for c in ch["criterion"]]
    assert len(ids) == len(set(ids))
    for ch in data["check"]:
        for key in ("name", "title", "preset", "setting", "seeds"):
            assert key in ch, (ch["name"], key)
        assert ch["seeds"]["count"] >= 20, ch["name"]  # statistics, not single runs
        Scenario.preset(ch["preset"])
        for c in ch["criterion"]:
            for key in ("id", "quantity", "statistic", "measure", "test", "source"):
                assert key in c, (c.get("id"), key)
            assert c["statistic"] in STATISTICS or c["test"] == "untestable"
            assert c["test"] in TESTS
            if "supersedes" in c:
                assert c["supersedes"] in ids and c.get("reason"), c["id"]
    c = load_criteria()
    assert re.fullmatch(r"[0-9a-f]{40}", c.blob)


def test_quick_seed_base_and_only():
    c = load_criteria(quick=True, seed_base=77, only=["cascade_sizes"])
    assert [ch["name"] for ch in c.checks] == ["cascade_sizes"]
    assert c.checks[0]["seeds"] == {"base": 77, "count": 3}
    assert c.checks[0]["population"]["agents.leveraged.count"] == 80
    with pytest.raises(ValueError, match="--only: unknown"):
        load_criteria(only=["nope"])


def test_every_check_builds_valid_jobs():
    for spec in load_criteria(quick=True).checks:
        jobs = build_jobs(spec)
        assert jobs, spec["name"]
        for j in jobs:
            sc = Scenario.from_dict(j["scenario"])
            assert sc.seed == j["seed"]
        seeds = {j["seed"] for j in jobs}
        assert len(seeds) == spec["seeds"]["count"]  # grid cells share their seeds (CRN)
    full = {s["name"]: s for s in load_criteria().checks}
    lev = build_jobs(full["leverage_tails"])
    assert len(lev) == 6 * 20
    assert {Scenario.from_dict(j["scenario"]).leverage_cap for j in lev} == {
        1.5,
        2.0,
        4.0,
        8.0,
        16.0,
        32.0,
    }
    op = Scenario.from_dict(build_jobs(full["overlapping_portfolios"])[0]["scenario"])
    assert op.market_names == tuple(f"M{i}" for i in range(1, 9)) or list(op.market_names) == [
        f"M{i}" for i in range(1, 9)
    ]
    sf = Scenario.from_dict(build_jobs(full["stylized_facts"])[0]["scenario"])
    assert sf.garch_alpha == sf.garch_beta == 0 and sf.common_jump_intensity == 0
    assert all(m.jump_intensity == 0 for m in sf.markets)  # a Gaussian index


# ------------------------------------------------------------------ statistics


@pytest.mark.parametrize(("alpha", "xmin", "seed"), [(2.1, 1, 0), (2.6, 3, 1), (2.9, 6, 2)])
def test_power_law_draws_are_powerlaws_own(alpha, xmin, seed):
    """The goodness-of-fit bootstrap's sampler gives the integers powerlaw's exact
    discrete sampler gives from the same global state, and leaves the state where
    powerlaw leaves it (the next draws of the bootstrap are the same too)."""
    import powerlaw
    from crossmargin.analysis.validation.stats import power_law_draws

    pl = powerlaw.Power_Law(xmin=xmin, parameters=[alpha], discrete=True)
    assert not pl.estimate_discrete  # the exact (slow) path is the one replaced
    np.random.seed(seed)
    slow, after_slow = pl.generate_random(150), np.random.random()
    np.random.seed(seed)
    fast, after_fast = power_law_draws(pl, 150), np.random.random()
    assert np.array_equal(slow, fast) and after_slow == after_fast
    assert fast.dtype == np.int64 and fast.min() >= xmin
    with pytest.raises(ValueError, match="out of range"):  # powerlaw itself never returns
        power_law_draws(powerlaw.Power_Law(xmin=7, parameters=[3.4], discrete=True), 5)


def test_bootstrap_interval_covers_and_resamples_seeds_together():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"seed": np.repeat(np.arange(30), 2), "x": rng.normal(1, 1, 60)})
    v, lo, hi, bad = bootstrap(df, lambda d: d["x"].mean(), n=400, confidence=0.95, seed=1)
    assert lo < v < hi and lo < 1 < hi and bad == 0
    # an undefined statistic on some resample makes the interval undefined
    v, lo, hi, bad = bootstrap(
        df,
        lambda d: 1.0 if d["x"].iloc[0] == df["x"].iloc[0] else math.nan,
        n=50,
        confidence=0.95,
        seed=1,
    )
    assert math.isnan(lo) and bad > 0
    assert not evaluate(Estimate(v, lo, hi), {"test": "above", "lo_tol": 0})


def test_paired_mean_uses_common_seeds():
    rows = []
    for s in range(25):
        for mode, x in (("cross", s + 1.0), ("isolated", s + 0.0)):
            rows.append({"seed": s, "margin_mode": mode, "kind": "wide", "size": -0.2, "y": x})
    crit = {"measure": "y|wide|-0.2"}
    boot = {"n": 200, "confidence": 0.95, "seed": 3}
    est = STATISTICS["paired_mean"](pd.DataFrame(rows), crit, {}, boot)
    # the difference is exactly 1 in every seed: the paired interval has no width
    assert est.value == est.lo == est.hi == 1.0


def test_km_median_keeps_censored_observations():
    # dropping the censored ones would give a median of 1; they belong in the estimate
    assert km_median(np.array([1.0, 1, 60, 60, 60]), np.array([1, 1, 0, 0, 0])) == math.inf
    assert km_median(np.array([1.0, 2, 3, 60]), np.array([1, 1, 1, 0])) == 3.0


def test_recovery_times_in_steps_and_event_time():
    x = np.array([10, 10, 10, 10, 4, 5, 8, 9, 10.0])
    clock = np.array([5, 5, 5, 5, 7, 11, 13, 2, 2.0])
    steps, units, obs = recovery_times(x, [4], clock, pre=4, window=4)
    assert steps == [2.0] and obs == [1]
    assert units == [11 + 13]  # orders submitted in the two steps after the event
    # never recovered within the window: censored at the window
    steps, _, obs = recovery_times(
        np.array([10, 10, 2, 2, 2, 2.0]), [2], np.ones(6), pre=2, window=3
    )
    assert obs == [0] and steps == [3.0]
    # did not fall: resilient at once
    assert recovery_times(np.full(6, 10.0), [2], np.ones(6), pre=2, window=3)[0] == [0.0]


def test_superseding_criterion_keeps_the_old_verdict():
    spec = {
        "name": "demo",
        "criterion": [
            {
                "id": "old",
                "quantity": "x",
                "statistic": "mean",
                "measure": "x",
                "test": "above",
                "lo_tol": 5.0,
                "source": "s",
            },
            {
                "id": "new",
                "quantity": "x",
                "statistic": "mean",
                "measure": "x",
                "test": "above",
                "lo_tol": 0.0,
                "source": "s",
                "supersedes": "old",
                "registered": "2026-11-26",
                "reason": "demo",
            },
        ],
    }
    df = pd.DataFrame({"seed": range(20), "x": np.linspace(1, 2, 20)})
    res = judge(spec, df, {"bootstrap": 200, "confidence": 0.95, "bootstrap_seed": 1})
    old, new = res
    assert not old.passed and old.superseded_by == "new"
    assert new.passed and new.supersedes == "old" and new.reason == "demo"


# ------------------------------------------------------------------ the model hooks


def test_add_shock_branches_a_history_with_common_random_numbers():
    sc = Scenario.preset("calm").replace(
        steps=40,
        **{
            "agents.leveraged.count": 40,
            "agents.noise.count": 20,
            "agents.market_makers.count": 4,
        },
    )
    import copy

    m = CrossMarginModel(sc)
    m.run_for(20)
    a, b = copy.deepcopy(m), copy.deepcopy(m)
    b.add_shock({"kind": "index_jump", "step": 30, "size": -0.1})
    a.run_for(20)
    b.run_for(20)
    fa, fb = a.model_frame(), b.model_frame()
    assert fa["BTC_index"].iloc[:29].equals(fb["BTC_index"].iloc[:29])  # same history
    assert fb["BTC_index"].iloc[-1] < fa["BTC_index"].iloc[-1]
    with pytest.raises(ValueError, match="step"):
        b.add_shock({"kind": "index_jump", "step": 5, "size": -0.1})
    for mm in (a, b):  # the books still reconcile
        assert abs(mm.summary()["state_error"]) < 1e-6


# ------------------------------------------------------------------ moved: ZI spread law


def _zi_spread(mu_over_alpha: float, eps: float, n_events: int, *, seed: int) -> float:
    """Time-averaged spread (ticks) of the Santa Fe zero-intelligence model on the
    project's order book (Farmer, Patelli & Zovko 2005)."""
    rng = np.random.default_rng(seed)
    alpha, sigma = 1.0, 1
    mu = mu_over_alpha * alpha
    delta = eps * mu / sigma
    span, mid0 = 400, 100_000
    book = OrderBook(stp=False)
    live: list[int] = []
    for k in range(1, 60):
        for side, p in ((BUY, mid0 - k), (SELL, mid0 + k)):
            book.limit(side, p, 1)
            live.append(book.last_id)
    t = acc = t_start = 0.0
    limit_rate = 2 * alpha * span
    for i in range(n_events):
        if i % 500 == 0:
            live = [o for o in live if o in book]
        n = len(live)
        total = limit_rate + mu + delta * n
        dt = rng.exponential(1 / total)
        bb, ba = book.best_bid, book.best_ask
        if bb is not None and ba is not None and i > 0.2 * n_events:
            acc += (ba - bb) * dt
        t += dt
        u = rng.random() * total
        if u < limit_rate:
            side = BUY if u < limit_rate / 2 else SELL
            ref = (ba if side == BUY else bb) or mid0
            price = ref - side * int(rng.integers(1, span + 1))
            if price > 0:
                book.limit(side, price, sigma)
                if book.last_id in book:
                    live.append(book.last_id)
        elif u < limit_rate + mu:
            book.market(BUY if rng.random() < 0.5 else SELL, sigma)
        elif n:
            k = int(rng.integers(n))
            oid = live[k]
            live[k] = live[-1]
            live.pop()
            book.cancel(oid)
        if len(book.fills) > 10_000:
            book.fills.clear()
        if i == int(0.2 * n_events):
            t_start = t
    return acc / max(t - t_start, 1e-9)


def test_zero_intelligence_spread_is_proportional_to_mu_over_alpha():
    """At fixed δσ/μ the mean spread ∝ μ/α (Farmer, Patelli & Zovko 2005): a property
    of the bare book, not of the model, hence a unit test."""
    ratios = np.array([4.0, 8.0, 16.0, 32.0])
    spreads = [_zi_spread(r, 0.05, 200_000, seed=k) for k, r in enumerate(ratios)]
    slope = np.polyfit(np.log(ratios), np.log(spreads), 1)[0]
    assert 0.8 <= slope <= 1.2, slope


# ------------------------------------------------------------------ the CLI end to end


@pytest.mark.timeout(3600)  # never fail because the machine is slow or shared
def test_validate_quick_end_to_end(tmp_path):
    out = tmp_path / "val"
    r = cli("validate", "--quick", "--out", str(out), timeout=3600)
    md = (out / "validation.md").read_text()
    res = json.loads((out / "validation.json").read_text())
    names = [ch["name"] for ch in load_criteria().checks]
    assert [x["name"] for x in res["results"]] == names
    assert res["criteria_blob"] == load_criteria().blob and res["criteria_blob"] in md
    failed = [x["name"] for x in res["results"] if not x["passed"] and not x["superseded"]]
    # a failing check is reported as failing: exit code 1 and its name on stderr
    assert r.returncode == (1 if failed else 0), r.stderr
    for name in failed:
        assert name in r.stderr
    assert "error:" not in md and not any(x["error"] for x in res["results"])  # none crashed
    n_crit = sum(len(ch["criterion"]) for ch in load_criteria().checks)
    rows = [ln for ln in md.split("\n## ")[0].splitlines() if ln.startswith("| ")]
    assert len(rows) == 1 + n_crit  # the header and one row per criterion
    for name in names:
        assert (out / "figures" / f"{name}.png").stat().st_size > 0
        assert len(pd.read_parquet(out / "data" / f"{name}.parquet")) > 0
    # without --overwrite an earlier report is not replaced
    again = cli("validate", "--quick", "--only", "cascade_sizes", "--out", str(out))
    assert again.returncode == 2 and again.stderr.startswith("error: --out:")
    assert (out / "validation.md").read_text() == md
    # --seed-base and --only rerun one check on other seeds
    other = tmp_path / "other"
    r2 = cli(
        "validate", "--quick", "--only", "cascade_sizes", "--seed-base", "77", "--out", str(other)
    )
    assert r2.returncode in (0, 1), r2.stderr
    md2 = (other / "validation.md").read_text()
    assert "3 seeds, 77–79" in md2 and "stylized_facts" not in md2


def test_committed_measurements_rejudge_to_the_committed_verdicts(tmp_path):
    """docs/validation.md is what the registered criteria say about the committed
    measurements: judging them again gives the same table, estimate for estimate."""
    from helpers import ROOT

    out = tmp_path / "rejudged"
    r = cli("validate", "--from-data", str(ROOT / "docs/validation/run"), "--out", str(out))
    assert r.returncode == 1, r.stderr  # failing checks are reported as failing

    def table(text: str) -> list[str]:
        return [ln for ln in text.split("\n## ")[0].splitlines() if ln.startswith("| ")]

    committed = (ROOT / "docs/validation.md").read_text().split("\n---\n", 1)[1]
    assert table((out / "validation.md").read_text()) == table(committed)


def test_committed_multivenue_measurements_rejudge_to_the_committed_verdicts(tmp_path):
    """The world of venues' section of docs/validation.md is what multivenue.toml says
    about the committed measurements, estimate for estimate."""
    from helpers import ROOT

    out = tmp_path / "rejudged"
    data = ROOT / "docs/validation/multivenue"
    r = cli("validate", "--venues", "--from-data", str(data), "--out", str(out))
    assert r.returncode == 1, r.stderr  # its failing checks are reported as failing

    def table(text: str) -> list[str]:
        return [ln for ln in text.split("\n## ")[0].splitlines() if ln.startswith("| ")]

    committed = (ROOT / "docs/validation.md").read_text().split("\n---\n")[2]
    assert table((out / "validation.md").read_text()) == table(committed)
    assert any(ln.startswith("| mv_price_gaps | mvg_calm_band") for ln in table(committed))


@pytest.mark.timeout(3600)
def test_event_score_cards_are_registered_and_run(tmp_path):
    from crossmargin.analysis.validation import EVENTS

    data = tomllib.loads(EVENTS.read_text())
    for ch in data["check"]:
        assert ch["seeds"]["count"] >= 20
        Scenario.preset(ch["preset"])
        for c in ch["criterion"]:
            assert c["statistic"] in STATISTICS and c["test"] in TESTS and c["source"]
    out = tmp_path / "events"
    r = cli("validate", "--events", "--quick", "--out", str(out), timeout=3600)
    assert r.returncode in (0, 1), r.stderr
    md = (out / "validation.md").read_text()
    assert "score cards" in md and load_criteria(EVENTS).blob in md
    n = sum(len(ch["criterion"]) for ch in data["check"])
    assert len([ln for ln in md.split("\n## ")[0].splitlines() if ln.startswith("| ")]) == 1 + n
    for ch in data["check"]:
        assert (out / "figures" / f"{ch['name']}.png").stat().st_size > 0
    assert "error:" not in md


def test_calibration_searches_and_writes_a_reusable_result(tmp_path):
    from crossmargin.experiments.calibration import SPACE, applicable, calibrate, loss

    pop = {
        "agents.leveraged.count": 60,
        "agents.noise.count": 30,
        "agents.market_makers.count": 4,
        "agents.fundamentalists.count": 5,
        "agents.momentum.count": 5,
    }
    res = calibrate(trials=2, seeds=2, out=tmp_path, population=pop, workers=2, progress=False)
    assert set(res["params"]) == set(SPACE)
    saved = tomllib.loads((tmp_path / "result.toml").read_text())
    assert saved["params"] == res["params"] and saved["loss"] == res["loss"]
    trials = pd.read_csv(tmp_path / "trials.csv")
    assert len(trials) == 2 and trials["loss"].min() == pytest.approx(res["loss"])
    bt = Scenario.preset("black_thursday_gap")
    bt.replace(**applicable(res["params"], bt))  # applies to the other crash (no collateral)
    assert loss({"x": math.nan}, [{"measure": "x", "value": 1.0, "scale": 1.0}]) == 25.0


def test_event_presets_carry_the_committed_calibration():
    """Both presets hold exactly the behaviour in experiments/calibration/result.toml
    (issue #15: calibrate once on October, hold fixed for Black Thursday)."""
    from crossmargin.experiments.calibration import applicable, load_result

    params = load_result()["params"]
    for name in ("oct2025_collateral_depeg", "black_thursday_gap"):
        sc = Scenario.preset(name)
        assert sc.replace(**applicable(params, sc)) == sc, name


def test_a_check_with_controls_judges_its_treated_runs():
    """A criterion of a check with control runs whose measure names no variant is judged
    on the treated runs only: its setting describes them (the first judging of
    cascade_sizes_strict pooled the control copies' cascades into the tail fit)."""
    df = pd.DataFrame(
        {
            "seed": [0, 0, 1, 1, 2, 2],
            "variant": ["shock", "control"] * 3,
            "x": [1.0, 100.0, 2.0, 100.0, 3.0, 100.0],
        }
    )
    crit = {
        "id": "c",
        "quantity": "x",
        "statistic": "mean",
        "measure": "x",
        "test": "below",
        "hi_tol": 10.0,
        "source": "s",
    }
    defaults = {"bootstrap": 200, "confidence": 0.95, "bootstrap_seed": 0}
    (treated,) = judge({"criterion": [crit], "control": True}, df, defaults)
    assert treated.estimate.value == pytest.approx(2.0) and treated.passed
    (named,) = judge(
        {"criterion": [crit | {"measure": "x|control"}], "control": True}, df, defaults
    )
    assert named.estimate.value == pytest.approx(100.0) and not named.passed
    (no_control,) = judge({"criterion": [crit]}, df, defaults)  # no control: every row
    assert no_control.estimate.value == pytest.approx(51.0)
