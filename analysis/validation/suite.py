"""``crossmargin validate``: the pre-registered checks, run on Dask, judged, reported.

The driver turns each ``[[check]]`` of ``criteria.toml`` into jobs (one per design
point and seed, each a fully resolved scenario), runs them on a local Dask cluster
(or an existing one), collects one table per check, evaluates every criterion with
its seed bootstrap, and writes ``validation.md``, ``validation.json``, the figures and
the measurement tables (``data/<check>.parquet``).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...model import Scenario
from . import figures
from .criteria import Criteria, load_criteria
from .measures import ACF_ABS_LAGS, ACF_R_LAGS, HORIZONS, run_job
from .stats import STATISTICS, Estimate, evaluate

__all__ = [
    "CheckResult",
    "CriterionResult",
    "DataMismatchError",
    "build_jobs",
    "criteria_tally",
    "fingerprint",
    "judge",
    "run_validation",
    "scenario_fingerprint",
    "stale_inputs",
]


@dataclass
class CriterionResult:
    """One criterion's estimate, interval and verdict."""

    id: str
    quantity: str
    test: str
    tolerance: str
    source: str
    estimate: Estimate
    passed: bool
    superseded_by: str | None = None
    supersedes: str | None = None
    reason: str = ""
    untestable: bool = False
    sample: str = ""
    """``in`` (a calibration target: the card measures goodness of fit), ``out`` (held
    out of the calibration: a test), or "" (no calibration involved)."""


@dataclass
class CheckResult:
    """One check: its setting, runs, criteria and figure."""

    name: str
    title: str
    setting: str
    seeds: str
    runs: int
    criteria: list[CriterionResult] = field(default_factory=list)
    figure: str | None = None
    error: str = ""
    jobs_sha256: str = ""
    judges: str = ""  # what a pinned card judges: preset inputs and calibration result

    @property
    def active(self) -> list[CriterionResult]:
        """The criteria that count: neither superseded nor declared untestable."""
        return [c for c in self.criteria if c.superseded_by is None and not c.untestable]

    @property
    def superseded(self) -> bool:
        """Every criterion of the check is superseded (by entries of a later check): its
        verdict is shown beside theirs, and not counted."""
        return bool(self.criteria) and all(c.superseded_by for c in self.criteria)

    @property
    def passed(self) -> bool:
        """Every criterion that counts passes (and nothing crashed)."""
        active = self.active
        return not self.error and bool(active) and all(c.passed for c in active)


# ------------------------------------------------------------------ jobs


def _seeds(spec: dict) -> list[int]:
    s = spec["seeds"]
    return [s["base"] + i for i in range(s["count"])]


def _base(spec: dict, preset: str | None = None, **extra: Any) -> Scenario:
    sc = Scenario.preset(preset or spec["preset"])
    changes = dict(spec.get("population", {})) | dict(spec.get("changes", {})) | extra
    if spec.get("overlay") == "calibration":
        from ...experiments.calibration import applicable, load_result

        changes = applicable(load_result()["params"], sc) | changes
    if spec.get("steps"):
        changes.setdefault("steps", spec["steps"])
    sc = sc.replace(**changes)
    if spec.get("world") == "multivenue":  # the same check on a world of venues
        sc = sc.as_multivenue()
    return sc


def _job(check: str, sc: Scenario, seed: int, **params: Any) -> dict:
    return {
        "check": check,
        "scenario": sc.replace(seed=seed).to_dict(),
        "seed": seed,
        "params": params,
    }


def build_jobs(spec: dict) -> list[dict]:
    """The jobs of one check (fully resolved scenarios), from its criteria entry.

    Examples:
        >>> from crossmargin.analysis.validation.criteria import load_criteria
        >>> spec = load_criteria(quick=True, only=["leverage_tails"]).checks[0]
        >>> jobs = build_jobs(spec)
        >>> len(jobs), jobs[0]["scenario"]["leverage_cap"], jobs[0]["scenario"]["garch_beta"]
        (12, 1.5, 0.0)
    """
    name = spec["name"]
    seeds = _seeds(spec)
    if name == "stylized_facts":
        sc = _base(spec)
        return [_job(name, sc, s, market=spec["market"]) for s in seeds]
    if name == "sqrt_impact":
        longest = max(math.ceil(f * 1440 / spec["participation"]) for f in spec["sizes"])
        sc = _base(spec, steps=spec["warmup"] + longest + 1)
        params = {k: spec[k] for k in ("market", "warmup", "participation", "sizes")}
        return [_job(name, sc, s, **params) for s in seeds]
    if name == "leverage_tails":
        return [
            _job(name, _base(spec, leverage_cap=cap), s, level=cap)
            for cap in spec["levels"]
            for s in seeds
        ]
    if name == "overlapping_portfolios":
        sc0 = Scenario.preset(spec["preset"])
        tmpl = next(m for m in sc0.markets if m.name == spec["template"]).model_dump()
        markets = [
            tmpl | {"name": f"M{i + 1}", "jump_intensity": 0.0} for i in range(spec["n_markets"])
        ]
        shock = {
            "kind": "index_jump",
            "step": spec["shock_step"],
            "size": spec["shock_size"],
            "duration": spec["shock_duration"],
            "markets": ["M1"],
            "beta_scaled": False,
        }
        world = {"markets": markets, "correlation": spec["market_correlation"], "shocks": [shock]}
        return [
            _job(
                name,
                _base(
                    spec,
                    leverage_cap=cap,
                    **world,
                    **{"agents.leveraged.markets_per_trader": mu},
                ),
                s,
                level=cap,
                diversification=mu,
                shock_step=spec["shock_step"],
                cascade_share=spec["cascade_share"],
            )
            for cap in spec["caps"]
            for mu in spec["diversification"]
            for s in seeds
        ]
    if name == "firesale_correlation":
        params = {k: spec[k] for k in ("weights", "post_window", "calm_window")}
        return [_job(name, _base(spec), s, **params) for s in seeds]
    if name == "debtrank_prediction":
        sc = _base(spec, steps=spec["fail_step"] + spec["horizon"])
        params = {k: spec[k] for k in ("fail_step", "horizon", "candidates")}
        return [_job(name, sc, s, **params) for s in seeds]
    if name == "cascade_sizes":
        sc = _base(spec)
        return [_job(name, sc, s) for s in seeds]
    if name == "cascade_sizes_strict":
        sc = _base(spec)
        return [_job(name, sc, s) for s in seeds]
    if name == "resilience":
        calm = _base(spec, preset="calm")
        stress = _base(spec)
        return [
            _job(name, calm, s, stress=stress.replace(seed=s).to_dict(), window=spec["window"])
            for s in seeds
        ]
    if name in ("robust_yet_fragile", "robust_yet_fragile_controlled"):
        keys = ("shock_step", "shock_duration", "single_market", "single_sizes", "wide_sizes")
        params = {k: spec[k] for k in keys}
        if spec.get("control"):
            params["control"] = True
        return [
            _job("robust_yet_fragile", _base(spec, margin_mode=mode), s, **params)
            for mode in ("cross", "isolated")
            for s in seeds
        ]
    if name in ("oct2025_scorecard", "oct2025_calibrated", "oct2025_card"):
        job = "oct2025_scorecard"
        return [_job(job, _base(spec), s, onset=spec["onset"]) for s in seeds]
    if name in ("black_thursday_scorecard", "black_thursday_calibrated", "black_thursday_card"):
        keys = ("leg1", "leg2", "outage", "outage_minutes")
        params = {k: spec[k] for k in keys}
        if spec.get("control"):
            params["control"] = True
        job = "black_thursday_scorecard"
        return [_job(job, _base(spec), s, **params) for s in seeds]
    if name == "mv_price_gaps":
        params = {k: spec[k] for k in ("shock_step", "market")}
        control = bool(spec.get("control"))
        return [_job(name, _base(spec), s, control=control, **params) for s in seeds]
    if name == "mv_liquidity_spiral":
        params = {k: spec[k] for k in ("shock_step", "window", "market")}
        return [
            _job(name, _base(spec), s, variant=variant, **params)
            for variant in ("delayed", "instant")
            for s in seeds
        ]
    if name == "mv_impact_travels":
        longest = max(math.ceil(f * 1440 / spec["participation"]) for f in spec["sizes"])
        sc = _base(spec, steps=spec["warmup"] + longest + 1, shocks=[])
        params = {k: spec[k] for k in ("market", "warmup", "participation", "sizes")}
        return [_job(name, sc, s, **params) for s in seeds]
    raise ValueError(f"check: no jobs defined for {name!r}")


# ------------------------------------------------------------------ running


def _execute(jobs: list[dict], *, workers: int | None, scheduler: str | None, progress: bool):
    """Run every job on Dask; return {job index: rows or the exception text}."""
    from dask.distributed import as_completed
    from tqdm import tqdm

    from ...experiments.sweep import connect, local_cluster

    cluster = None
    if scheduler:
        client = connect(scheduler)
    else:
        cluster = local_cluster(workers)
        from dask.distributed import Client

        client = Client(cluster)
    # long jobs first, so the two workers finish together
    order = sorted(range(len(jobs)), key=lambda i: -_cost(jobs[i]))
    results: dict[int, Any] = {}
    try:
        futures = {client.submit(run_job, jobs[i], pure=False, key=f"v-{i}"): i for i in order}
        bar = tqdm(
            total=len(jobs),
            disable=not progress or not sys.stderr.isatty(),
            desc="validate",
            unit="run",
        )
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                results[i] = fut.result()
            except Exception as exc:  # a crashing run makes its check fail, reported
                results[i] = f"{type(exc).__name__}: {exc}"
            bar.update()
        bar.close()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return results


def _cost(job: dict) -> float:
    sc = job["scenario"]
    agents = sum(a.get("count", 0) for a in sc["agents"].values() if isinstance(a, dict))
    branches = 1 + len(job["params"].get("sizes", [])) + len(job["params"].get("single_sizes", []))
    return sc["steps"] * agents * len(sc["markets"]) * branches


def _tolerance(c: dict) -> str:
    t = c["test"]
    if t == "within":
        return f"interval within [{c['lo_tol']:g}, {c['hi_tol']:g}]"
    if t == "above":
        extra = f" and p < {c['p_value']:g}" if "p_value" in c else ""
        return f"lower bound > {c['lo_tol']:g}{extra}"
    if t == "below":
        return f"upper bound < {c['hi_tol']:g}"
    return f"every lag's {c.get('correction', '')}-corrected interval contains 0"


def judge(spec: dict, df: pd.DataFrame, defaults: dict) -> list[CriterionResult]:
    """Evaluate every criterion of a check on its measurement table. In a check with
    control runs (``control = true``), a criterion whose measure names no variant is
    judged on the treated runs alone: its setting describes them, and a control copy of
    each seed is there to be compared with, not pooled (the first judging of
    ``cascade_sizes_strict`` pooled them: 632 cascades, 295 of them from the controls)."""
    spec = spec | {
        "_lags": {
            "acf_r_20_120": ACF_R_LAGS,
            "acf_abs_1_120": ACF_ABS_LAGS,
            "kurtosis_by_horizon": HORIZONS,
        }
    }
    boot = {
        "n": defaults["bootstrap"],
        "confidence": defaults["confidence"],
        "seed": defaults["bootstrap_seed"],
    }
    crits = spec["criterion"]
    by_old = {c["supersedes"]: c["id"] for c in crits if "supersedes" in c}
    out = []
    for c in crits:
        if c["test"] == "untestable":
            out.append(
                CriterionResult(
                    id=c["id"],
                    quantity=c["quantity"],
                    test="untestable",
                    tolerance="declared untestable",
                    source=c["source"],
                    estimate=Estimate(math.nan, math.nan, math.nan, c.get("reason", "")),
                    passed=False,
                    supersedes=c.get("supersedes"),
                    reason=c.get("reason", ""),
                    untestable=True,
                    sample=c.get("sample", ""),
                )
            )
            continue
        rows = df
        if spec.get("control") and "|" not in c["measure"] and "variant" in df:
            # A check with control runs describes its treated runs; the control copies
            # enter only where a criterion names them (``measure|control``).
            rows = df[df["variant"] != "control"]
        try:
            est = STATISTICS[c["statistic"]](rows, c, spec, boot)
        except Exception as exc:  # reported as an undefined estimate, i.e. a failure
            est = Estimate(math.nan, math.nan, math.nan, f"error: {type(exc).__name__}: {exc}")
        ok = evaluate(est, c)
        if "p_value" in c:  # Vuong's p on top of the interval test
            ok = ok and est.p < c["p_value"]  # nan (no test) fails
        out.append(
            CriterionResult(
                id=c["id"],
                quantity=c["quantity"],
                test=c["test"],
                tolerance=_tolerance(c),
                source=c["source"],
                estimate=est,
                passed=ok,
                superseded_by=by_old.get(c["id"]),
                supersedes=c.get("supersedes"),
                reason=c.get("reason", ""),
                sample=c.get("sample", ""),
            )
        )
    return out


def _link_supersedes(results: list[CheckResult]) -> None:
    """A criterion superseded by a later entry of another check (a stricter check
    registered on its own) is marked so, as within a check."""
    by_old = {c.supersedes: c.id for r in results for c in r.criteria if c.supersedes}
    for r in results:
        for c in r.criteria:
            if c.superseded_by is None and c.id in by_old:
                c.superseded_by = by_old[c.id]


def _untestable_only(spec: dict) -> bool:
    """A check whose every criterion is declared untestable runs nothing."""
    crits = spec.get("criterion", [])
    return bool(crits) and all(c["test"] == "untestable" for c in crits)


def fingerprint(jobs: list[dict]) -> str:
    """SHA-256 of a check's jobs (settings, seeds, parameters): the identity of the
    measurements a report judges. Scenarios enter with their default-valued fields
    left out, so a field added later with a default that keeps today's behaviour does
    not change the identity of earlier measurements.

    Examples:
        >>> fingerprint([{"a": 1}]) == fingerprint([{"a": 1}]) != fingerprint([{"a": 2}])
        True
    """

    def lean(d: dict) -> dict:
        return Scenario.from_dict(d).model_dump(mode="json", exclude_defaults=True)

    norm = []
    for j in jobs:
        if "scenario" in j:
            params = {
                k: lean(v) if isinstance(v, dict) and "markets" in v else v
                for k, v in j.get("params", {}).items()
            }
            j = j | {"scenario": lean(j["scenario"]), "params": params}
        norm.append(j)
    return hashlib.sha256(json.dumps(norm, sort_keys=True, default=str).encode()).hexdigest()


def stale_inputs(spec: dict) -> str:
    """For a card that pins its preset's inputs (``inputs_fingerprint``): "" when the
    preset as committed still has them, else why not (the card then judges nothing: a
    changed preset needs a new dated card).

    Examples:
        >>> from crossmargin.analysis.validation.criteria import load_criteria
        >>> stale_inputs(load_criteria(quick=True, only=["leverage_tails"]).checks[0])  # pins nothing
        ''
    """
    pinned = spec.get("inputs_fingerprint")
    if not pinned:
        return ""
    from ...experiments.calibration import SPACE

    now = scenario_fingerprint(Scenario.preset(spec["preset"]), exclude=tuple(SPACE))
    if now == pinned:
        return ""
    return (
        f"stale: the inputs of preset {spec['preset']!r} changed since this card was "
        f"registered (fingerprint {pinned[:12]}…, now {now[:12]}…); it judges nothing, a "
        "new dated card is needed"
    )


def _what_it_judges(spec: dict, *, stale: bool = False) -> str:
    """What a score card that pins its inputs judges, for its report: the preset's inputs
    fingerprint and, for a card with ``overlay = "calibration"``, the SHA-256 of the
    calibration result whose parameters the runs carried ("" for any other check)."""
    parts = []
    pinned = spec.get("inputs_fingerprint")
    if pinned:
        state = "STALE: the preset changed" if stale else "the preset as committed matches it"
        parts.append(f"preset `{spec['preset']}` inputs fingerprint `{pinned[:16]}…` ({state})")
    if pinned and spec.get("overlay") == "calibration":
        from ...experiments.calibration import HERE, load_result

        path = HERE / "result.toml"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        res = load_result(path)
        parts.append(
            f"behavioural parameters from `experiments/calibration/result.toml` (SHA-256 "
            f"`{digest[:16]}…`, {res['date']}, {res['trials']} trials × "
            f"{res['seeds']['count']} seeds)"
        )
    return "; ".join(parts)


def scenario_fingerprint(sc: Scenario, *, exclude: tuple[str, ...] = ()) -> str:
    """SHA-256 of a resolved scenario with its default-valued fields left out (so a field
    added later with a default that keeps today's behaviour does not change it) and its
    seed and the dotted keys ``exclude`` removed: what a score card pins of the preset it
    judges (``exclude``: the behavioural parameters a calibration sets, which the card
    takes from the calibration result it names).

    Examples:
        >>> a = Scenario.preset("baseline")
        >>> scenario_fingerprint(a) == scenario_fingerprint(a.replace(seed=3))
        True
        >>> scenario_fingerprint(a) == scenario_fingerprint(a.replace(steps=1000))
        False
    """
    data = sc.model_dump(mode="json", exclude_defaults=True)
    data.pop("seed", None)
    for key in exclude:
        node = data
        *path, last = key.split(".")
        for part in path:
            node = node.get(part, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(last, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def run_validation(
    out: Path,
    *,
    quick: bool = False,
    seed_base: int | None = None,
    only: list[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    criteria: Criteria | None = None,
    from_data: Path | None = None,
) -> list[CheckResult]:
    """Run the pre-registered checks; write ``out/validation.md`` and the rest.

    Args:
        out: output folder (created).
        quick: the ``[check.quick]`` sizes (a smoke test, not the registered verdicts).
        seed_base: replaces every check's first seed (a replication on fresh seeds).
        only: names of the checks to run (default all).
        workers: local Dask workers (default one per core).
        scheduler: address of an existing Dask scheduler instead.
        progress: print a progress bar and one line per check.
        criteria: already loaded criteria (default: the committed file).
        from_data: judge the measurement tables of an earlier run in this folder
            instead of running the models; refused for a check whose jobs (settings,
            seeds) differ from that run's.
    """
    from ...experiments.provenance import provenance

    out = Path(out)
    crit = criteria or load_criteria(quick=quick, seed_base=seed_base, only=only)
    prov = provenance()  # the code as it was when the models ran
    t0 = time.perf_counter()
    # A card whose preset's inputs changed since its registration runs nothing.
    stale = {spec["name"]: stale_inputs(spec) for spec in crit.checks}
    specs = [
        (spec, [] if stale[spec["name"]] or _untestable_only(spec) else build_jobs(spec))
        for spec in crit.checks
    ]
    origin = None
    if from_data is not None:
        measured, origin = _load_measurements(Path(from_data), specs)
        origin["folder"] = str(from_data)
        n_jobs = sum(len(js) for _, js in specs)
    else:
        jobs = [j for _, js in specs for j in js]
        raw = _execute(jobs, workers=workers, scheduler=scheduler, progress=progress)
        measured, i = [], 0
        for _, js in specs:
            mine = [raw[k] for k in range(i, i + len(js))]
            i += len(js)
            errors = [r for r in mine if isinstance(r, str)]
            rows = [row for r in mine if not isinstance(r, str) for row in r]
            measured.append((pd.DataFrame(rows), errors))
        n_jobs = len(jobs)
    (out / "figures").mkdir(parents=True, exist_ok=True)
    (out / "data").mkdir(parents=True, exist_ok=True)
    figures.theme()
    results = []
    for (spec, js), (df, errors) in zip(specs, measured, strict=True):
        s = spec["seeds"]
        res = CheckResult(
            name=spec["name"],
            title=spec["title"],
            setting=spec["setting"],
            seeds=f"{s['count']} seeds, {s['base']}–{s['base'] + s['count'] - 1}",
            runs=len(js),
            jobs_sha256=fingerprint(js),
        )
        if errors:
            res.error = f"{len(errors)} of {len(js)} runs failed; first: {errors[0]}"
        if stale[spec["name"]]:
            res.error = stale[spec["name"]]
        res.judges = _what_it_judges(spec, stale=bool(stale[spec["name"]]))
        if len(df):
            _save_table(df, out / "data" / f"{spec['name']}.parquet")
            res.criteria = judge(spec, df, crit.defaults)
            try:
                res.figure = figures.draw(spec, df, res, out / "figures")
            except Exception as exc:  # a figure that cannot be drawn is said so
                res.error += f" figure: {type(exc).__name__}: {exc}"
        results.append(res)
    _link_supersedes(results)
    for res in results:
        if progress:
            verdict = "SUPERSEDED" if res.superseded else "PASS" if res.passed else "FAIL"
            print(f"[{verdict}] {res.name}", flush=True)
    seconds = time.perf_counter() - t0 if origin is None else float(origin["seconds"])
    write_report(
        results, crit, out, quick=quick, seconds=seconds, n_jobs=n_jobs, prov=prov, origin=origin
    )
    return results


class DataMismatchError(ValueError):
    """``--from-data`` names measurements that are not those of these checks."""


def _load_measurements(
    src: Path, specs: list
) -> tuple[list[tuple[pd.DataFrame, list[str]]], dict[str, Any]]:
    """The measurement tables of an earlier run, each checked against its jobs, and
    that run's ``validation.json`` (where the measurements came from)."""
    try:
        saved = json.loads((src / "validation.json").read_text())
    except (OSError, ValueError) as exc:
        raise DataMismatchError(
            f"--from-data: {src} holds no readable validation.json ({exc})"
        ) from None
    by_name = {r["name"]: r for r in saved["results"]}
    out = []
    for spec, js in specs:
        r = by_name.get(spec["name"])
        if r is None or r.get("jobs_sha256") != fingerprint(js):
            raise DataMismatchError(
                f"--from-data: check {spec['name']!r} in {src} was not run with these "
                "settings and seeds (or not at all)"
            )
        errors = [r["error"]] if r.get("error") else []
        out.append((pd.read_parquet(src / "data" / f"{spec['name']}.parquet"), errors))
    return out, saved


def _save_table(df: pd.DataFrame, path: Path) -> None:
    d = df.copy()
    for c in d.columns:
        if d[c].map(lambda v: isinstance(v, list) and v and isinstance(v[0], dict)).any():
            d[c] = d[c].map(json.dumps)
    d.to_parquet(path, index=False)


# ------------------------------------------------------------------ report


def _num(x: float) -> str:
    if not isinstance(x, float | int) or (isinstance(x, float) and math.isnan(x)):
        return "undefined"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    a = abs(x)
    if a >= 1e4:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.1f}"
    if a >= 0.01 or a == 0:
        return f"{x:.3f}"
    return f"{x:.2e}"


def _interval(e: Estimate) -> str:
    return f"{_num(e.value)} [{_num(e.lo)}, {_num(e.hi)}]"


def _verdict(c: CriterionResult) -> str:
    v = "untestable (not counted)" if c.untestable else "pass" if c.passed else "**fail**"
    if c.superseded_by:
        v += f" (superseded by {c.superseded_by})"
    return v


def _sample(c: CriterionResult) -> str:
    return {"in": " (in sample: a fit)", "out": " (out of sample: a test)"}.get(c.sample, "")


def criteria_tally(results: list[CheckResult]) -> dict[str, Any]:
    """Distinct criteria and their verdicts: a criterion that judges the same measure
    on the same runs as another (the old cards and the calibrated ones, when the
    presets carry the calibration) counts once; superseded and untestable ones are not
    counted; in- and out-of-sample ones are counted apart.

    Examples:
        >>> est = Estimate(1.0, 0.5, 1.5)
        >>> a = CheckResult("a", "A", "", "", 1, jobs_sha256="x")
        >>> a.criteria = [CriterionResult("a1", "q", "within", "", "", est, True)]
        >>> b = CheckResult("b", "B", "", "", 1, jobs_sha256="x")
        >>> b.criteria = [CriterionResult("b1", "q", "within", "", "", est, True)]
        >>> criteria_tally([a, b])["distinct"]
        1
    """
    seen: dict[tuple, bool] = {}
    samples: dict[str, list[bool]] = {"in": [], "out": [], "": []}
    for r in results:
        for c in r.criteria:
            if c.superseded_by or c.untestable:
                continue
            key = (r.jobs_sha256, c.quantity, c.tolerance)
            if key in seen:
                continue
            seen[key] = c.passed and not r.error
            samples[c.sample].append(seen[key])
    n, k = len(seen), sum(seen.values())
    parts = [f"{k} of {n} distinct criteria pass"]
    for label, name in (("in", "in sample (fits)"), ("out", "out of sample (tests)")):
        if samples[label]:
            parts.append(f"{sum(samples[label])} of {len(samples[label])} {name}")
    return {"distinct": n, "passed": k, "text": "; ".join(parts) + "."}


def write_report(
    results: list[CheckResult],
    crit: Criteria,
    out: Path,
    *,
    quick: bool,
    seconds: float,
    n_jobs: int,
    prov: dict[str, Any],
    origin: dict[str, Any] | None = None,
) -> None:
    """``validation.md`` (summary table, then each check in full) and ``validation.json``."""
    from ... import __version__

    counted = [r for r in results if not r.superseded]
    n_pass = sum(r.passed for r in counted)
    conf = int(100 * crit.defaults["confidence"])
    state = " (MODIFIED since that commit: these are not the registered criteria)"
    tally = criteria_tally(results)
    titles = {
        "criteria.toml": "# Validation against published results",
        "events.toml": "# The event presets beside their history (score cards)",
        "multivenue.toml": "# Validation of the world of venues",
    }
    lines = [
        titles.get(crit.path.name, f"# Validation: {crit.path.name}")
        + (" — on a world of venues" if crit.world else ""),
        "",
        *(
            [
                "Every check below ran with its scenario turned into a world of venues "
                "(`Scenario.as_multivenue()`: three spot venues, two perpetual venues, the "
                "same markets, agents and shocks, an index jump moving the fundamental "
                "value), the criteria unchanged (`--world multivenue`).",
                "",
            ]
            if crit.world
            else []
        ),
        f"**{'Quick' if quick else 'Full'} suite: {n_pass} of {len(counted)} checks pass** "
        f"({n_jobs} model runs, {seconds / 60:.1f} min on {platform.machine()}, "
        f"{os.cpu_count()} cores). "
        + ("Quick sizes are a smoke test, not the registered verdicts. " if quick else "")
        + f"{tally['text']} "
        + (
            f"{len(results) - len(counted)} check(s) are superseded by stricter ones and shown "
            "beside them, not counted."
            if len(counted) < len(results)
            else ""
        ),
        "",
        f"* Criteria: `{crit.path.name}`, git blob `{crit.blob}`, last changed in commit "
        f"`{crit.commit or 'unknown (not a git checkout)'}`" + (state if crit.modified else ""),
        f"* Code: crossmargin {__version__}, commit `{prov['commit'] or 'unknown'}` "
        f"(Python {prov['python']}, numpy {prov['numpy']}, Mesa {prov['mesa']})",
        f"* Produced {datetime.now(UTC):%Y-%m-%d %H:%M} UTC by `{prov['command']}`",
        *(
            [
                f"* Measurements: judged from those saved in `{origin['folder']}` by "
                f"`{origin['provenance']['command']}` (code commit "
                f"`{origin['provenance']['commit']}`), not rerun"
            ]
            if origin
            else []
        ),
        f"* Every interval is a {conf}% seed-bootstrap interval "
        f"({crit.defaults['bootstrap']} resamples) unless its note says otherwise; a check "
        "passes only if every interval meets its tolerance.",
        "",
        f"| check | criterion | estimate [{conf}% interval] | tolerance | verdict |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        for c in r.criteria:
            verdict = _verdict(c)
            lines.append(
                f"| {r.name} | {c.id}{_sample(c)} | {_interval(c.estimate)} | {c.tolerance} "
                f"| {verdict} |"
            )
        if r.error and not r.criteria:
            lines.append(f"| {r.name} | — | error | — | **fail** |")
    for r in results:
        head = "superseded" if r.superseded else "pass" if r.passed else "FAIL"
        lines += [
            "",
            f"## {r.title}: {head}",
            "",
            f"*Check* `{r.name}`; {r.runs} runs; {r.seeds}."
            + (f" *Judges* {r.judges}." if r.judges else ""),
            "",
            f"*Setting.* {' '.join(r.setting.split())}",
        ]
        if r.error:
            lines += ["", f"*Error:* {r.error}"]
        for c in r.criteria:
            e = c.estimate
            lines += [
                "",
                f"### {c.id}{_sample(c)}: "
                + ("untestable" if c.untestable else "pass" if c.passed else "FAIL")
                + (f" (superseded by {c.superseded_by})" if c.superseded_by else ""),
                "",
                f"* quantity: {c.quantity}",
                f"* estimate: **{_interval(e)}**",
                f"* tolerance: {c.tolerance}",
                f"* source: {c.source}",
            ]
            if c.supersedes:
                lines.append(f"* supersedes {c.supersedes}: {c.reason}")
            if e.note:
                lines.append(f"* {e.note}")
        if r.figure:
            lines += ["", f"![{r.title}]({r.figure})"]
    (out / "validation.md").write_text("\n".join(lines) + "\n")
    payload = {
        "quick": quick,
        "passed": n_pass,
        "checks": len(counted),
        "criteria_blob": crit.blob,
        "criteria_commit": crit.commit,
        "criteria_modified": crit.modified,
        "seconds": seconds,
        "provenance": prov if origin is None else origin["provenance"],
        "judged_by": prov,
        "results": [
            {
                "name": r.name,
                "passed": r.passed,
                "superseded": r.superseded,
                "runs": r.runs,
                "seeds": r.seeds,
                "error": r.error,
                "jobs_sha256": r.jobs_sha256,
                "judges": r.judges,
                "figure": r.figure,
                "criteria": [
                    {
                        "id": c.id,
                        "passed": c.passed,
                        "value": _json(c.estimate.value),
                        "lo": _json(c.estimate.lo),
                        "hi": _json(c.estimate.hi),
                        "tolerance": c.tolerance,
                        "note": c.estimate.note,
                        "superseded_by": c.superseded_by,
                        "untestable": c.untestable,
                        "sample": c.sample,
                    }
                    for c in r.criteria
                ],
            }
            for r in results
        ],
    }
    (out / "validation.json").write_text(json.dumps(payload, indent=1, default=str) + "\n")


def _json(x: float) -> float | str | None:
    if isinstance(x, float) and math.isnan(x):
        return None
    if isinstance(x, float) and math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(x) if isinstance(x, np.floating | float | int) else x
