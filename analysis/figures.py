"""Publication figures (seaborn): one theme, a colour-blind-safe palette, labelled axes
with units, each saved as PNG and PDF.

Run figures take the frames and graphs a run writes; sweep figures take
``summary.parquet`` (and the design in ``experiment.toml``).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.ticker import FuncFormatter

from ..model.contagion import liquidation_tree
from ..model.measures import branching_ratio

PALETTE = "colorblind"
KIND_COLORS = dict(
    zip(["partial", "full", "backstop", "adl"], sns.color_palette(PALETTE, 4), strict=True)
)


def theme() -> None:
    """The project's one plotting theme."""
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
    """Save ``fig`` as ``out/name.png`` and ``out/name.pdf``; close it; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.png", out / f"{name}.pdf"]
    fig.savefig(paths[0], metadata={"Software": None})
    fig.savefig(paths[1], metadata={"Creator": None, "Producer": None, "CreationDate": None})
    plt.close(fig)
    return paths


def _usd(x: float, _pos=None) -> str:
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"${x / div:.3g}{unit}"
    return f"${x:.3g}"


USD = FuncFormatter(_usd)


def _price(x: float, _pos=None) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.4g}"


def _markets(df: pd.DataFrame) -> list[str]:
    return [c[: -len("_mark")] for c in df.columns if c.endswith("_mark")]


def _minutes(df: pd.DataFrame) -> np.ndarray:
    return df["t"].to_numpy()


# ------------------------------------------------------------------- a run


def prices(df: pd.DataFrame, events: pd.DataFrame) -> plt.Figure:
    """Index, mark and mid per market, with liquidations marked on the mark."""
    names = _markets(df)
    fig, axes = plt.subplots(
        len(names), 1, figsize=(8, 2.1 * len(names)), sharex=True, squeeze=False
    )
    liq = events[events["kind"].isin(["partial", "full", "backstop"])]
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
    axes[0, 0].legend(loc="best", ncols=4, frameon=False, fontsize=8)
    axes[-1, 0].set_xlabel("time (minutes)")
    fig.suptitle("Prices and forced liquidations")
    return fig


def liquidations(df: pd.DataFrame, *, bin_minutes: int = 5) -> plt.Figure:
    """Liquidated notional over time, stacked by waterfall stage."""
    cols = {
        "partial": "liq_notional_partial",
        "full": "liq_notional_full",
        "backstop": "liq_notional_backstop",
        "adl": "liq_notional_adl",
    }
    b = df.groupby((df["t"] - 1) // bin_minutes)[list(cols.values())].sum()
    x = b.index.to_numpy() * bin_minutes
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.stackplot(
        x,
        *[b[c].to_numpy() for c in cols.values()],
        labels=list(cols),
        colors=[KIND_COLORS[k] for k in cols],
        alpha=0.9,
    )
    ax.yaxis.set_major_formatter(USD)
    ax.set_xlabel("time (minutes)")
    ax.set_ylabel(f"liquidated notional per {bin_minutes} min (USD)")
    ax.legend(frameon=False, ncols=4, loc="upper left")
    ax.set_title("Liquidated notional by stage")
    return fig


def pools(df: pd.DataFrame) -> plt.Figure:
    """Insurance fund and backstop-vault NAV."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    t = _minutes(df)
    axes[0].plot(t, df["insurance_fund"], color="C0")
    axes[0].set_title("Insurance fund")
    axes[1].plot(t, df["vault_nav"], color="C2")
    axes[1].set_title("Backstop vault NAV")
    for ax in axes:
        ax.set_xlabel("time (minutes)")
        ax.set_ylabel("USD")
        ax.yaxis.set_major_formatter(USD)
    return fig


def depth_heatmap(df: pd.DataFrame, *, bands_bps: list[float] | None = None) -> plt.Figure:
    """Resting depth around the mid over time, one heatmap per market (USD per band)."""
    from ..model.model import DEPTH_BANDS_BPS

    edges = bands_bps or DEPTH_BANDS_BPS
    names = _markets(df)
    fig, axes = plt.subplots(
        len(names), 1, figsize=(8, 1.9 * len(names)), sharex=True, squeeze=False
    )
    labels = [f"{(a + b) / 2:+.0f}" for a, b in itertools.pairwise(edges)]
    for name, ax in zip(names, axes[:, 0], strict=True):
        cols = [f"{name}_depth_b{k}" for k in range(len(edges) - 1)]
        if cols[0] not in df:
            continue
        mat = df[cols].to_numpy().T
        im = ax.imshow(
            np.log10(1 + mat),
            aspect="auto",
            origin="lower",
            cmap="mako",
            extent=(df["t"].iloc[0] - 0.5, df["t"].iloc[-1] + 0.5, -0.5, len(cols) - 0.5),
            interpolation="nearest",
        )
        ax.set_yticks(range(len(cols))[::2], labels[::2])
        ax.set_ylabel(f"{name}\nbps from mid")
        cb = fig.colorbar(im, ax=ax, pad=0.01)
        cb.set_label("log10(1 + USD)")
    axes[-1, 0].set_xlabel("time (minutes)")
    fig.suptitle("Order-book depth around the mid")
    return fig


def margin_ratio(df: pd.DataFrame) -> plt.Figure:
    """Margin-ratio distribution over time (accounts with positions): median and bands."""
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
    ax.set_ylabel("margin ratio equity / MM")
    ax.legend(frameon=False, ncols=4, loc="upper right")
    ax.set_title("Margin-ratio distribution")
    return fig


def leverage(df: pd.DataFrame) -> plt.Figure:
    """Leverage monitor: aggregate leverage, open interest, accounts near liquidation."""
    fig, axes = plt.subplots(1, 3, figsize=(9, 2.6))
    t = _minutes(df)
    axes[0].plot(t, df["aggregate_leverage"])
    axes[0].set_ylabel("aggregate leverage (×)")
    axes[1].plot(t, df["open_interest"], color="C1")
    axes[1].set_ylabel("open interest (USD)")
    axes[1].yaxis.set_major_formatter(USD)
    axes[2].plot(t, df["near_liquidation"], color="C3", label="within 10% of MM")
    axes[2].set_ylabel("accounts")
    axes[2].legend(frameon=False)
    for ax in axes:
        ax.set_xlabel("time (minutes)")
    fig.suptitle("Leverage monitor")
    return fig


def cascade(g: nx.DiGraph, *, max_nodes: int = 600) -> plt.Figure:
    """The cascade drawn in layers by generation; node size by loss."""
    parents, generation = liquidation_tree(g)
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if not generation:
        ax.text(0.5, 0.5, "no liquidations", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    heads = sorted(generation, key=lambda h: -g.nodes[h]["loss"])[:max_nodes]
    keep = set(heads)
    h = nx.DiGraph()
    shocks = [n for n, d in g.nodes(data=True) if d["kind"] == "shock"]
    for s in shocks:
        h.add_node(s, layer=0, loss=0.0, kind="shock")
    for n in heads:
        h.add_node(n, layer=generation[n] + 1, loss=g.nodes[n]["loss"], kind="liquidation")
        for p in parents[n]:
            if p in keep:
                h.add_edge(p, n)
        for c in g.predecessors(n):
            if c in shocks:
                h.add_edge(c, n)
    pos = nx.multipartite_layout(h, subset_key="layer", align="horizontal", scale=1.0)
    pos = {n: (x, -y) for n, (x, y) in pos.items()}
    pos = {n: (x, -float(h.nodes[n]["layer"])) for n, (x, _y) in pos.items()}
    loss = np.array([h.nodes[n]["loss"] for n in h.nodes])
    size = 12 + 300 * np.sqrt(loss / loss.max()) if loss.max() > 0 else np.full(len(loss), 20)
    colors = ["C3" if h.nodes[n]["kind"] == "shock" else "C0" for n in h.nodes]
    nx.draw_networkx_edges(h, pos, ax=ax, alpha=0.25, width=0.6, arrows=False)
    nx.draw_networkx_nodes(
        h, pos, ax=ax, node_size=size, node_color=colors, alpha=0.85, linewidths=0
    )
    layers = sorted({d["layer"] for _, d in h.nodes(data=True)})
    ax.set_yticks(
        [-lay for lay in layers], ["shock" if lay == 0 else f"gen {lay - 1}" for lay in layers]
    )
    ax.set_xticks([])
    ax.spines[["bottom", "left"]].set_visible(False)
    ax.set_title(
        f"Cascade by generation ({len(generation)} liquidations; node size ∝ √loss; "
        f"branching ratio {branching_ratio(parents):.2f})"
    )
    return fig


def exposure(g: nx.Graph) -> plt.Figure:
    """The exposure network: markets on a circle, each account placed at the
    exposure-weighted mean of its markets (with jitter); node size by gross exposure."""
    markets = [n for n, d in g.nodes(data=True) if d.get("kind") == "market"]
    angle = {m: 2 * np.pi * k / max(len(markets), 1) for k, m in enumerate(markets)}
    pos = {m: np.array([np.cos(a), np.sin(a)]) for m, a in angle.items()}
    rng = np.random.default_rng(0)
    gross = {}
    for n, d in g.nodes(data=True):
        if d.get("kind") == "market":
            continue
        w = [(pos[v], e["weight"]) for v, e in g[n].items() if v in pos]
        tot = sum(x for _, x in w)
        gross[n] = tot
        centre = sum(p * x for p, x in w) / tot if tot > 0 else np.zeros(2)
        pos[n] = 0.75 * centre + rng.normal(0, 0.06, 2)
    fig, ax = plt.subplots(figsize=(6.5, 6.5))
    types = sorted({d.get("agent", d.get("kind")) for n, d in g.nodes(data=True) if n in gross})
    col = dict(zip(types, sns.color_palette(PALETTE, len(types)), strict=False))
    edges = [(u, v) for u, v, e in g.edges(data=True) if e.get("kind") == "position"]
    nx.draw_networkx_edges(g, pos, edgelist=edges, ax=ax, alpha=0.04, width=0.5)
    gmax = max(gross.values(), default=1.0) or 1.0
    for t in types:
        nodes = [n for n in gross if g.nodes[n].get("agent", g.nodes[n].get("kind")) == t]
        nx.draw_networkx_nodes(
            g,
            pos,
            nodelist=nodes,
            ax=ax,
            node_size=[4 + 200 * np.sqrt(gross[n] / gmax) for n in nodes],
            node_color=[col[t]],
            label=t,
            alpha=0.8,
            linewidths=0,
        )
    nx.draw_networkx_nodes(
        g, pos, nodelist=markets, ax=ax, node_size=500, node_color="0.2", node_shape="s"
    )
    nx.draw_networkx_labels(
        g, pos, labels={m: m.split(":")[1] for m in markets}, font_color="white", font_size=8, ax=ax
    )
    ax.legend(frameon=False, loc="lower left", fontsize=7, markerscale=0.5)
    ax.set_axis_off()
    ax.set_title("Exposure network (accounts × markets; size ∝ √gross exposure)")
    return fig


# ----------------------------------------------------------------- a sweep


def _label(col: str) -> str:
    return col.removeprefix("param.")


def heatmap(table: pd.DataFrame, x: str, y: str, metric: str) -> plt.Figure:
    """Mean of ``metric`` over seeds on a grid of two parameters (seed count shown)."""
    ok = table[table["status"] == "ok"]
    mean = ok.pivot_table(index=y, columns=x, values=metric, aggfunc="mean")
    count = ok.pivot_table(index=y, columns=x, values=metric, aggfunc="count")
    annot = mean.map(lambda v: _usd(v).lstrip("$") if abs(v) >= 1e3 else f"{v:.3g}")
    fig, ax = plt.subplots(figsize=(1.3 + 1.1 * len(mean.columns), 1.2 + 0.6 * len(mean.index)))
    sns.heatmap(mean, annot=annot, fmt="", cmap="rocket_r", ax=ax, cbar_kws={"label": metric})
    ax.set_xlabel(_label(x))
    ax.set_ylabel(_label(y))
    n = int(np.nanmin(count.to_numpy())) if count.notna().any().any() else 0
    ax.set_title(f"{metric} (mean over {n} seeds per cell)")
    ax.invert_yaxis()
    return fig


def lines(table: pd.DataFrame, x: str, metric: str, *, hue: str | None = None) -> plt.Figure:
    """``metric`` against a parameter, mean with a 95% confidence band over seeds."""
    ok = table[table["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(6, 3.4))
    sns.lineplot(data=ok, x=x, y=metric, hue=hue, marker="o", errorbar=("ci", 95), ax=ax)
    ax.set_xlabel(_label(x))
    ax.set_ylabel(metric)
    if "notional" in metric or "insurance" in metric:
        ax.yaxis.set_major_formatter(USD)
    if hue:
        ax.legend(title=_label(hue), frameon=False)
    ax.set_title(f"{metric} vs {_label(x)} (95% CI over seeds)")
    return fig


def ccdf(
    table: pd.DataFrame, metric: str = "cascade_largest_size", *, hue: str | None = None
) -> plt.Figure:
    """Complementary CDF of cascade sizes across runs, log-log."""
    ok = table[table["status"] == "ok"]
    fig, ax = plt.subplots(figsize=(5.5, 4))
    groups = ok.groupby(hue) if hue else [("all runs", ok)]
    for key, grp in groups:
        x = np.sort(grp[metric].to_numpy(dtype=float))
        x = x[x > 0]
        if not len(x):
            continue
        p = 1.0 - np.arange(len(x)) / len(x)
        ax.step(x, p, where="post", label=str(key))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(f"{metric} (accounts)")
    ax.set_ylabel("P(size ≥ x)")
    ax.legend(frameon=False, title=_label(hue) if hue else None)
    ax.set_title("Cascade-size CCDF")
    return fig


def cross_vs_isolated(table: pd.DataFrame, shock: str) -> plt.Figure:
    """Liquidations and system losses by margin mode across shock sizes."""
    ok = table[table["status"] == "ok"].copy()
    ok["shock size (%)"] = -100 * ok[shock]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for ax, metric in zip(axes, ("liquidations", "liquidated_notional"), strict=True):
        sns.lineplot(
            data=ok,
            x="shock size (%)",
            y=metric,
            hue="param.margin_mode",
            marker="o",
            errorbar=("ci", 95),
            ax=ax,
        )
        ax.set_ylabel(metric.replace("_", " ") + (" (USD)" if "notional" in metric else " (count)"))
        if "notional" in metric:
            ax.yaxis.set_major_formatter(USD)
        ax.legend(title="margin mode", frameon=False)
    fig.suptitle("Cross vs isolated vs portfolio margin across shock sizes")
    return fig


def sobol(indices: pd.DataFrame) -> plt.Figure:
    """First-order (S1) and total (ST) Sobol indices with 95% confidence intervals,
    one panel per output."""
    outputs = list(indices["output"].unique())
    fig, axes = plt.subplots(1, len(outputs), figsize=(4.5 * len(outputs), 3.4), squeeze=False)
    for ax, out in zip(axes[0], outputs, strict=True):
        d = indices[indices["output"] == out]
        y = np.arange(len(d))
        ax.barh(y - 0.2, d["S1"], 0.4, xerr=d["S1_conf"], label="first order S1", color="C0")
        ax.barh(y + 0.2, d["ST"], 0.4, xerr=d["ST_conf"], label="total ST", color="C1")
        ax.set_yticks(y, [_label(p) for p in d["parameter"]])
        ax.set_xlabel("Sobol index")
        ax.set_title(out)
        ax.axvline(0, color="0.3", lw=0.8)
    axes[0, 0].legend(frameon=False)
    fig.suptitle("Global sensitivity (Saltelli/Sobol, SALib)")
    return fig
