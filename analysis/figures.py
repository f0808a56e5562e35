"""Publication figures (seaborn): one theme, a colour-blind-safe palette, labelled axes
with units, each saved as PNG and PDF.

Run figures take the frames and graphs a run writes; sweep figures take
``summary.parquet`` (and the design in ``experiment.toml``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..model.contagion import account_of, cascades, liquidation_tree
from ..model.measures import branching_by_generation, branching_ratio

__all__ = [
    "LABELS",
    "cascade",
    "ccdf",
    "collateral",
    "cross_vs_isolated",
    "depth_heatmap",
    "exposure",
    "has_collateral",
    "has_vault",
    "heatmap",
    "label",
    "leverage",
    "lines",
    "liquidations",
    "margin_ratio",
    "points",
    "pools",
    "prices",
    "save",
    "shock_marks",
    "shock_steps",
    "sobol",
    "theme",
]

PALETTE = "colorblind"
KIND_COLORS = dict(
    zip(
        ["partial", "full", "backstop", "takeover", "adl"],
        sns.color_palette(PALETTE, 5),
        strict=True,
    )
)


def theme() -> None:
    """The project's one plotting theme.

    Examples:
        >>> theme()
        >>> plt.rcParams["savefig.dpi"] >= 150
        True
    """
    sns.set_theme(context="paper", style="ticks", palette=PALETTE, font_scale=1.1)
    plt.rcParams.update(
        {
            "figure.dpi": 110,
            "savefig.dpi": 160,
            "axes.titleweight": "bold",
            "axes.spines.top": False,
            "axes.spines.right": False,
            "pdf.fonttype": 42,
            "svg.fonttype": "none",
            "figure.constrained_layout.use": True,
        }
    )


def save(fig: plt.Figure, out: Path, name: str) -> list[Path]:
    """Save ``fig`` as ``out/name.png`` and ``out/name.pdf``; close it; return the paths.

    Examples:
        >>> import tempfile
        >>> fig, ax = plt.subplots()
        >>> [p.name for p in save(fig, Path(tempfile.mkdtemp()), "empty")]
        ['empty.png', 'empty.pdf']
    """
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], metadata={"Software": None})
    fig.savefig(paths[1], metadata={"Creator": None, "Producer": None, "CreationDate": None})
    plt.close(fig)
    return paths


def _usd(x: float, _pos=None) -> str:
    sign = "−" if x < 0 else ""
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"{sign}${abs(x) / div:.3g}{unit}"
    return f"{sign}${abs(x):.3g}"


USD = FuncFormatter(_usd)


def _price(x: float, _pos=None) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.4g}"


def _markets(df: pd.DataFrame) -> list[str]:
    """The markets of a model frame (the home venue's ``{M}_mark`` columns)."""
    return [c[: -len("_mark")] for c in df.columns if c.endswith("_mark") and ":" not in c]


def _minutes(df: pd.DataFrame) -> np.ndarray:
    return df["t"].to_numpy()


# ------------------------------------------------------------------- a run

SHOCK_COLOR = "#c0392b"


def shock_steps(events: pd.DataFrame) -> list[int]:
    """The steps at which shocks hit (``shock`` events), for marking time axes.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> shock_steps(m.events)
        [30]
    """
    if not len(events):
        return []
    return sorted({int(s) for s in events.loc[events["kind"] == "shock", "step"]})


def shock_marks(shocks) -> list[tuple[int, str]]:
    """(step, label) of each shock of a scenario (its ``shocks``, as dicts or
    :class:`~crossmargin.model.scenario.ShockConfig`): labelled by kind and size.

    Examples:
        >>> shock_marks([{"kind": "index_jump", "step": 720, "size": -0.08}])
        [(720, 'index −8%')]
        >>> shock_marks([{"kind": "halt", "step": 9, "size": 0, "duration": 25}])
        [(9, 'halt 25 min')]
    """
    out = []
    for sh in shocks:
        d = sh if isinstance(sh, dict) else sh.model_dump()
        kind, size, dur = d["kind"], float(d.get("size", 0.0)), int(d.get("duration", 1))
        if kind == "index_jump":
            text = f"index {'+' if size > 0 else '−'}{abs(size) * 100:.3g}%"
        elif kind == "vol_regime":
            text = f"volatility ×{size:.3g}"
        elif kind == "mm_withdrawal":
            text = f"makers out {size * 100:.0f}%"
        elif kind == "depeg":
            text = f"token sold {_usd(size).lstrip('$')}"
        elif kind == "halt":
            text = f"halt {dur} min"
        elif kind == "oracle_freeze":
            text = f"oracle frozen {dur} min"
        else:
            text = kind.replace("_", " ")
        out.append((int(d["step"]), text))
    return sorted(out)


def _mark_shocks(ax, shocks, *, label: bool = True) -> None:
    """Dashed verticals behind the data at the shock steps (``shocks``: steps, or
    (step, label) pairs from :func:`shock_marks`); with ``label``, each group of shocks
    closer than 3% of the axis is labelled once, vertically, beside its first line."""
    marks = [(s, "shock") if isinstance(s, int | np.integer) else s for s in shocks]
    if not marks:
        return
    lo, hi = ax.get_xlim()
    gap = 0.03 * (hi - lo)
    groups: list[list[tuple[int, str]]] = []
    for m in sorted(marks):
        if groups and m[0] - groups[-1][-1][0] <= gap:
            groups[-1].append(m)
        else:
            groups.append([m])
    for group in groups:
        for s, _ in group:
            ax.axvline(s, color=SHOCK_COLOR, lw=0.8, ls="--", zorder=0.5)
        if label and lo <= group[0][0] <= hi:
            names = list(dict.fromkeys(t for _, t in group))
            ax.text(
                group[0][0],
                0.97,
                f" {', '.join(names)} @{group[0][0]}",
                color=SHOCK_COLOR,
                fontsize=6.5,
                va="top",
                ha="right",
                rotation=90,
                transform=ax.get_xaxis_transform(),
                zorder=0.6,
            )


def _title(fig_or_ax, text: str, *, width: int | None = None, **kw) -> None:
    """A title wrapped to ``width`` characters (by default what the figure's width holds
    at the title's font size), so that it is never cut at print size."""
    import textwrap

    if width is None:
        fig = fig_or_ax if isinstance(fig_or_ax, plt.Figure) else fig_or_ax.figure
        size = kw.get("fontsize", plt.rcParams["axes.titlesize"])
        size = size if isinstance(size, int | float) else 11.0
        width = max(20, int(fig.get_figwidth() * 72 / (0.78 * size)))
    wrapped = "\n".join(textwrap.wrap(text, width))
    if isinstance(fig_or_ax, plt.Figure):
        fig_or_ax.suptitle(wrapped, **kw)
    else:
        fig_or_ax.set_title(wrapped, **kw)


def _counts(axis, nbins: int | str = "auto") -> None:
    """Whole-number ticks for an axis of counts."""
    axis.set_major_locator(MaxNLocator(integer=True, nbins=nbins))


def prices(df: pd.DataFrame, events: pd.DataFrame) -> plt.Figure:
    """Index, mark and mid per market, with liquidations marked on the mark and the
    shocks on the time axis.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> fig = prices(m.model_frame(), m.events)
        >>> [ax.get_ylabel() for ax in fig.axes]
        ['BTC (USD)', 'ETH (USD)', 'SOL (USD)', 'ALT (USD)']
    """
    names = _markets(df)
    fig, axes = plt.subplots(
        len(names), 1, figsize=(8, 2.1 * len(names)), sharex=True, squeeze=False
    )
    liq = events[events["kind"].isin(["partial", "full", "backstop"])]
    shocks = shock_steps(events)
    for k, (name, ax) in enumerate(zip(names, axes[:, 0], strict=True)):
        t = _minutes(df)
        ax.plot(t, df[f"{name}_index"], lw=1.0, label="index", color="0.55")
        ax.plot(t, df[f"{name}_mid"], lw=0.7, label="mid", alpha=0.7)
        ax.plot(t, df[f"{name}_mark"], lw=1.1, label="mark")
        steps = liq.loc[liq["market"] == k, "step"].unique()
        if len(steps):
            marks = df.set_index("t").loc[steps, f"{name}_mark"]
            ax.scatter(steps, marks, s=10, color="C3", zorder=3, label="liquidation", marker="v")
        ax.set_ylabel(f"{name} (USD)")
        ax.yaxis.set_major_formatter(FuncFormatter(_price))
        _mark_shocks(ax, shocks, label=k == 0)
    axes[0, 0].legend(loc="lower left", ncols=4, frameon=False, fontsize=8)
    axes[-1, 0].set_xlabel("time (minutes)")
    fig.suptitle("Prices and forced liquidations")
    return fig


def _stacked(ax, df: pd.DataFrame, cols: dict[str, str], bin_minutes: int, t0=None, t1=None):
    """Liquidated notional stacked by waterfall stage, in bins of ``bin_minutes``: each
    stage one filled step outline over the bins (what a bar per bin draws, as one
    patch instead of hundreds: the figure saves in a fraction of the time)."""
    d = df if t0 is None else df[(df["t"] >= t0) & (df["t"] <= t1)]
    b = d.groupby((d["t"] - 1) // bin_minutes)[list(cols.values())].sum()
    if len(b):  # contiguous bins: a bin without rows is an empty one
        b = b.reindex(range(b.index.min(), b.index.max() + 1), fill_value=0.0)
    edges = np.append(b.index.to_numpy(), b.index.max() + 1 if len(b) else 0) * bin_minutes
    bottom = np.zeros(len(b))
    for kind, col in cols.items():
        top = bottom + b[col].to_numpy()
        if len(b):
            ax.stairs(
                top,
                edges,
                baseline=bottom,
                fill=True,
                label=kind,
                color=KIND_COLORS[kind],
                linewidth=0,
                zorder=2,
            )
        bottom = top
    ax.set_ylim(0, 1.15 * max(bottom.max(initial=0.0), 1.0))
    ax.yaxis.set_major_formatter(USD)
    ax.set_xlabel("time (minutes)")


def liquidations(df: pd.DataFrame, *, bin_minutes: int = 5, shocks=()) -> plt.Figure:
    """Liquidated notional over time, stacked by waterfall stage: the whole run in
    ``bin_minutes`` bins and, when there are shocks, beside it the window from 30
    minutes before the first shock to 150 after the last in one-minute bins (a crash
    late in the day is not squeezed into a sliver). Shocks are labelled by kind.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> fig = liquidations(m.model_frame(), shocks=[30])
        >>> [ax.get_title() for ax in fig.axes]
        ['the whole run', 'minutes 1–60, around the shocks']
    """
    cols = {k: f"liq_notional_{k}" for k in KIND_COLORS if f"liq_notional_{k}" in df}
    marks = [(s, "shock") if isinstance(s, int | np.integer) else s for s in shocks]
    if not marks:
        fig, ax = plt.subplots(figsize=(8, 3.2))
        _stacked(ax, df, cols, bin_minutes)
        ax.set_ylabel(f"liquidated notional\nper {bin_minutes} min (USD)")
        ax.legend(
            frameon=False, ncols=len(cols), loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8
        )
        fig.suptitle("Liquidated notional by waterfall stage")
        return fig
    fig, (ax, zx) = plt.subplots(1, 2, figsize=(9, 3.4), gridspec_kw={"width_ratios": [1.25, 1]})
    _stacked(ax, df, cols, bin_minutes)
    ax.set_ylabel(f"liquidated notional\nper {bin_minutes} min (USD)")
    ax.set_title("the whole run", fontsize=9)
    _mark_shocks(ax, [(s, "") for s, _ in marks], label=False)
    t0 = max(int(df["t"].min()), marks[0][0] - 30)
    t1 = min(int(df["t"].max()), marks[-1][0] + 150)
    _stacked(zx, df, cols, 1, t0, t1)
    zx.set_xlim(t0, t1 + 1)
    zx.set_ylabel("per minute (USD)")
    zx.set_title(f"minutes {t0}–{t1}, around the shocks", fontsize=9)
    _mark_shocks(zx, marks)
    ax.axvspan(t0, t1, color="0.9", zorder=0)
    handles, labels = ax.get_legend_handles_labels()
    fig.suptitle("Liquidated notional by waterfall stage")
    fig.legend(
        handles, labels, frameon=False, ncols=len(cols), loc="outside lower center", fontsize=8
    )
    return fig


def has_vault(df: pd.DataFrame) -> bool:
    """Whether the run had a backstop vault (a NAV that is ever non-zero).

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> has_vault(m.model_frame())
        True
    """
    return "vault_nav" in df and bool((df["vault_nav"].abs() > 0).any())


def pools(df: pd.DataFrame, *, shocks: Sequence[int] = ()) -> plt.Figure:
    """The shared pools' change since the start (USD): the insurance fund and, when the
    run has one, the backstop vault's NAV. A change reads to the dollar where a level
    of $1 M would not.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> pools(m.model_frame(), shocks=[30]).axes[0].get_ylabel()
        'change since start (USD)'
    """
    fig, ax = plt.subplots(figsize=(8, 2.8))
    t = _minutes(df)
    series = [("insurance fund", "insurance_fund", "C0")]
    if has_vault(df):
        series.append(("backstop vault NAV", "vault_nav", "C2"))
    for label, col, color in series:
        start = float(df[col].iloc[0])
        ax.plot(t, df[col] - start, color=color, label=f"{label} (start {_usd(start)})")
    ax.axhline(0, color="0.6", lw=0.6)
    ax.set_xlabel("time (minutes)")
    ax.set_ylabel("change since start (USD)")
    ax.yaxis.set_major_formatter(USD)
    ax.legend(frameon=False, loc="lower left")
    _mark_shocks(ax, shocks)
    ax.set_title("Shared pools")
    return fig


def has_collateral(df: pd.DataFrame) -> bool:
    """Whether the run priced a collateral token (``collateral_price`` not all NaN).

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> has_collateral(m.model_frame())  # the baseline posts no collateral token
        False
    """
    return "collateral_price" in df and bool(df["collateral_price"].notna().any())


def collateral(df: pd.DataFrame, *, shocks: Sequence[int] = ()) -> plt.Figure:
    """The collateral token's price as the exchange valued it, against its peg of 1 USD,
    with its low marked.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> sc = Scenario.preset("oct2025_collateral_depeg").replace(steps=60, shocks=[])
        >>> m = CrossMarginModel(sc.replace(**{"agents.leveraged.count": 100}))
        >>> m.run_for(60)
        >>> collateral(m.model_frame()).axes[0].get_ylabel()
        'price (USD)'
    """
    fig, ax = plt.subplots(figsize=(8, 2.6))
    t = _minutes(df)
    p = df["collateral_price"].to_numpy(dtype=float)
    ax.plot(t, p, color="C4", lw=1.2, label="collateral price")
    ax.axhline(1.0, color="0.5", lw=0.8, ls=":", label="peg (1 USD)")
    if np.isfinite(p).any():
        k = int(np.nanargmin(p))
        right = t[k] > t[0] + 0.6 * (t[-1] - t[0])
        ax.annotate(
            f"low {p[k]:.3f} at minute {int(t[k])}",
            (t[k], p[k]),
            xytext=(-12 if right else 12, 10),
            textcoords="offset points",
            fontsize=8,
            ha="right" if right else "left",
            va="bottom",
            arrowprops={"arrowstyle": "-", "color": "0.4", "lw": 0.6},
        )
        ax.set_ylim(min(0.95 * np.nanmin(p), 0.9), max(1.05, 1.02 * np.nanmax(p)))
    ax.set_xlabel("time (minutes)")
    ax.set_ylabel("price (USD)")
    ax.legend(frameon=False, loc="lower left", ncols=2)
    _mark_shocks(ax, shocks)
    ax.set_title("Collateral token price")
    return fig


def depth_heatmap(
    df: pd.DataFrame,
    *,
    bands_bps: list[float] | None = None,
    smooth: int = 10,
    shocks: Sequence[int] = (),
) -> plt.Figure:
    """Resting depth around the mid over time, one heatmap per market: USD per basis
    point of each band (the bands are unequal, so totals per band would mislead),
    averaged over ``smooth`` minutes, log colour scale; white is an empty band.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> fig = depth_heatmap(m.model_frame(), shocks=[30])
        >>> [ax.get_ylabel() for ax in fig.axes]
        ['BTC\\nbp from mid', 'ETH\\nbp from mid', 'SOL\\nbp from mid', 'ALT\\nbp from mid', 'USD per bp (10-min mean)']
    """
    from matplotlib.colors import LogNorm

    from ..model.collect import DEPTH_BANDS_BPS

    edges = bands_bps or DEPTH_BANDS_BPS
    widths = np.diff(edges).astype(float)
    names = [n for n in _markets(df) if f"{n}_depth_b0" in df]
    fig, axes = plt.subplots(
        len(names), 1, figsize=(8, 1.9 * len(names)), sharex=True, squeeze=False
    )
    mats = {}
    for name in names:
        cols = [f"{name}_depth_b{k}" for k in range(len(widths))]
        per_bp = df[cols].rolling(smooth, min_periods=1).mean().to_numpy() / widths
        mats[name] = np.where(per_bp > 0, per_bp, np.nan).T
    finite = np.concatenate([m[np.isfinite(m)] for m in mats.values()] or [np.ones(1)])
    norm = LogNorm(vmin=max(np.nanpercentile(finite, 2), 1e-9), vmax=np.nanmax(finite))
    cmap = plt.get_cmap("mako_r").with_extremes(bad="white")
    im = None
    t0, t1 = df["t"].iloc[0] - 0.5, df["t"].iloc[-1] + 0.5
    for name, ax in zip(names, axes[:, 0], strict=True):
        im = ax.imshow(
            mats[name],
            aspect="auto",
            origin="lower",
            cmap=cmap,
            norm=norm,
            extent=(t0, t1, 0, len(widths)),
            interpolation="nearest",
        )
        ticks = [k for k, e in enumerate(edges) if e in (-500, -100, -25, 0, 25, 100, 500)]
        ax.set_yticks(ticks, [f"{edges[k]:+d}" if edges[k] else "mid" for k in ticks])
        ax.set_ylabel(f"{name}\nbp from mid")
        _mark_shocks(ax, shocks, label=name == names[0])
    if im is not None:
        cb = fig.colorbar(im, ax=axes[:, 0].tolist(), pad=0.01, aspect=30)
        cb.set_label(f"USD per bp ({smooth}-min mean)")
    axes[-1, 0].set_xlabel("time (minutes)")
    fig.suptitle("Order-book depth around the mid (bids below, asks above)")
    return fig


def margin_ratio(df: pd.DataFrame, *, shocks: Sequence[int] = ()) -> plt.Figure:
    """Margin-ratio distribution over time (accounts with positions): median and bands.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> margin_ratio(m.model_frame(), shocks=[30]).axes[0].get_ylabel()
        'margin ratio\\nequity / MM'
    """
    fig, ax = plt.subplots(figsize=(8, 3))
    t = _minutes(df)
    if {"ratio_p05", "ratio_p95"} <= set(df.columns):
        ax.fill_between(t, df["ratio_p05"], df["ratio_p95"], alpha=0.2, color="C0", label="5–95%")
    ax.fill_between(
        t,
        df["ratio_p25"],
        df.get("ratio_p75", df["ratio_p50"]),
        alpha=0.35,
        color="C0",
        label="25–75%",
    )
    ax.plot(t, df["ratio_p50"], color="C0", lw=1.2, label="median")
    ax.axhline(1.0, color="C3", lw=1, ls="--", label="maintenance margin")
    ax.set_yscale("log")
    ax.set_xlabel("time (minutes)")
    ax.set_ylabel("margin ratio\nequity / MM")
    ax.legend(frameon=False, ncols=4, loc="lower left", bbox_to_anchor=(0, 1.0), fontsize=8)
    _mark_shocks(ax, shocks)
    fig.suptitle("Margin-ratio distribution across accounts with positions")
    return fig


def leverage(df: pd.DataFrame, *, shocks: Sequence[int] = ()) -> plt.Figure:
    """Leverage monitor: aggregate leverage, open interest, accounts near liquidation.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> [ax.get_ylabel() for ax in leverage(m.model_frame(), shocks=[30]).axes]
        ['aggregate leverage (×)', 'open interest (USD)', 'accounts within\\n10% of MM']
    """
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.6))
    t = _minutes(df)
    axes[0].plot(t, df["aggregate_leverage"])
    axes[0].set_ylabel("aggregate leverage (×)")
    axes[1].plot(t, df["open_interest"], color="C1")
    axes[1].set_ylabel("open interest (USD)")
    axes[1].yaxis.set_major_formatter(USD)
    axes[2].plot(t, df["near_liquidation"], color="C3")
    axes[2].set_ylabel("accounts within\n10% of MM")
    _counts(axes[2].yaxis)
    for ax in axes:
        ax.set_xlabel("time (minutes)")
        _mark_shocks(ax, shocks, label=ax is axes[0])
    fig.suptitle("Leverage monitor")
    return fig


def cascade(g: nx.DiGraph, *, top: int = 3) -> plt.Figure:
    """The cascade in layers: each liquidation at its minute (x) and generation (y),
    dot area ∝ √loss; the ``top`` largest cascades (by liquidated notional) in colour
    with their parent → child links, the rest grey; beside it, liquidations per
    generation and the branching ratio from each generation to the next.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> cascade(m.cascade_graph).get_suptitle()
        'Cascade: 59 liquidations in 1 cascade'
    """
    parents, generation = liquidation_tree(g)
    fig, (ax, bx) = plt.subplots(
        1, 2, figsize=(8.5, 4.2), gridspec_kw={"width_ratios": [3.2, 1]}, sharey=True
    )
    if not generation:
        for a in (ax, bx):
            a.set_axis_off()
        ax.text(0.5, 0.5, "no liquidations", ha="center", va="center", transform=ax.transAxes)
        return fig
    comps = sorted(cascades(g, parents), key=lambda c: -sum(g.nodes[h]["notional"] for h in c))
    colour = {}
    for k, comp in enumerate(comps[:top]):
        for h in comp:
            colour[h] = f"C{k}"
    loss = {h: float(g.nodes[h]["loss"]) for h in generation}
    lmax = max(loss.values()) or 1.0

    def size(h):
        return 8 + 160 * np.sqrt(loss[h] / lmax)

    rng = np.random.default_rng(0)
    y = {h: generation[h] + rng.uniform(-0.18, 0.18) for h in generation}
    x = {h: float(g.nodes[h]["step"]) for h in generation}
    rest = [h for h in generation if h not in colour]
    ax.scatter(
        [x[h] for h in rest],
        [y[h] for h in rest],
        s=[size(h) for h in rest],
        color="0.7",
        alpha=0.6,
        linewidths=0,
        label=f"other cascades ({len(comps) - min(top, len(comps))})",
    )
    for k, comp in enumerate(comps[:top]):
        for h in comp:
            for p in parents[h]:
                ax.plot([x[p], x[h]], [y[p], y[h]], color=f"C{k}", lw=0.6, alpha=0.6)
        hs = sorted(comp)
        notional = sum(g.nodes[h]["notional"] for h in comp)
        accounts = len({account_of(g, h) for h in comp})
        ax.scatter(
            [x[h] for h in hs],
            [y[h] for h in hs],
            s=[size(h) for h in hs],
            color=f"C{k}",
            alpha=0.85,
            linewidths=0,
            label=f"cascade {k + 1}: {accounts} account{'s' if accounts != 1 else ''}, "
            f"{_usd(notional)}",
            zorder=3,
        )
    gens = sorted(set(generation.values()))
    ax.set_yticks(gens, [f"gen {k}" for k in gens])
    ax.set_ylim(max(gens) + 0.6, -0.6)
    ax.set_xlabel("time (minutes)")
    ax.legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.16), ncols=2)
    ax.set_title("Liquidations by generation (area ∝ √loss)")
    table = branching_by_generation(parents, generation)
    bx.barh(table["generation"], table["liquidations"], color="0.45", height=0.6)
    for _, row in table.iterrows():
        bx.text(
            row["liquidations"],
            row["generation"],
            f" {int(row['liquidations'])}  (b = {row['branching']:.2f})",
            va="center",
            fontsize=7,
        )
    bx.set_xlabel("liquidations")
    _counts(bx.xaxis, 3)
    bx.set_xlim(0, 1.9 * table["liquidations"].max())
    bx.set_title(f"branching ratio {branching_ratio(parents):.2f}")
    bx.spines["left"].set_visible(False)
    bx.tick_params(left=False)
    fig.suptitle(
        f"Cascade: {_count(len(generation), 'liquidation')} in {_count(len(comps), 'cascade')}"
    )
    return fig


def has_venues(df: pd.DataFrame) -> bool:
    """Whether the run is a world of venues (its frame has ``world:`` columns)."""
    return any(c.startswith("world:") for c in df.columns)


def _venue_columns(df: pd.DataFrame, market: str) -> dict[str, str]:
    """Venue name → its ``{market}_mark`` column (the home venue's unprefixed, named
    after the column prefix nobody else has)."""
    out = {}
    for c in df.columns:
        head, _, rest = c.rpartition(":")
        if rest == f"{market}_mark" and head != "world":
            out[head] = c
    return out


def venues(df: pd.DataFrame, events: pd.DataFrame, *, home: str, shocks=()) -> plt.Figure:
    """Per market: every venue's mark, each perpetual venue's index (dotted, its
    colour) and the latent value (black): how far the venues' prices drift apart and
    how the indexes follow the spot venues."""
    names = _markets(df)
    fig, axes = plt.subplots(
        len(names), 1, figsize=(8, 2.2 * len(names)), sharex=True, squeeze=False
    )
    t = _minutes(df)
    perps = set(events.loc[events["kind"] == "liquidation", "venue"]) | {home}
    for k, (name, ax) in enumerate(zip(names, axes[:, 0], strict=True)):
        cols = _venue_columns(df, name)
        ax.plot(t, df[f"world:{name}_value"], color="k", lw=1.2, label="value (latent)")
        for j, (venue, col) in enumerate(sorted(cols.items(), key=lambda x: x[0] or home)):
            label = venue or home
            ax.plot(t, df[col], lw=0.8, color=f"C{j}", label=f"{label} mark", alpha=0.85)
            index = col.replace("_mark", "_index")
            if label in perps and index in df:
                ax.plot(t, df[index], lw=0.8, ls=":", color=f"C{j}", label=f"{label} index")
        ax.set_ylabel(f"{name} (USD)")
        ax.yaxis.set_major_formatter(FuncFormatter(_price))
        _mark_shocks(ax, shocks, label=k == 0)
    axes[0, 0].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=7)
    axes[-1, 0].set_xlabel("time (minutes)")
    _title(fig, "Every venue's mark, the perpetual venues' indexes and the latent value")
    return fig


def cascade_by_venue(g: nx.DiGraph) -> plt.Figure:
    """The cascade coloured by venue: each liquidation at its minute and generation;
    beside it, the losses passed along edges that cross venues, by how they crossed."""
    _, generation = liquidation_tree(g)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(8.5, 4.0), gridspec_kw={"width_ratios": [2.6, 1]})
    if not generation:
        for a in (ax, bx):
            a.set_axis_off()
        ax.text(0.5, 0.5, "no liquidations", ha="center", va="center", transform=ax.transAxes)
        return fig
    venue_of = {h: g.nodes[h].get("venue", "") for h in generation}
    names = sorted(set(venue_of.values()))
    rng = np.random.default_rng(0)
    for j, name in enumerate(names):
        hs = [h for h in generation if venue_of[h] == name]
        ax.scatter(
            [float(g.nodes[h]["step"]) for h in hs],
            [generation[h] + rng.uniform(-0.2, 0.2) for h in hs],
            s=10,
            color=f"C{j}",
            alpha=0.7,
            linewidths=0,
            label=f"{name}: {len(hs)}",
        )
    gens = sorted(set(generation.values()))
    every = max(1, -(-len(gens) // 10))  # at most ~10 labelled generations
    ax.set_yticks(gens[::every], [f"gen {k}" for k in gens[::every]])
    ax.set_ylim(max(gens) + 0.6, -0.6)
    ax.set_xlabel("time (minutes)")
    ax.legend(frameon=False, fontsize=7, title="liquidations on", title_fontsize=7)
    ax.set_title("Liquidations by generation and venue", fontsize=9)
    crossing: dict[str, float] = {}
    for u, v, d in g.edges(data=True):
        a, b = g.nodes[u].get("venue", ""), g.nodes[v].get("venue", "")
        if a and b and a != b:
            kind = d.get("kind", "price")
            crossing[kind] = crossing.get(kind, 0.0) + float(d.get("weight", 0.0))
    if crossing:
        kinds = sorted(crossing, key=crossing.get)
        bx.barh(kinds, [crossing[k] / 1e6 for k in kinds], color="0.45", height=0.6)
        for k in kinds:
            bx.text(crossing[k] / 1e6, k, f" {_usd(crossing[k])}", va="center", fontsize=7)
        bx.set_xlim(0, 1.6 * max(crossing.values()) / 1e6)
        bx.set_xlabel("loss passed (USD m)")
    else:
        bx.text(
            0.5,
            0.5,
            "no edge\ncrosses venues",
            ha="center",
            va="center",
            transform=bx.transAxes,
            fontsize=8,
        )
        bx.set_axis_off()
    bx.set_title("Across venues, by channel", fontsize=9)
    _title(fig, "Cascade by venue")
    return fig


def exposure(g: nx.Graph) -> plt.Figure:
    """Who holds what: gross and net position notional (USD) by account type × market
    from the exposure graph (the structure a network drawing of thousands of accounts
    hides).

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> fig = exposure(m.exposure_graph)
        >>> [ax.get_title() for ax in fig.axes]
        ['gross notional (USD)', 'net notional (USD; + long)']
    """
    rows = []
    for u, v, e in g.edges(data=True):
        if e.get("kind") != "position":
            continue
        acct, market = (u, v) if str(v).startswith("market:") else (v, u)
        d = g.nodes[acct]
        who = re.sub(r"(?<!^)(?=[A-Z])", " ", str(d.get("agent", d.get("kind", "account"))))
        rows.append(
            {"type": who.lower(), "market": str(market).split(":", 1)[1], "net": e["notional"]}
        )
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    if not rows:
        for a in axes:
            a.set_axis_off()
        axes[0].text(0.5, 0.5, "no positions", ha="center", transform=axes[0].transAxes)
        return fig
    d = pd.DataFrame(rows)
    d["gross"] = d["net"].abs()
    gross = d.pivot_table(index="type", columns="market", values="gross", aggfunc="sum")
    net = d.pivot_table(index="type", columns="market", values="net", aggfunc="sum")
    gross, net = gross.fillna(0.0), net.reindex_like(gross).fillna(0.0)
    order = gross.sum(axis=1).sort_values(ascending=False).index
    gross, net = gross.loc[order], net.loc[order]
    fmt = gross.map(lambda v: _usd(v).lstrip("$"))
    sns.heatmap(gross, annot=fmt, fmt="", cmap="rocket_r", ax=axes[0], cbar=False)
    lim = float(np.abs(net.to_numpy()).max()) or 1.0
    sns.heatmap(
        net,
        annot=net.map(lambda v: ("−" if v < 0 else "+") + _usd(abs(v)).lstrip("$")),
        fmt="",
        cmap="vlag",
        vmin=-lim,
        vmax=lim,
        ax=axes[1],
        cbar=False,
    )
    axes[0].set_title("gross notional (USD)")
    axes[1].set_title("net notional (USD; + long)")
    axes[0].set_ylabel("account type")
    axes[1].set_ylabel("")
    for a in axes:
        a.set_xlabel("market")
        a.tick_params(axis="y", rotation=0)
    fig.suptitle("Exposure by account type and market (end of run)")
    return fig


# ----------------------------------------------------------------- a sweep

LABELS = {
    "liquidations": "liquidations (waterfall entries)",
    "accounts_liquidated": "accounts liquidated",
    "liquidated_notional": "liquidated notional (USD)",
    "cascade_largest_size": "largest cascade (accounts)",
    "cascade_mean_branching": "branching ratio",
    "bankruptcies": "bankrupt accounts",
    "adl_events": "ADL events",
    "insurance_depletion": "insurance fund drawdown (USD)",
    "bad_debt": "bad debt (USD)",
    "margin_mode": "margin mode",
    "mark_rule": "mark-price rule",
    "leverage_cap": "leverage cap (×)",
    "mmr_scale": "maintenance-margin scale (×)",
    "correlation": "index correlation",
    "liquidation.venue": "liquidation waterfall (venue)",
    "agents.market_makers.replenish_rate": "makers' replenishment rate",
    "agents.leveraged.count": "leveraged traders",
    "agents.leveraged.portfolio": "portfolio construction",
    "liquidation.fee": "liquidation fee (fraction)",
}
"""Axis labels with units for sweep parameters and summary columns."""
COUNT_METRICS = {
    "liquidations",
    "accounts_liquidated",
    "cascade_largest_size",
    "bankruptcies",
    "adl_events",
}
"""Summary columns that count things (whole-number ticks)."""


def label(col: str) -> str:
    """A human axis label (with its unit) for a sweep parameter or summary column.

    Examples:
        >>> label("param.shocks.0.size"), label("liquidated_notional")
        ('shock 1 size (fraction)', 'liquidated notional (USD)')
    """
    name = col.removeprefix("param.")
    if name in LABELS:
        return LABELS[name]
    m = re.fullmatch(r"shocks\.(\d+)\.(size|step|duration)", name)
    if m:
        unit = {"size": "fraction", "step": "minute", "duration": "minutes"}[m.group(2)]
        return f"shock {int(m.group(1)) + 1} {m.group(2)} ({unit})"
    return name.replace("_", " ").replace(".", " · ")


def _usd_metric(metric: str) -> bool:
    return "(USD)" in label(metric)


def _seeds(ok: pd.DataFrame, by: list[str]) -> int:
    """The smallest number of finished runs behind any point of the plot."""
    return int(ok.groupby(by).size().min()) if len(ok) else 0


def _count(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless n is 1 ("1 run", "3 runs")."""
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _interval(n: int):
    """A 95% bootstrap interval over seeds only when there are enough seeds for one."""
    return ("ci", 95) if n >= 3 else None


def _interval_note(n: int) -> str:
    """What a point is: the mean of at least ``n`` runs (seeds, when nothing else varies
    within the point), with a 95% interval only from 3 runs on."""
    if n >= 3:
        return f"mean of {_count(n, 'run')} per point, 95% CI"
    return f"mean of {_count(n, 'run')} per point (too few for an interval)"


def heatmap(table: pd.DataFrame, x: str, y: str, metric: str) -> plt.Figure:
    """Mean of ``metric`` over seeds on a grid of two parameters (seed count shown).

    Examples:
        >>> table = pd.DataFrame({
        ...     "param.leverage_cap": [3.0, 3.0, 10.0, 10.0], "param.mmr_scale": [1.0, 2.0, 1.0, 2.0],
        ...     "seed": 1, "liquidations": [0, 1, 40, 30], "status": "ok"})
        >>> ax = heatmap(table, "param.leverage_cap", "param.mmr_scale", "liquidations").axes[0]
        >>> ax.get_xlabel(), ax.get_ylabel()
        ('leverage cap (×)', 'maintenance-margin scale (×)')
    """
    ok = table[table["status"] == "ok"]
    mean = ok.pivot_table(index=y, columns=x, values=metric, aggfunc="mean")
    n = _seeds(ok, [x, y])
    annot = mean.map(lambda v: _usd(v).lstrip("$") if abs(v) >= 1e3 else f"{v:.3g}")
    width = max(5.5, 2.2 + 1.1 * len(mean.columns))
    fig, ax = plt.subplots(figsize=(width, 1.6 + 0.55 * len(mean.index)))
    sns.heatmap(
        mean,
        annot=annot,
        fmt="",
        cmap="rocket_r",
        ax=ax,
        cbar_kws={"label": label(metric), "format": USD if _usd_metric(metric) else None},
    )
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    _title(ax, f"{label(metric)}: mean of {_count(n, 'run')} per cell", fontsize=10)
    ax.invert_yaxis()
    return fig


def _label_axes(ax, x: str, metric: str, hue: str | None) -> None:
    """Axis labels with units, USD ticks for money, the legend titled by ``hue``."""
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(metric))
    if _usd_metric(metric):
        ax.yaxis.set_major_formatter(USD)
    elif metric in COUNT_METRICS:
        _counts(ax.yaxis)
    if hue:
        ax.legend(title=label(hue), frameon=False)


def lines(table: pd.DataFrame, x: str, metric: str, *, hue: str | None = None) -> plt.Figure:
    """``metric`` against a numeric parameter: mean over seeds, with a 95% bootstrap
    band when there are at least 3 seeds per point (the title says how many).

    Examples:
        >>> table = pd.DataFrame({
        ...     "param.leverage_cap": [3.0, 3.0, 10.0, 10.0], "param.mmr_scale": [1.0, 2.0, 1.0, 2.0],
        ...     "seed": 1, "liquidations": [0, 1, 40, 30], "status": "ok"})
        >>> ax = lines(table, "param.leverage_cap", "liquidations", hue="param.mmr_scale").axes[0]
        >>> ax.get_ylabel()
        'liquidations (waterfall entries)'
    """
    ok = table[table["status"] == "ok"]
    n = _seeds(ok, [x] + ([hue] if hue else []))
    fig, ax = plt.subplots(figsize=(6, 3.4))
    sns.lineplot(data=ok, x=x, y=metric, hue=hue, marker="o", errorbar=_interval(n), ax=ax)
    _label_axes(ax, x, metric, hue)
    _title(ax, f"{label(metric)}: {_interval_note(n)}", fontsize=10)
    return fig


def points(table: pd.DataFrame, x: str, metric: str, *, hue: str | None = None) -> plt.Figure:
    """``metric`` by the levels of a categorical parameter (e.g. margin mode): mean over
    seeds with a 95% bootstrap interval (at least 3 seeds per level), and every seed.

    Examples:
        >>> table = pd.DataFrame({
        ...     "param.leverage_cap": [3.0, 3.0, 10.0, 10.0], "param.mmr_scale": [1.0, 2.0, 1.0, 2.0],
        ...     "seed": 1, "liquidations": [0, 1, 40, 30], "status": "ok"})
        >>> points(table, "param.leverage_cap", "liquidations").axes[0].get_xlabel()
        'leverage cap (×)'
    """
    ok = table[table["status"] == "ok"]
    n = _seeds(ok, [x] + ([hue] if hue else []))
    if hue:  # a few levels of a number are categories here: distinct colours, not a ramp
        ok = ok.assign(**{hue: ok[hue].map(lambda v: f"{v:g}" if isinstance(v, float) else str(v))})
    fig, ax = plt.subplots(figsize=(max(4.5, 1.3 * ok[x].nunique() + 2), 3.4))
    sns.stripplot(
        data=ok, x=x, y=metric, hue=hue, dodge=bool(hue), alpha=0.35, size=3, ax=ax, legend=False
    )
    sns.pointplot(
        data=ok,
        x=x,
        y=metric,
        hue=hue,
        dodge=0.4 if hue else False,
        errorbar=_interval(n),
        linestyle="none",
        markers="D",
        capsize=0.1,
        ax=ax,
    )
    _label_axes(ax, x, metric, hue)
    _title(ax, f"{label(metric)}: {_interval_note(n)}; dots: single runs", fontsize=10)
    return fig


def ccdf(
    table: pd.DataFrame, metric: str = "cascade_largest_size", *, hue: str | None = None
) -> plt.Figure:
    """Complementary CDF of cascade sizes across runs, log-log.

    Examples:
        >>> table = pd.DataFrame({"cascade_largest_size": [1, 3, 10, 2], "status": "ok"})
        >>> ax = ccdf(table).axes[0]
        >>> ax.get_ylabel(), [t.get_text() for t in ax.get_legend().get_texts()]
        ('P(size ≥ x)', ['all runs (4 runs)'])
    """
    from matplotlib.ticker import LogLocator, NullFormatter

    ok = table[table["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    groups = ok.groupby(hue) if hue else [("all runs", ok)]
    for key, grp in groups:
        x = np.sort(grp[metric].to_numpy(dtype=float))
        x = x[x > 0]
        if not len(x):
            continue
        p = 1.0 - np.arange(len(x)) / len(x)
        ax.step(x, p, where="post", label=f"{key} ({_count(len(grp), 'run')})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, numticks=6))
    ax.xaxis.set_minor_formatter(NullFormatter())
    # a CCDF over a few dozen runs spans about one decade: ticks at 1, 2, 5 of each
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0), numticks=12))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel(label(metric))
    ax.set_ylabel("P(size ≥ x)")
    ax.legend(frameon=False, title=label(hue) if hue else None, fontsize=8)
    ax.set_title("Cascade-size CCDF across runs", fontsize=10)
    return fig


def cross_vs_isolated(table: pd.DataFrame, shock: str) -> plt.Figure:
    """Liquidations and liquidated notional by margin mode across shock sizes.

    Examples:
        >>> table = pd.DataFrame({
        ...     "param.margin_mode": ["cross", "isolated"] * 2, "param.shocks.0.size": [-0.1, -0.1, -0.3, -0.3],
        ...     "seed": 1, "liquidations": [1, 2, 5, 9], "liquidated_notional": [1e5, 2e5, 5e5, 9e5],
        ...     "status": "ok"})
        >>> fig = cross_vs_isolated(table, "param.shocks.0.size")
        >>> [ax.get_ylabel() for ax in fig.axes]
        ['liquidations (waterfall entries)', 'liquidated notional (USD)']
    """
    ok = table[table["status"] == "ok"].copy()
    ok["shock size (%)"] = -100 * ok[shock]
    n = _seeds(ok, ["param.margin_mode", shock])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric in zip(axes, ("liquidations", "liquidated_notional"), strict=True):
        sns.lineplot(
            data=ok,
            x="shock size (%)",
            y=metric,
            hue="param.margin_mode",
            marker="o",
            errorbar=_interval(n),
            ax=ax,
        )
        ax.set_ylabel(label(metric))
        if _usd_metric(metric):
            ax.yaxis.set_major_formatter(USD)
        ax.legend(title="margin mode", frameon=False)
    _title(fig, f"Margin modes across shock sizes ({_interval_note(n)})")
    return fig


def sobol(indices: pd.DataFrame) -> plt.Figure:
    """First-order (S1) and total (ST) Sobol indices with 95% confidence intervals,
    one panel per output.

    Examples:
        >>> indices = pd.DataFrame({
        ...     "output": "liquidations", "parameter": ["param.leverage_cap", "param.mmr_scale"],
        ...     "S1": [0.6, 0.2], "S1_conf": 0.1, "ST": [0.7, 0.3], "ST_conf": 0.1})
        >>> [t.get_text() for t in sobol(indices).axes[0].get_yticklabels()]
        ['leverage cap (×)', 'maintenance-margin scale (×)']
    """
    outputs = list(indices["output"].unique())
    fig, axes = plt.subplots(1, len(outputs), figsize=(5.2 * len(outputs), 3.4), squeeze=False)
    for ax, out in zip(axes[0], outputs, strict=True):
        d = indices[indices["output"] == out]
        y = np.arange(len(d))
        ax.barh(y - 0.2, d["S1"], 0.4, xerr=d["S1_conf"], label="first order S1", color="C0")
        ax.barh(y + 0.2, d["ST"], 0.4, xerr=d["ST_conf"], label="total ST", color="C1")
        ax.set_yticks(y, [label(p) for p in d["parameter"]])
        ax.set_xlabel("Sobol index")
        ax.set_title(label(out), fontsize=10)
        ax.axvline(0, color="0.3", lw=0.8)
    axes[0, 0].legend(frameon=False)
    fig.suptitle("Global sensitivity (Saltelli/Sobol, SALib)")
    return fig
