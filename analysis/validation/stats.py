"""The statistics the pre-registered criteria name, each with a seed bootstrap.

Every statistic takes the check's measurement table (one row per run: ``seed``, the
design columns and the measures) and returns an :class:`Estimate`. Intervals come from
resampling *seeds* with replacement (all of a seed's runs together, so paired designs
stay paired and grid cells keep their seeds), recomputing the statistic, and taking
percentiles (Efron & Tibshirani 1993, ch. 13). A resample on which the statistic is
undefined makes the interval undefined, and an undefined interval fails every test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

__all__ = [
    "STATISTICS",
    "Estimate",
    "bootstrap",
    "evaluate",
    "km_median",
    "power_law_draws",
    "seed_mean_bootstrap",
]


@dataclass
class Estimate:
    """A statistic's value, its interval and anything the report should show."""

    value: float
    lo: float
    hi: float
    note: str = ""
    per_lag: pd.DataFrame | None = field(default=None, repr=False)
    p: float = math.nan  # a test's p-value, where the statistic has one


def bootstrap(
    df: pd.DataFrame,
    stat: Callable[[pd.DataFrame], float],
    *,
    n: int,
    confidence: float,
    seed: int,
    column: str | None = None,
    values: np.ndarray | None = None,
) -> tuple[float, float, float, float]:
    """(value, lo, hi, share of undefined resamples) of ``stat`` by resampling seeds.

    With ``column``, ``stat`` is a function of that column's values (as floats, the
    resampled runs' in the order drawn) and no frame is built per resample; with
    ``values`` (one entry per row of ``df``, along the first axis), a function of the
    resampled runs' entries in the order drawn: the rows of a measure's matrix, or the
    row positions themselves for a statistic that reads several columns. Either gives
    the value the frame would, without copying the table 2,000 times.

    Examples:
        >>> df = pd.DataFrame({"seed": range(20), "x": np.arange(20.0)})
        >>> v, lo, hi, bad = bootstrap(df, lambda d: d["x"].mean(), n=500, confidence=0.95, seed=1)
        >>> v, lo < v < hi, bad
        (9.5, True, 0.0)
        >>> bootstrap(df, np.mean, n=500, confidence=0.95, seed=1, column="x") == (v, lo, hi, bad)
        True
        >>> x = df["x"].to_numpy()
        >>> rows = np.arange(len(df))
        >>> boot = {"n": 500, "confidence": 0.95, "seed": 1}
        >>> bootstrap(df, lambda i: x[i].mean(), values=rows, **boot) == (v, lo, hi, bad)
        True
    """
    x = values if column is None else df[column].to_numpy(float)
    value = float(stat(df if x is None else x))
    seeds = np.unique(df["seed"].to_numpy())
    groups = {s: np.flatnonzero(df["seed"].to_numpy() == s) for s in seeds}
    rng = np.random.default_rng(seed)
    draws = np.empty(n)
    for b in range(n):
        pick = rng.choice(seeds, size=len(seeds), replace=True)
        idx = np.concatenate([groups[s] for s in pick])
        if x is not None:
            draws[b] = stat(x[idx])
            continue
        sample = df.iloc[idx].copy()
        # a seed drawn twice is two seeds (paired designs pivot on seed)
        sample["seed"] = np.repeat(np.arange(len(pick)), [len(groups[s]) for s in pick])
        draws[b] = stat(sample)
    return _percentile_interval(value, draws, confidence)


def _percentile_interval(
    value: float, draws: np.ndarray, confidence: float
) -> tuple[float, float, float, float]:
    """(value, lo, hi, share of undefined draws): the percentile interval of the
    resampled statistics, undefined if any draw or the value is."""
    bad = float(np.mean(~np.isfinite(draws)))
    if bad > 0 or not math.isfinite(value):
        return value, math.nan, math.nan, bad
    a = (1 - confidence) / 2
    lo, hi = np.quantile(draws, [a, 1 - a])
    return value, float(lo), float(hi), 0.0


def seed_mean_bootstrap(
    per_seed: pd.Series,
    seeds: np.ndarray,
    *,
    n: int,
    confidence: float,
    seed: int,
) -> tuple[float, float, float, float]:
    """:func:`bootstrap` of the mean over seeds of a per-seed value, without rebuilding
    a frame per resample: the same draws of seeds (``seeds`` as :func:`bootstrap` finds
    them in the table), the same mean (a seed without a value is skipped, as pandas'
    mean skips NaN), so the same value and interval, in one array operation.

    Examples:
        >>> df = pd.DataFrame({"seed": range(20), "x": np.arange(20.0)})
        >>> boot = {"n": 500, "confidence": 0.95, "seed": 1}
        >>> slow = bootstrap(df, lambda d: d.set_index("seed")["x"].mean(), **boot)
        >>> fast = seed_mean_bootstrap(df.set_index("seed")["x"], df["seed"].unique(), **boot)
        >>> fast == slow
        True
    """
    value = float(per_seed.mean())
    rng = np.random.default_rng(seed)
    picks = np.stack([rng.choice(seeds, size=len(seeds), replace=True) for _ in range(n)])
    x = per_seed.reindex(seeds).to_numpy(float)[np.searchsorted(seeds, picks)]
    with np.errstate(all="ignore"):
        draws = np.nansum(x, axis=1) / (~np.isnan(x)).sum(axis=1)
    return _percentile_interval(value, draws, confidence)


def evaluate(est: Estimate, crit: dict) -> bool:
    """Whether the interval meets the criterion's test (``within``, ``above``,
    ``below``, ``all_contain_zero``); an undefined interval fails.

    Examples:
        >>> evaluate(Estimate(3.0, 2.5, 3.5), {"test": "within", "lo_tol": 2, "hi_tol": 5})
        True
        >>> evaluate(Estimate(0.1, -0.1, 0.3), {"test": "above", "lo_tol": 0})
        False
    """
    test = crit["test"]
    if test == "all_contain_zero":
        t = est.per_lag
        return bool(t is not None and len(t) and ((t["lo"] <= 0) & (t["hi"] >= 0)).all())
    if not (math.isfinite(est.lo) and math.isfinite(est.hi)):
        return False
    if test == "within":
        return bool(crit["lo_tol"] <= est.lo and est.hi <= crit["hi_tol"])
    if test == "above":
        return bool(est.lo > crit["lo_tol"])
    if test == "below":
        return bool(est.hi < crit["hi_tol"])
    raise ValueError(f"test: unknown test {test!r}")


def _col(df: pd.DataFrame, measure: str) -> np.ndarray:
    return np.vstack(df[measure].to_numpy()) if len(df) else np.empty((0, 0))


# ------------------------------------------------------------------ statistics


def mean(df: pd.DataFrame, crit: dict, spec: dict, boot: dict) -> Estimate:
    """Mean over runs of a scalar measure; a ``measure|variant`` selector reads the rows
    of that variant only.

    Examples:
        >>> df = pd.DataFrame({"seed": [0, 0, 1, 1], "variant": ["shock", "control"] * 2,
        ...                    "b": [0.5, 0.2, 0.3, 0.1]})
        >>> boot = {"n": 50, "confidence": 0.9, "seed": 0}
        >>> round(mean(df, {"measure": "b|shock"}, {}, boot).value, 6)
        0.4
    """
    m = crit["measure"]
    if "|" in m:
        m, variant = m.split("|")
        df = df[df["variant"] == variant]
    v, lo, hi, bad = bootstrap(df, np.mean, column=m, **boot)
    return Estimate(v, lo, hi, _bad(bad))


def median(df: pd.DataFrame, crit: dict, spec: dict, boot: dict) -> Estimate:
    """Median over runs of a scalar measure; the note gives the 5–95% range over runs."""
    m = crit["measure"]
    x = df[m].to_numpy(float)
    v, lo, hi, bad = bootstrap(df, np.median, column=m, **boot)
    q5, q95 = np.nanquantile(x, [0.05, 0.95]) if np.isfinite(x).any() else (math.nan,) * 2
    return Estimate(v, lo, hi, f"5–95% range over {len(x)} runs: {q5:.4g} to {q95:.4g}" + _bad(bad))


def lagwise_mean(df: pd.DataFrame, crit: dict, spec: dict, boot: dict) -> Estimate:
    """Mean over seeds at each lag, with Bonferroni-corrected intervals (level
    1 − α/L for L lags); the value is the largest |mean|."""
    x = _col(df, crit["measure"])
    lags = np.asarray(spec["_lags"][crit["measure"]])
    L = len(lags)
    conf = 1 - (1 - boot["confidence"]) / L
    rng = np.random.default_rng(boot["seed"])
    n = len(x)
    draws = np.stack([x[rng.integers(0, n, n)].mean(axis=0) for _ in range(boot["n"])])
    a = (1 - conf) / 2
    lo, hi = np.quantile(draws, [a, 1 - a], axis=0)
    t = pd.DataFrame({"lag": lags, "mean": x.mean(axis=0), "lo": lo, "hi": hi})
    worst = int(np.argmax(np.abs(t["mean"])))
    excl = int(((t["lo"] > 0) | (t["hi"] < 0)).sum())
    return Estimate(
        float(t["mean"].iloc[worst]),
        float(t["lo"].iloc[worst]),
        float(t["hi"].iloc[worst]),
        f"largest |mean| at lag {lags[worst]}; {excl} of {L} lags' intervals (level "
        f"{100 * conf:.3f}%) exclude 0",
        per_lag=t,
    )


def _decay(acf: np.ndarray, lags: np.ndarray) -> float:
    try:
        (a, beta), _ = optimize.curve_fit(
            lambda t, a, b: a * t ** (-b), lags, acf, p0=(max(acf[0], 1e-3), 0.3),
            bounds=([0, 0], [1, 5]), maxfev=2000,
        )  # fmt: skip
    except (RuntimeError, ValueError):
        return math.nan
    return float(beta) if a > 1e-6 else math.nan


def powerlaw_decay(df: pd.DataFrame, crit: dict, spec: dict, boot: dict) -> Estimate:
    """Exponent β of A τ^−β fitted (least squares) to the mean ACF over seeds; undefined
    when the fitted amplitude is 0 (no clustering to decay)."""
    m = crit["measure"]
    lags = np.asarray(spec["_lags"][m], dtype=float)
    x = _col(df, m)
    v, lo, hi, bad = bootstrap(df, lambda a: _decay(a.mean(axis=0), lags), values=x, **boot)
    acf = x.mean(axis=0)
    return Estimate(
        v, lo, hi, f"mean ACF(|r|) at lag 1: {acf[0]:+.3f}, 10: {acf[9]:+.3f}, "
        f"60: {acf[59]:+.3f}" + _bad(bad)
    )  # fmt: skip


def spearman_levels(df: pd.DataFrame, crit: dict, spec: dict, boot: dict) -> Estimate:
    """Spearman correlation between the levels and the mean over seeds at each level."""
    m = crit["measure"]
    levels = np.asarray(spec["_lags"][m], dtype=float)

    def stat(a: np.ndarray) -> float:
        return float(stats.spearmanr(levels, a.mean(axis=0)).statistic)

    x = _col(df, m)
    v, lo, hi, bad = bootstrap(df, stat, values=x, **boot)
    means = x.mean(axis=0)
    txt = ", ".join(f"{lv:g}: {x:.2f}" for lv, x in zip(levels, means, strict=True))
    return Estimate(v, lo, hi, f"mean by level: {txt}" + _bad(bad))


def loglog_slope(df: pd.DataFrame, crit: dict, spec: dict, boot: dict) -> Estimate:
    """Slope of log(mean over seeds) on log(level); undefined when a mean is ≤ 0."""
    m = crit["measure"]
    level, y = df["level"].to_numpy(), df[m].to_numpy()

    def stat(i: np.ndarray) -> float:
        g = pd.Series(y[i]).groupby(level[i]).mean()
        if (g <= 0).any() or len(g) < 2:
            return math.nan
        return float(np.polyfit(np.log(g.index.to_numpy(float)), np.log(g.to_numpy()), 1)[0])

    v, lo, hi, bad = bootstrap(df, stat, values=np.arange(len(df)), **boot)
    g = df.groupby("level")[m].mean()
    txt = ", ".join(f"{lv:g}: {x:.2e}" for lv, x in g.items())
    return Estimate(v, lo, hi, f"mean impact by Q/V: {txt}" + _bad(bad))


def spearman_runs(df: pd.DataFrame, crit: dict, spec: dict, boot: dict) -> Estimate:
    """Spearman correlation between the level and the measure over all runs."""
    m = crit["measure"]
    level, y = df["level"].to_numpy(), df[m].to_numpy()

    def stat(i: np.ndarray) -> float:
        return float(stats.spearmanr(level[i], y[i]).statistic)

    v, lo, hi, bad = bootstrap(df, stat, values=np.arange(len(df)), **boot)
    g = df.groupby("level")[m].mean()
    txt = ", ".join(f"{lv:g}: {x:.3f}" for lv, x in g.items())
    return Estimate(v, lo, hi, f"mean by cap: {txt}" + _bad(bad))


def proportion_at_lowest(df: pd.DataFrame, crit: dict, spec: dict, boot: dict) -> Estimate:
    """Share of runs with the event at the lowest level, Clopper–Pearson interval."""
    d = df[df["level"] == df["level"].min()]
    k, n = int(d[crit["measure"]].sum()), len(d)
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=boot["confidence"], method="exact")
    return Estimate(k / n, float(ci.low), float(ci.high), f"{k} of {n} runs")


def _cells(df: pd.DataFrame, m: str) -> Callable[[np.ndarray], pd.Series]:
    """The mean of ``m`` by diversification at the highest level, as a function of the
    rows (positions) a resample draws."""
    level, cell, y = (df[c].to_numpy() for c in ("level", "diversification", m))

    def by_cell(i: np.ndarray) -> pd.Series:
        top = level[i] == level[i].max()
        return pd.Series(y[i][top]).groupby(cell[i][top]).mean()

    return by_cell


def max_proportion_at_highest(df: pd.DataFrame, crit: dict, spec: dict, boot: dict) -> Estimate:
    """The largest share of runs with the event over the second factor at the
    highest level."""
    by_cell = _cells(df, crit["measure"])
    rows = np.arange(len(df))
    v, lo, hi, bad = bootstrap(df, lambda i: float(by_cell(i).max()), values=rows, **boot)
    g = by_cell(rows)
    return Estimate(v, lo, hi, "by diversification: " + _fmt(g) + _bad(bad))


def window(df: pd.DataFrame, crit: dict, spec: dict, boot: dict) -> Estimate:
    """max P over the intermediate levels of the second factor − max(P at its ends)."""
    by_cell = _cells(df, crit["measure"])
    rows = np.arange(len(df))

    def stat(i: np.ndarray) -> float:
        g = by_cell(i)
        return float(g.iloc[1:-1].max() - max(g.iloc[0], g.iloc[-1]))

    v, lo, hi, bad = bootstrap(df, stat, values=rows, **boot)
    return Estimate(v, lo, hi, "by diversification: " + _fmt(by_cell(rows)) + _bad(bad))


def km_median(durations: np.ndarray, observed: np.ndarray) -> float:
    """Kaplan–Meier median of right-censored durations (statsmodels'
    ``SurvfuncRight.quantile``); inf when the survival curve never falls to one half.

    Examples:
        >>> km_median(np.array([1.0, 2, 3, 4, 5]), np.array([1, 1, 1, 1, 1]))
        3.0
        >>> km_median(np.array([1.0, 9, 9, 9]), np.array([1, 0, 0, 0]))
        inf
    """
    from statsmodels.duration.survfunc import SurvfuncRight

    if not len(durations):
        return math.nan
    sf = SurvfuncRight(np.asarray(durations, float), np.asarray(observed, int))
    q = float(sf.quantile(0.5))
    return q if math.isfinite(q) else math.inf


def km_median_stat(df: pd.DataFrame, crit: dict, spec: dict, boot: dict) -> Estimate:
    """Kaplan–Meier median of the pooled censored durations; censored ones stay in."""
    m = crit["measure"]

    durs = [np.asarray(x, float) for x in df[m]]
    seen = [np.asarray(x, int) for x in df[m + "_observed"]]

    def stat(i: np.ndarray) -> float:
        dur = np.concatenate([durs[k] for k in i])
        obs = np.concatenate([seen[k] for k in i])
        return km_median(dur, obs)

    v, lo, hi, bad = bootstrap(df, stat, values=np.arange(len(df)), **boot)
    dur, obs = np.concatenate(durs), np.concatenate(seen)
    note = f"{len(dur)} events, {int((obs == 0).sum())} censored"
    if not math.isfinite(hi):
        note += "; the upper bound is infinite (the survival curve stays above 1/2)"
        hi = math.inf
    return Estimate(v, lo, hi, note + _bad(bad))


def powerlaw_vs_exponential(df: pd.DataFrame, crit: dict, spec: dict, boot: dict) -> Estimate:
    """Clauset–Shalizi–Newman on the pooled sizes: the power law above xmin against the
    exponential; the interval is R ± z σ_R from Vuong's normalized ratio."""
    import warnings

    import powerlaw

    sizes = np.concatenate([np.asarray(x, float) for x in df[crit["measure"]]])
    sizes = sizes[sizes > 0]
    if len(np.unique(sizes)) < 3:
        return Estimate(math.nan, math.nan, math.nan, f"{len(sizes)} cascades: too few to fit")
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        fit = powerlaw.Fit(sizes, discrete=True, verbose=False)
        r, p = fit.distribution_compare("power_law", "exponential", normalized_ratio=False)
        rn, _ = fit.distribution_compare("power_law", "exponential", normalized_ratio=True)
    z = stats.norm.ppf(1 - (1 - boot["confidence"]) / 2)
    sigma = abs(r / rn) if rn not in (0, math.nan) and math.isfinite(rn) and rn != 0 else math.nan
    lo, hi = r - z * sigma, r + z * sigma
    n_tail = int((sizes >= fit.xmin).sum())
    note = (
        f"{len(sizes)} cascades, largest {int(sizes.max())} accounts; xmin {fit.xmin:g}, "
        f"alpha {fit.power_law.alpha:.2f} ± {fit.power_law.sigma:.2f} on {n_tail} cascades "
        f"in the tail; Vuong p = {p:.3g}"
    )
    return Estimate(float(r), float(lo), float(hi), note, p=float(p))


def _per_seed(df: pd.DataFrame, selector: str) -> tuple[pd.DataFrame, Callable]:
    """The rows a ``measure|kind|size`` (cross − isolated per seed) or ``measure|variant``
    (the value per seed) selector reads, and the per-seed function of them."""
    parts = selector.split("|")
    if len(parts) == 3:
        measure, kind, size = parts
        rows = df[(df["kind"] == kind) & np.isclose(df["size"], float(size))]

        def per_seed(d: pd.DataFrame) -> pd.Series:
            p = d.pivot_table(index="seed", columns="margin_mode", values=measure)
            return p["cross"] - p["isolated"]

        return rows, per_seed
    measure, variant = parts
    rows = df[df["variant"] == variant]
    return rows, lambda d: d.set_index("seed")[measure].astype(float)


def paired_mean(df: pd.DataFrame, crit: dict, spec: dict, boot: dict) -> Estimate:
    """Mean over seeds of (cross − isolated) for a ``measure|kind|size`` selection, or of
    a ``measure|variant``; with ``control`` (a selector of the same form), of the
    difference to the same seed's control: a difference in differences, paired by seed.

    Examples:
        >>> df = pd.DataFrame({"seed": [0, 0, 1, 1], "variant": ["shock", "control"] * 2,
        ...                    "b": [0.5, 0.2, 0.4, 0.3]})
        >>> boot = {"n": 50, "confidence": 0.9, "seed": 0}
        >>> crit = {"measure": "b|shock", "control": "b|control"}
        >>> round(paired_mean(df, crit, {}, boot).value, 6)
        0.2
    """
    rows, per_seed = _per_seed(df, crit["measure"])
    if "control" in crit:
        crows, control = _per_seed(df, crit["control"])
        d0 = pd.concat([rows, crows], ignore_index=True)
        a = per_seed(rows)
        x = a - control(crows).reindex(a.index)
    else:
        d0 = rows
        x = per_seed(rows)
    v, lo, hi, bad = seed_mean_bootstrap(x, np.unique(d0["seed"].to_numpy()), **boot)
    if "margin_mode" in rows:
        measure = crit["measure"].split("|")[0]
        txt = "; ".join(
            f"{mode}: mean {s.mean():,.4g}, median {s.median():,.4g}, "
            f"range {s.min():,.4g}–{s.max():,.4g}"
            for mode, s in rows.groupby("margin_mode")[measure]
        )
    else:
        txt = f"mean {per_seed(rows).mean():,.4g} per seed"
    if "control" in crit:
        txt += f"; the control alone: mean {control(crows).mean():,.4g} per seed"
    return Estimate(v, lo, hi, txt + _bad(bad))


def powerlaw_gof(df: pd.DataFrame, crit: dict, spec: dict, boot: dict) -> Estimate:
    """Clauset, Shalizi & Newman's goodness of fit of the discrete power law above xmin
    (their section 4.1): the KS distance D of the pooled sizes to their fit, against the
    distances of ``gof_bootstrap`` semi-parametric synthetic samples (power law above
    xmin with the data's share of the tail, the data's own values below it), each refit
    from scratch; p is the share of synthetic D at least the data's. The interval is the
    Clopper–Pearson 95% interval of that share."""
    import warnings

    import powerlaw

    sizes = np.concatenate([np.asarray(x, float) for x in df[crit["measure"]]])
    sizes = sizes[sizes > 0]
    if len(np.unique(sizes)) < 3:
        return Estimate(math.nan, math.nan, math.nan, f"{len(sizes)} cascades: too few to fit")
    n_boot = int(spec.get("gof_bootstrap", 500))
    rng = np.random.default_rng(int(spec.get("gof_seed", 0)))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            fit = powerlaw.Fit(sizes, discrete=True, verbose=False)
            d_data = float(fit.power_law.D)
        except ValueError as exc:  # e.g. no size above any candidate xmin
            return Estimate(math.nan, math.nan, math.nan, f"{len(sizes)} cascades: {exc}")
        xmin, alpha = float(fit.xmin), float(fit.power_law.alpha)
        below = sizes[sizes < xmin]
        p_tail = float((sizes >= xmin).mean())
        n = len(sizes)
        exceed = done = 0
        state = np.random.get_state()
        np.random.seed(int(rng.integers(2**31)))  # powerlaw draws from numpy's global state
        try:
            for _ in range(n_boot):
                k = int(rng.binomial(n, p_tail))
                tail = power_law_draws(fit.power_law, k) if k else np.empty(0)
                body = rng.choice(below, size=n - k) if len(below) and n - k else np.empty(0)
                synth = np.concatenate([np.asarray(tail, float), body])
                synth = synth[synth > 0]
                if len(np.unique(synth)) < 3:
                    continue
                try:
                    f = powerlaw.Fit(synth, discrete=True, verbose=False)
                    d = float(f.power_law.D)
                except ValueError:  # a synthetic sample that cannot be fitted is left out
                    continue
                exceed += d >= d_data
                done += 1
        finally:
            np.random.set_state(state)
    if not done:
        return Estimate(math.nan, math.nan, math.nan, f"{n} cascades: no synthetic sample fitted")
    p = exceed / done
    lo = float(stats.beta.ppf(0.025, exceed, done - exceed + 1)) if exceed else 0.0
    hi = float(stats.beta.ppf(0.975, exceed + 1, done - exceed)) if exceed < done else 1.0
    note = (
        f"{n} cascades; xmin {xmin:g}, alpha {alpha:.2f}, D = {d_data:.3f} on "
        f"{int((sizes >= xmin).sum())} in the tail; {exceed} of {done} synthetic samples "
        f"(of {n_boot} drawn) as far or farther from their own fit; interval: "
        "Clopper–Pearson 95%"
    )
    return Estimate(p, lo, hi, note, p=p)


def power_law_draws(pl, size: int) -> np.ndarray:
    """``pl.generate_random(size)`` of a fitted discrete :class:`powerlaw.Power_Law`,
    the same integers from the same state of numpy's global generator, with the exact
    sampler's searches run on every draw at once.

    powerlaw (Alstott, Bullmore & Plenz 2014) draws an exact discrete power law by
    inverting its CCDF draw by draw: double an upper bound from ``xmin`` until the
    CCDF falls below ``1 - r``, bisect (midpoints, stopping when a midpoint moves by
    less than 1/2) and truncate. The CCDF is an elementwise ufunc expression (Hurwitz
    zeta), so evaluating it on an array gives each draw the values the scalar search
    gives it, and the same stopping rule gives the same integer; this is what makes the
    Clauset–Shalizi–Newman goodness-of-fit bootstrap affordable. Settings this does not
    cover (``estimate_discrete``, an ``xmax``, a continuous law) go to powerlaw itself.

    Examples:
        >>> import powerlaw
        >>> pl = powerlaw.Power_Law(xmin=2, parameters=[2.3], discrete=True)
        >>> np.random.seed(7); slow = pl.generate_random(300)
        >>> np.random.seed(7); fast = power_law_draws(pl, 300)
        >>> bool(np.array_equal(slow, fast))
        True
    """
    if not pl.discrete or pl.xmax or pl.estimate_discrete or size < 1:
        return pl.generate_random(size)
    target = 1 - np.random.uniform(0, 1, size=size)
    ccdf = pl.ccdf
    # doubling: x1 is the last bound whose CCDF is still >= 1 - r
    x1 = np.zeros(size)
    x2 = np.full(size, float(int(pl.xmin)))
    up = np.arange(size)
    while len(up):
        if not np.isfinite(x2[up]).all():  # powerlaw would search forever here
            raise ValueError("the CCDF does not fall below a draw: parameters out of range")
        go = ccdf(data=x2[up]) >= target[up]
        up = up[go]
        x1[up] = x2[up]
        with np.errstate(over="ignore"):  # an overflow to inf is caught above
            x2[up] = 2 * x1[up]
    f1, f2 = ccdf(data=x1), ccdf(data=x2)
    if not ((f2 <= f1) & (f1 > target) & (f2 < target)).all():
        raise TypeError("a draw's search bounds do not bracket it (powerlaw fails here too)")
    # bisection as powerlaw.utils.bisect_map does it, for a decreasing function
    lo, hi = x1, x2
    m = np.zeros(size)
    out = np.empty(size)
    act = np.arange(size)
    while len(act):
        old = m[act]
        mid = (lo[act] + hi[act]) / 2
        m[act] = mid
        stop = np.abs(old - mid) < 0.5
        out[act[stop]] = mid[stop]
        act, mid = act[~stop], mid[~stop]
        value = ccdf(data=mid) if len(act) else mid
        above, below = value > target[act], value < target[act]
        lo[act[above]] = mid[above]
        hi[act[below]] = mid[below]
        hit = ~(above | below)
        out[act[hit]] = mid[hit]
        act = act[~hit]
    return out.astype(np.int64)


def _fmt(g: pd.Series) -> str:
    return ", ".join(f"{k}: {v:.2f}" for k, v in g.items())


def _bad(share: float) -> str:
    return f"; undefined on {100 * share:.1f}% of resamples" if share > 0 else ""


STATISTICS: dict[str, Callable[[pd.DataFrame, dict, dict, dict], Estimate]] = {
    "mean": mean,
    "median": median,
    "lagwise_mean": lagwise_mean,
    "powerlaw_decay": powerlaw_decay,
    "spearman_levels": spearman_levels,
    "loglog_slope": loglog_slope,
    "spearman_runs": spearman_runs,
    "proportion_at_lowest": proportion_at_lowest,
    "max_proportion_at_highest": max_proportion_at_highest,
    "window": window,
    "km_median": km_median_stat,
    "powerlaw_vs_exponential": powerlaw_vs_exponential,
    "paired_mean": paired_mean,
    "powerlaw_gof": powerlaw_gof,
}
"""The statistics a criterion may name (``statistic = ...`` in criteria.toml)."""
