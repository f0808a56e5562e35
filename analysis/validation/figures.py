"""One figure per validation check, drawn from its measurement table.

Intervals drawn are 95% intervals over seeds (the number of seeds is in each title or
axis label); journal widths: 7 in for a row of panels.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .. import figures as fg
from .measures import ACF_ABS_LAGS, ACF_R_LAGS, HORIZONS
from .stats import km_median

__all__ = ["draw", "theme"]

theme = fg.theme


def _ci(x: np.ndarray, axis: int = 0, *, n: int = 1000, seed: int = 0) -> np.ndarray:
    """Seed-bootstrap 95% interval of the mean along ``axis`` (rows are seeds)."""
    x = np.asarray(x, float)
    rng = np.random.default_rng(seed)
    k = x.shape[axis]
    means = np.stack(
        [np.take(x, rng.integers(0, k, k), axis=axis).mean(axis=axis) for _ in range(n)]
    )
    return np.quantile(means, [0.025, 0.975], axis=0)


def _point_ci(ax, groups: dict, *, label: str | None = None, color=None, offset: float = 0.0):
    xs, ms, lo, hi = [], [], [], []
    for x, vals in groups.items():
        v = np.asarray(vals, float)
        v = v[np.isfinite(v)]
        if not len(v):
            continue
        c = _ci(v)
        xs.append(x)
        ms.append(v.mean())
        lo.append(v.mean() - c[0])
        hi.append(c[1] - v.mean())
    xs = np.asarray(xs, float) * (1 + offset)
    ax.errorbar(xs, ms, yerr=[lo, hi], fmt="o-", ms=4, capsize=2, label=label, color=color)


def stylized_facts(spec: dict, df: pd.DataFrame) -> plt.Figure:
    n = len(df)
    fig, axes = plt.subplots(1, 3, figsize=(7.2, 2.6))
    acf = np.vstack(df["acf_r_20_120"].to_numpy())
    c = _ci(acf)
    ax = axes[0]
    ax.fill_between(ACF_R_LAGS, c[0], c[1], color="C0", alpha=0.3, lw=0)
    ax.plot(ACF_R_LAGS, acf.mean(axis=0), color="C0", lw=1)
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set(xlabel="lag (min)", ylabel="ACF of 1-min returns", title="Linear autocorrelation")
    ax.text(0.02, 0.97, "pointwise 95%", transform=ax.transAxes, va="top", fontsize=7)
    absacf = np.vstack(df["acf_abs_1_120"].to_numpy())
    ax = axes[1]
    m = absacf.mean(axis=0)
    c = _ci(absacf)
    ax.fill_between(ACF_ABS_LAGS, c[0], c[1], color="C1", alpha=0.3, lw=0)
    ax.plot(ACF_ABS_LAGS, m, color="C1", lw=1)
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xscale("log")
    ax.set(xlabel="lag (min)", ylabel="ACF of |1-min returns|", title="Volatility clustering")
    k = np.vstack(df["kurtosis_by_horizon"].to_numpy())
    _point_ci(axes[2], {h: k[:, i] for i, h in enumerate(HORIZONS)}, color="C2")
    axes[2].set_xscale("log")
    axes[2].set_xticks(HORIZONS, [str(h) if h != 60 else "" for h in HORIZONS])
    axes[2].minorticks_off()
    axes[2].axhline(0, color="0.4", lw=0.8)
    axes[2].set(xlabel="horizon (min)", ylabel="excess kurtosis", title="Aggregation")
    fig.suptitle(f"{spec['market']} mark returns, Gaussian index: mean and 95% interval, {n} seeds")
    return fig


def sqrt_impact(spec: dict, df: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(3.6, 3.0))
    g = df.groupby("level")["impact_by_size"]
    _point_ci(ax, {lv: s.to_numpy() for lv, s in g}, label="simulated")
    q = np.array(sorted(df["level"].unique()))
    m = g.mean().to_numpy()
    if (m > 0).all():
        s, i = np.polyfit(np.log(q), np.log(m), 1)
        ax.plot(q, np.exp(i) * q**s, "-", color="C1", label=f"fit: exponent {s:.2f}")
        ax.plot(q, m[0] * (q / q[0]) ** 0.5, ":", color="0.4", label="square root")
        ax.set_yscale("log")
    else:
        ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xscale("log")
    ax.set(
        xlabel="metaorder size Q / daily volume V",
        ylabel="impact (fraction of price)",
        title=f"Impact at {100 * spec['participation']:g}% participation\n"
        f"({df['seed'].nunique()} seeds, 95% intervals)",
    )
    ax.legend(frameon=False, fontsize=7)
    return fig


def leverage_tails(spec: dict, df: pd.DataFrame) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.7))
    for ax, col, lab in (
        (axes[0], "kurtosis_5min", "excess kurtosis\n(5-min returns)"),
        (axes[1], "clustering_1_30", "ACF of |1-min returns|,\nmean over lags 1–30 min"),
    ):
        _point_ci(ax, {lv: s.to_numpy() for lv, s in df.groupby("level")[col]})
        ax.set_xscale("log")
        lv = sorted(df["level"].unique())
        ax.set_xticks(lv, [f"{v:g}" for v in lv])
        ax.minorticks_off()
        ax.axhline(0, color="0.4", lw=0.8)
        ax.set(xlabel="leverage cap (×)", ylabel=lab)
    fig.suptitle(f"Gaussian index, mean of 4 markets ({df['seed'].nunique()} seeds, 95% intervals)")
    return fig


def overlapping_portfolios(spec: dict, df: pd.DataFrame) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 2.9))
    panels = (
        ("global_cascade", "P(global cascade)", "rocket_r", (0, 1), "{:.2f}"),
        ("liquidated", "accounts liquidated (all)", "mako_r", (None, None), "{:.1f}"),
    )
    for ax, (col, title, cmap, (lo, hi), fmt) in zip(axes, panels, strict=True):
        t = df.pivot_table(index="level", columns="diversification", values=col)
        v = t.to_numpy(float)
        im = ax.imshow(v, cmap=cmap, vmin=lo, vmax=hi, origin="lower", aspect="auto")
        ax.set_xticks(range(t.shape[1]), [str(c) for c in t.columns])
        ax.set_yticks(range(t.shape[0]), [f"{x:g}" for x in t.index])
        mid = np.nanmean(v) if hi is None else 0.5
        for (i, j), x in np.ndenumerate(v):
            ax.text(j, i, fmt.format(x), ha="center", va="center", fontsize=7,
                    color="w" if x > mid else "k")  # fmt: skip
        ax.set(xlabel="markets per trader (of 8)", ylabel="leverage cap (×)")
        ax.set_title(title, fontsize=9)
        fig.colorbar(im, ax=ax)
    fig.suptitle(f"One market shocked −20%: mean over {df['seed'].nunique()} seeds per cell")
    return fig


def debtrank_prediction(spec: dict, df: pd.DataFrame) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(3.8, 2.8))
    data = pd.DataFrame(
        {
            "DebtRank": df["spearman_debtrank"].to_numpy(float),
            "gross notional": df["spearman_gross"].to_numpy(float),
        }
    )
    for k, col in enumerate(data):
        v = data[col].to_numpy()
        ax.scatter(np.full(len(v), k) + np.linspace(-0.15, 0.15, len(v)), v, s=10, alpha=0.6)
        c = _ci(v)
        ax.errorbar(
            k + 0.3,
            v.mean(),
            yerr=[[v.mean() - c[0]], [c[1] - v.mean()]],
            fmt="D",
            color="k",
            capsize=3,
        )
    ax.axhline(0, color="0.4", lw=0.8)
    ax.set_xticks([0, 1], list(data.columns))
    ax.set(ylabel="Spearman ρ with cascade size", xlabel="predictor")
    cand = [c for x in df["candidates"] for c in (json.loads(x) if isinstance(x, str) else x)]
    moved = sum(abs(c["cascade"]) > 0 for c in cand)
    ax.set_title(
        f"One ρ per seed ({len(df)} seeds); {moved} of {len(cand)}\nforced failures changed "
        "other liquidations",
        fontsize=9,
    )
    return fig


def cascade_sizes_strict(spec: dict, df: pd.DataFrame) -> plt.Figure:
    """The CCDF of cascade sizes and of their endogenous part (the shock's own direct
    liquidations taken out), with the shock; and each seed's branching ratio with the
    shock against its no-shock control."""
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(7.2, 3.0))
    shock = df[df["variant"] == "shock"]
    for col, lab, color in (
        ("cascade_accounts", "all accounts", "C0"),
        ("cascade_accounts_endogenous", "beyond the shock's direct hits", "C3"),
    ):
        sizes = np.concatenate([np.asarray(x, float) for x in shock[col]])
        sizes = sizes[sizes > 0]
        if len(sizes):
            x = np.unique(sizes)
            ax.loglog(x, [(sizes >= v).mean() for v in x], "o", ms=3, color=color, label=lab)
    ax.set(xlabel="cascade size (accounts)", ylabel="P(size ≥ x)", title="Cascade sizes (CCDF)")
    ax.legend(frameon=False, fontsize=7)
    p = df.pivot_table(index="seed", columns="variant", values="branching")
    for s0, s1 in zip(p["control"], p["shock"], strict=True):
        bx.plot([0, 1], [s0, s1], color="0.7", lw=0.7)
    bx.scatter(np.zeros(len(p)), p["control"], s=12, color="C0", zorder=3)
    bx.scatter(np.ones(len(p)), p["shock"], s=12, color="C3", zorder=3)
    bx.set_xticks([0, 1], ["no shock (control)", "with the shock"])
    bx.set_xlim(-0.4, 1.4)
    bx.set(ylabel="branching ratio", title="Branching, paired by seed")
    fig.suptitle(f"Cascades against a control ({df['seed'].nunique()} seeds)", fontsize=9)
    return fig


def cascade_sizes(spec: dict, df: pd.DataFrame) -> plt.Figure:
    import warnings

    import powerlaw

    sizes = np.concatenate([np.asarray(x, float) for x in df["cascade_accounts"]])
    sizes = sizes[sizes > 0]
    fig, ax = plt.subplots(figsize=(3.8, 3.0))
    x = np.unique(sizes)
    ccdf = np.array([(sizes >= v).mean() for v in x])
    ax.loglog(x, ccdf, "o", ms=3, label=f"{len(sizes)} cascades, {len(df)} seeds")
    if len(np.unique(sizes)) >= 3:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            fit = powerlaw.Fit(sizes, discrete=True, verbose=False)
            alpha = float(fit.power_law.alpha)  # fitted lazily: inside the filter
        tail = x[x >= fit.xmin]
        share = float((sizes >= fit.xmin).mean())
        ax.loglog(
            tail,
            share * (tail / fit.xmin) ** (1 - alpha),
            "-",
            color="C1",
            label=f"power law above {fit.xmin:g}: α = {alpha:.2f}",
        )
    ax.set(xlabel="cascade size (accounts)", ylabel="P(size ≥ x)", title="Cascade sizes (CCDF)")
    ax.legend(frameon=False, fontsize=7)
    return fig


def resilience(spec: dict, df: pd.DataFrame) -> plt.Figure:
    from statsmodels.duration.survfunc import SurvfuncRight

    fig, axes = plt.subplots(1, 2, figsize=(7.2, 2.9))
    dur = np.concatenate([np.asarray(x, float) for x in df["depth_half_life_updates"]])
    obs = np.concatenate([np.asarray(x, int) for x in df["depth_half_life_updates_observed"]])
    ax = axes[0]
    if len(dur):
        sf = SurvfuncRight(dur, obs)
        ax.step(sf.surv_times, sf.surv_prob, where="post", color="C0")
        ax.axhline(0.5, color="0.5", lw=0.8, ls=":")
        ax.axvline(20, color="C3", lw=0.8, ls="--", label="Degryse et al.: 20 updates")
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(left=0)
        med = km_median(dur, obs)
        ax.set_title(f"After large trades (median {med:,.0f})")
    ax.set(
        xlabel="orders submitted until half recovered",
        ylabel="share not yet recovered\n(Kaplan–Meier)",
    )
    ax.legend(frameon=False, fontsize=7)
    ax = axes[1]
    v = df["depth_retained_1h"].to_numpy(float)
    ax.scatter(np.linspace(-0.2, 0.2, len(v)), v, s=12, alpha=0.7)
    c = _ci(v[np.isfinite(v)]) if np.isfinite(v).any() else (np.nan, np.nan)
    ax.errorbar(
        0.4,
        np.nanmean(v),
        yerr=[[np.nanmean(v) - c[0]], [c[1] - np.nanmean(v)]],
        fmt="D",
        color="k",
        capsize=3,
    )
    ax.axhspan(0.5, 1.5, color="C2", alpha=0.12, label="tolerance")
    ax.axhline(0.7, color="C3", ls="--", lw=0.8, label="Oct 2025: ~70%")
    ax.set_xticks([])
    ax.set(
        ylabel="BTC depth within 1%,\nshare kept 1 h after",
        title=f"After the shock ({len(df)} seeds)",
    )
    ax.legend(frameon=False, fontsize=7)
    return fig


def robust_yet_fragile(spec: dict, df: pd.DataFrame) -> plt.Figure:
    fig, axes = plt.subplots(2, 3, figsize=(7.2, 4.6))
    cols = [
        ("accounts_liquidated", "accounts liquidated"),
        ("deadweight_loss", "deadweight loss (USD)"),
        ("unexposed_liquidated", "liquidated without ALT"),
    ]
    control = df[df["kind"] == "control"] if "kind" in df else df.iloc[:0]
    for r, (kind, lab) in enumerate((("single", "ALT alone"), ("wide", "every market × β"))):
        d = df[df["kind"] == kind]
        for c, (col, ylab) in enumerate(cols):
            ax = axes[r, c]
            if kind == "wide" and col == "unexposed_liquidated":
                ax.axis("off")
                ax.text(
                    0.5,
                    0.5,
                    "every account is exposed\nto a market-wide shock",
                    ha="center",
                    va="center",
                    fontsize=8,
                    transform=ax.transAxes,
                )
                continue
            for k, (mode, g) in enumerate(d.groupby("margin_mode")):
                groups = {-100 * s: x[col].to_numpy() for s, x in g.groupby("size")}
                _point_ci(ax, groups, label=mode, color=f"C{k}", offset=0.03 * (k - 0.5))
                base = control.loc[control["margin_mode"] == mode, col]
                if len(base) and not (kind == "wide" and col == "unexposed_liquidated"):
                    ax.axhline(
                        float(np.nanmean(base)),
                        color=f"C{k}",
                        lw=0.8,
                        ls=":",
                        label=f"{mode}, no shock" if r == 0 and c == 0 else None,
                    )
            ax.set_xscale("log")
            xs = sorted(-100 * d["size"].unique())
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
            ax.minorticks_off()
            ax.set_xlabel(f"shock to {lab} (%)")
            ax.set_ylabel(ylab)
            if col == "deadweight_loss":
                ax.yaxis.set_major_formatter(fg.USD)
            if r == 0 and c == 0:
                ax.legend(frameon=False, fontsize=7)
    fig.suptitle(
        f"Cross vs isolated margin after one shock ({df['seed'].nunique()} seeds, 95% intervals)"
    )
    return fig


SHORT = {
    "first40_share": "share in first 40 min",
    "long_share": "longs' share",
    "oi_drop": "open-interest change",
    "depth_kept_1h": "depth kept after 1 h",
    "collateral_low": "collateral low (USD)",
    "repeg_minutes": "minutes to re-peg",
    "adl_share": "ADL share of notional",
    "vault_pnl": "vault P&L (USD)",
    "leg_ratio": "leg 2 / leg 1 notional",
    "fund_kept": "insurance fund kept",
    "halt_no_liquidations": "in the halt (USD)",
    "halt_breaker": "halt − no halt (USD)",
}
"""Panel titles of the score cards' quantities (the criteria's ids without prefix)."""


def scorecard(spec: dict, df: pd.DataFrame) -> plt.Figure:
    """One panel per criterion: every seed's value, the statistic the criterion judges
    (the mean where it says so, else the median), the tolerance."""
    crits = spec["criterion"]
    ncol = 4
    nrow = -(-len(crits) // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(7.2, 1.9 * nrow + 0.4), squeeze=False)
    for ax, c in zip(axes.flat, crits, strict=False):
        v = np.concatenate([np.atleast_1d(np.asarray(x, float)) for x in df[c["measure"]]])
        v = v[np.isfinite(v)]
        ax.scatter(np.linspace(-0.25, 0.25, len(v)), v, s=9, alpha=0.6)
        if len(v):
            centre = np.mean(v) if c.get("statistic") == "mean" else np.median(v)
            ax.plot([0.4], [centre], "D", color="k", ms=5)
        lo, hi = c.get("lo_tol"), c.get("hi_tol")
        top = max([*v.tolist(), *(x for x in (lo, hi) if x is not None)], default=1.0)
        bottom = min([*v.tolist(), *(x for x in (lo, hi) if x is not None)], default=0.0)
        pad = 0.1 * (top - bottom or 1.0)
        ax.axhspan(
            lo if lo is not None else bottom - pad,
            hi if hi is not None else top + pad,
            color="C2",
            alpha=0.15,
            lw=0,
        )
        ax.set_ylim(bottom - pad, top + pad)
        ax.set_xticks([])
        if any(w in c["measure"] for w in ("pnl", "liquidated", "halt")):
            ax.yaxis.set_major_formatter(fg.USD)  # USD, no offset text over the title
        key = re.sub(r"^(oct|bt)\d?_", "", c["id"].removesuffix("_cal"))
        ax.set_title(SHORT.get(key, key.replace("_", " ")), fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(crits) :]:
        ax.axis("off")
    fig.suptitle(
        f"{spec['title']}\nseeds (dots), median or the criterion's mean (diamond), "
        "tolerance (band); "
        f"{df['seed'].nunique()} seeds",
        fontsize=9,
    )
    return fig


def firesale_correlation(spec: dict, df: pd.DataFrame) -> plt.Figure:
    """Per seed: mean pairwise correlation of index returns with the index deaf to the
    venue and listening to it, in the calm hours and in the fall and the hour after."""
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.2), sharey=True)
    for ax, (win, title) in zip(
        axes,
        (("calm", "two calm hours before the shock"), ("post", "the fall and the hour after")),
        strict=True,
    ):
        a, b = df[f"rho_{win}_deaf"].to_numpy(float), df[f"rho_{win}_listening"].to_numpy(float)
        for x0, x1 in zip(a, b, strict=True):
            ax.plot([0, 1], [x0, x1], color="0.7", lw=0.7)
        ax.scatter(np.zeros(len(a)), a, s=12, color="C0", zorder=3)
        ax.scatter(np.ones(len(b)), b, s=12, color="C3", zorder=3)
        ax.set_xticks([0, 1], [f"weight {spec['weights'][0]:g}", f"weight {spec['weights'][1]:g}"])
        ax.set_xlim(-0.4, 1.4)
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel("mean pairwise correlation\nof 1-min index returns")
    fig.suptitle(
        f"Index weight on the venue's own mark: the same seeds ({df['seed'].nunique()}) "
        "deaf and listening",
        fontsize=9,
    )
    return fig


def _paired(ax, a: np.ndarray, b: np.ndarray, labels: tuple[str, str]) -> None:
    """One line per seed from ``a`` to ``b``, the points coloured by side."""
    for x0, x1 in zip(a, b, strict=True):
        ax.plot([0, 1], [x0, x1], color="0.7", lw=0.7)
    ax.scatter(np.zeros(len(a)), a, s=12, color="C0", zorder=3)
    ax.scatter(np.ones(len(b)), b, s=12, color="C3", zorder=3)
    ax.set_xticks([0, 1], labels)
    ax.set_xlim(-0.4, 1.4)


def mv_price_gaps(spec: dict, df: pd.DataFrame) -> plt.Figure:
    """The calm spot gap against the latency band; the dislocation after the shock
    against the same seed's control; the minutes to reconverge."""
    shock = df[df["variant"] == "shock"].set_index("seed")
    control = df[df["variant"] == "control"].set_index("seed").reindex(shock.index)
    fig, axes = plt.subplots(1, 3, figsize=(7.2, 3.0))
    ax = axes[0]
    ax.scatter(np.zeros(len(shock)), 1e4 * shock["calm_gap_p95"], s=12, color="C0")
    ax.axhline(120, color="C3", lw=0.8, ls="--")
    ax.text(0.35, 120, "120 bp band", color="C3", fontsize=7, va="bottom")
    ax.set_xticks([])
    ax.set_xlim(-0.5, 1.0)
    ax.set_ylim(0, max(140.0, 1.1e4 * float(shock["calm_gap_p95"].max())))
    ax.set_ylabel("bp")
    ax.set_title("calm spot gap, p95", fontsize=9)
    ax = axes[1]
    _paired(
        ax,
        1e4 * control["dislocation_post"].to_numpy(float),
        1e4 * shock["dislocation_post"].to_numpy(float),
        ("control", "shock"),
    )
    ax.set_ylabel("bp")
    ax.set_title("dislocation, hour after", fontsize=9)
    ax = axes[2]
    ax.scatter(np.zeros(len(shock)), shock["reconverge_minutes"], s=12, color="C0")
    ax.axhline(240, color="C3", lw=0.8, ls="--")
    ax.set_xticks([])
    ax.set_xlim(-0.5, 0.5)
    ax.set_ylabel("minutes")
    ax.set_title("time to reconverge", fontsize=9)
    fig.suptitle(f"Cross-venue gaps, {market_of(spec)} ({len(shock)} seeds)", fontsize=9)
    return fig


def market_of(spec: dict) -> str:
    return spec.get("market", "BTC")


def mv_liquidity_spiral(spec: dict, df: pd.DataFrame) -> plt.Figure:
    """Per seed: the correlation of illiquidity and margin use with delayed transfers,
    and the notional liquidated with delayed and instant transfers."""
    delayed = df[df["variant"] == "delayed"].set_index("seed")
    instant = df[df["variant"] == "instant"].set_index("seed").reindex(delayed.index)
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.0))
    ax = axes[0]
    ax.scatter(np.zeros(len(delayed)), delayed["spiral_corr"], s=12, color="C0")
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_xticks([])
    ax.set_xlim(-0.5, 0.5)
    ax.set_ylabel("Pearson correlation")
    ax.set_title("spread vs margin use (delayed)", fontsize=9)
    ax = axes[1]
    _paired(
        ax,
        delayed["liquidated_notional"].to_numpy(float) / 1e6,
        instant["liquidated_notional"].to_numpy(float) / 1e6,
        ("delayed", "instant"),
    )
    ax.set_ylabel("liquidated notional (USD m)")
    ax.set_title(f"{spec['window']} minutes from the shock", fontsize=9)
    fig.suptitle(f"Liquidity spiral ({len(delayed)} seeds)", fontsize=9)
    return fig


def mv_impact_travels(spec: dict, df: pd.DataFrame) -> plt.Figure:
    """Impact against size on the venue sold on and at the other spot venues: every
    seed's impact as a dot (negative ones included: the treated copy ended above its
    control), the mean over seeds with ±2 standard errors, beside the square root."""
    fig, axes = plt.subplots(1, 2, figsize=(7.2, 3.0), sharey=True, layout="constrained")
    x = np.asarray(spec["sizes"], float)
    for ax, col, title in (
        (axes[0], "impact_own", "venue sold on"),
        (axes[1], "impact_other", "other spot venues (median)"),
    ):
        y = 1e4 * np.vstack([np.asarray(v, float) for v in df[col]])  # bp, seed × size
        jitter = np.exp(np.linspace(-0.08, 0.08, len(y)))
        for i, row in enumerate(y):
            ax.plot(x * jitter[i], row, "o", ms=2.5, color="0.6", alpha=0.8)
        mean = np.nanmean(y, axis=0)
        se = np.nanstd(y, axis=0, ddof=1) / np.sqrt(np.isfinite(y).sum(axis=0))
        ax.errorbar(
            x, mean, yerr=2 * se, fmt="o-", color="C0", ms=4, lw=1, capsize=2, label="mean ± 2 s.e."
        )
        ax.plot(
            x,
            1e4 * 0.5 * 0.03 * np.sqrt(x),
            color="k",
            ls="--",
            lw=0.8,
            label="0.5·σ·√(Q/V), σ = 3%/day",
        )
        ax.axhline(0, color="0.3", lw=0.6)
        ax.set_xscale("log")
        ax.set_xticks(x, [f"{100 * v:g}%" for v in x])
        ax.xaxis.set_minor_locator(plt.NullLocator())
        ax.set_xlabel("Q / V (share of daily volume)")
        ax.set_title(title, fontsize=9)
    axes[0].set_ylabel("impact at the program's end (bp)")
    axes[0].legend(fontsize=7, frameon=False)
    fig.suptitle(f"Sell programs, {market_of(spec)} ({df['seed'].nunique()} seeds)", fontsize=9)
    return fig


DRAW = {
    "mv_price_gaps": mv_price_gaps,
    "mv_liquidity_spiral": mv_liquidity_spiral,
    "mv_impact_travels": mv_impact_travels,
    "stylized_facts": stylized_facts,
    "sqrt_impact": sqrt_impact,
    "leverage_tails": leverage_tails,
    "overlapping_portfolios": overlapping_portfolios,
    "debtrank_prediction": debtrank_prediction,
    "cascade_sizes": cascade_sizes,
    "cascade_sizes_strict": cascade_sizes_strict,
    "resilience": resilience,
    "robust_yet_fragile": robust_yet_fragile,
    "robust_yet_fragile_controlled": robust_yet_fragile,
    "oct2025_card": scorecard,
    "black_thursday_card": scorecard,
    "oct2025_scorecard": scorecard,
    "black_thursday_scorecard": scorecard,
    "oct2025_calibrated": scorecard,
    "black_thursday_calibrated": scorecard,
    "firesale_correlation": firesale_correlation,
}


def draw(spec: dict, df: pd.DataFrame, result, out: Path) -> str:
    """Draw the check's figure into ``out``; return its path relative to the report."""
    fig = DRAW[spec["name"]](spec, df)
    fg.save(fig, out, spec["name"])
    return f"figures/{spec['name']}.png"
