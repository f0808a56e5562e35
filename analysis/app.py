"""The interactive dashboard: a Mesa SolaraViz page (``crossmargin dashboard``).

Sidebar: Mesa's controller (Step, Play, Reset) and the levers of the scenario (margin
mode, leverage cap, MMR scale, shock size and time, mark rule, collateral price
source, makers' replenishment rate, number of traders, seed). Main view: prices with
liquidations, the live order book of a chosen market, the margin-ratio histogram,
insurance fund and vault NAV, the cascade graph as it grows, and a leverage monitor.

The scenario comes from ``$CROSSMARGIN_SCENARIO`` (set by ``crossmargin dashboard
--scenario FILE``), else ``experiments/scenarios/dashboard.toml``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import solara
from matplotlib.ticker import FuncFormatter, NullFormatter
from mesa.visualization import SolaraViz

from ..model import CrossMarginModel, Scenario
from . import figures as fg

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "experiments/scenarios/dashboard.toml"


def base_scenario() -> Scenario:
    """The scenario the dashboard starts from."""
    return Scenario.from_toml(os.environ.get("CROSSMARGIN_SCENARIO", DEFAULT_SCENARIO))


class DashboardModel(CrossMarginModel):
    """The model with keyword parameters only, as Mesa's ModelController rebuilds it.

    Mesa's visualization expects ``model.scenario`` to be its own Scenario object, so
    here it is; the validated scenario stays available as ``config``.
    """

    def __init__(self, scenario: Any = None, *, rng: Any = None, **levers: Any) -> None:
        if not isinstance(scenario, Scenario):
            scenario = base_scenario()
        levers = {k: v for k, v in levers.items() if v is not None}
        if "shocks__0__step" in levers:
            levers["shocks__0__step"] = int(min(levers["shocks__0__step"], scenario.steps))
        super().__init__(scenario, rng=rng, **levers)

    @property
    def scenario(self):  # type: ignore[override]
        return self._mesa_scenario

    @scenario.setter
    def scenario(self, value) -> None:
        self._mesa_scenario = value


# --------------------------------------------------------------- components


def _frame(model: CrossMarginModel):
    return model.model_frame() if model.datacollector.model_vars.get("t") else None


def _legend(ax, **kw) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=7, **kw)


def _small(figsize=(5.2, 2.6)):
    fg.theme()
    # Live panels redraw every step: a fixed layout is much cheaper than constrained.
    fig, ax = plt.subplots(figsize=figsize, dpi=64, layout="none")
    fig.subplots_adjust(left=0.15, right=0.97, bottom=0.2, top=0.88)
    return fig, ax


def _live_figure(model: CrossMarginModel, build):
    """A figure built once per model and updated in place on every step: creating axes
    and ticks anew each step costs more than drawing them."""
    return solara.use_memo(build, dependencies=[id(model)])


def _show(fig, model: CrossMarginModel) -> None:
    _autoscale(fig)
    solara.FigureMatplotlib(fig, format="png", dependencies=[id(model), model.t])


def _autoscale(fig) -> None:
    for ax in fig.axes:
        ax.relim()
        ax.autoscale_view()


def PricePanel(model: CrossMarginModel):
    """Mark and index of every market (rebased to 100) with liquidations marked."""
    names = model.config.market_names

    def build():
        fig, ax = _small((6.2, 2.9))
        lines = {}
        for name in names:
            (mark,) = ax.plot([], [], lw=1.2, label=f"{name} mark")
            c = mark.get_color()
            (index,) = ax.plot([], [], lw=0.8, ls=":", color=c)
            (liq,) = ax.plot([], [], "v", ms=4, color=c, zorder=3)
            lines[name] = (mark, index, liq)
        ax.set_xlabel("time (minutes)")
        ax.set_ylabel("price (start = 100)")
        ax.set_title("Prices: mark (solid), index (dotted), liquidations ▼")
        _legend(ax, ncols=2)
        return fig, lines

    fig, lines = _live_figure(model, build)
    df = _frame(model)
    if df is not None:
        ev = model.events
        liq = ev[ev["kind"].isin(["partial", "full", "backstop"])]
        by_t = df.set_index("t")
        for k, name in enumerate(names):
            base = df[f"{name}_index"].iloc[0]
            mark, index, dots = lines[name]
            mark.set_data(df["t"], 100 * df[f"{name}_mark"] / base)
            index.set_data(df["t"], 100 * df[f"{name}_index"] / base)
            steps = liq.loc[liq["market"] == k, "step"].unique()
            steps = steps[np.isin(steps, by_t.index)]
            dots.set_data(steps, 100 * by_t.loc[steps, f"{name}_mark"] / base)
    _show(fig, model)


def OrderBookPanel(model: CrossMarginModel):
    """The live bid/ask ladder of a chosen market (top 12 levels)."""
    names = model.config.market_names
    market, set_market = solara.use_state(names[0])
    if market not in names:
        market = names[0]
    m = names.index(market)
    ex = model.exchange
    spec = ex.markets[m]
    bids, asks = ex.books[m].top(10)
    fig, ax = _small((5.2, 3.2))
    fig.subplots_adjust(left=0.27)  # room for the price labels
    # A ladder: one row per price level, asks above bids, best prices in the middle.
    rows = [(p, q, "C3") for p, q in reversed(asks)] + [(p, q, "C2") for p, q in bids]
    if rows:
        y = np.arange(len(rows))[::-1]
        ax.barh(y, [q * spec.lot for _, q, _ in rows], color=[c for *_, c in rows], height=0.8)
        ax.set_yticks(
            y, [f"{p * spec.tick:,.{_decimals(spec.tick)}f}" for p, _, _ in rows], fontsize=7
        )
    ax.set_xlabel(f"resting size ({market})")
    ax.set_ylabel("price (USD)")
    spread = ex.books[m].spread
    title = f"spread {spread * spec.tick:.4g} USD" if spread else "one side empty"
    ax.set_title(f"Order book {market} · {title}")
    with solara.Column():
        solara.ToggleButtonsSingle(value=market, values=names, on_value=set_market)
        solara.FigureMatplotlib(fig, format="png")
    plt.close(fig)


def _decimals(tick: float) -> int:
    return max(0, -int(np.floor(np.log10(tick))))


def MarginPanel(model: CrossMarginModel):
    """Histogram of margin ratios (equity / MM) of accounts with positions."""
    val = model.val
    ratio = val.ratio[(val.gross > 0) & np.isfinite(val.ratio)]
    fig, ax = _small()
    bins = np.logspace(-1, 4, 41)
    counts, _ = np.histogram(np.clip(ratio, 0.1, 1e4), bins=bins)
    ax.stairs(counts, bins, fill=True, color="C0")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _p: f"{x:g}"))  # no mathtext
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.axvline(1.0, color="C3", ls="--", lw=1, label="maintenance margin")
    ax.set_xlabel("margin ratio equity / MM")
    ax.set_ylabel("accounts")
    ax.set_title(f"Margin ratios ({int((ratio < 1.1).sum())} accounts within 10% of MM)")
    _legend(ax)
    solara.FigureMatplotlib(fig, format="png")
    plt.close(fig)


def PoolPanel(model: CrossMarginModel):
    """Insurance fund and backstop-vault NAV over time."""

    def build():
        fig, ax = _small()
        fund = ax.plot([], [], label="insurance fund")[0]
        vault = ax.plot([], [], label="vault NAV")[0]
        ax.yaxis.set_major_formatter(fg.USD)
        ax.set_xlabel("time (minutes)")
        ax.set_ylabel("USD")
        ax.set_title("Insurance fund and backstop vault")
        _legend(ax)
        return fig, (fund, vault)

    fig, (fund, vault) = _live_figure(model, build)
    df = _frame(model)
    if df is not None:
        fund.set_data(df["t"], df["insurance_fund"])
        vault.set_data(df["t"], df["vault_nav"])
    _show(fig, model)


def CascadePanel(model: CrossMarginModel):
    """The cascade graph as it grows (liquidations in layers by generation)."""
    n_events = len(model.exchange.events)

    def draw():
        fig = fg.cascade(model.cascade_graph, max_nodes=150)
        fig.set_size_inches(6.2, 3.0)
        fig.set_dpi(64)
        return fig

    # Redrawn only when new events arrived.
    fig = solara.use_memo(draw, dependencies=[id(model), n_events])
    solara.FigureMatplotlib(fig, format="png", dependencies=[id(model), n_events])


def LeveragePanel(model: CrossMarginModel):
    """Aggregate leverage, open interest and accounts near liquidation."""

    def build():
        fg.theme()
        fig, axes = plt.subplots(1, 2, figsize=(6.2, 2.4), dpi=64, layout="none")
        fig.subplots_adjust(left=0.1, right=0.97, bottom=0.22, top=0.84, wspace=0.95)
        lev = axes[0].plot([], [], color="C0")[0]
        ax2 = axes[0].twinx()
        oi = ax2.plot([], [], color="C2", lw=0.8)[0]
        ax2.yaxis.set_major_formatter(fg.USD)
        ax2.set_ylabel("open interest (USD)")
        near = axes[1].plot([], [], color="C3", label="near liquidation")[0]
        under = axes[1].plot([], [], color="C1", label="under MM")[0]
        axes[0].set_ylabel("aggregate leverage (×)")
        axes[1].set_ylabel("accounts")
        _legend(axes[1])
        for ax in axes:
            ax.set_xlabel("time (minutes)")
        fig.suptitle("Leverage monitor")
        return fig, (lev, oi, near, under)

    fig, (lev, oi, near, under) = _live_figure(model, build)
    df = _frame(model)
    if df is not None:
        lev.set_data(df["t"], df["aggregate_leverage"])
        oi.set_data(df["t"], df["open_interest"])
        near.set_data(df["t"], df["near_liquidation"])
        under.set_data(df["t"], df["under_mm"])
    _show(fig, model)


def StatusPanel(model: CrossMarginModel):
    """Headline numbers of the run so far."""
    ex = model.exchange
    kinds = ex.events.column("kind")
    cfg = model.config
    # Plain HTML (solara.Markdown would pull KaTeX from a CDN).
    solara.HTML(
        tag="div",
        unsafe_innerHTML=(
            f"<b>{cfg.name}</b> · step <b class='xm-step'>{model.t}</b> of {cfg.steps} · "
            f"margin <b>{cfg.margin_mode}</b> · mark <b>{cfg.mark_rule}</b> · "
            f"traders <b class='xm-traders'>{cfg.agents.leveraged.count}</b><br>"
            f"liquidations <b>{kinds.count('liquidation')}</b> · ADL <b>{kinds.count('adl')}</b> · "
            f"insurance fund <b>{ex.fund_equity():,.0f}</b> USD · "
            f"conservation error <b>{ex.conservation_error():.1e}</b> USD"
        ),
    )


def _levers(sc: Scenario) -> dict[str, Any]:
    """Mesa user inputs for the scenario's levers (names use ``__`` for nesting)."""
    coll = sc.collateral.price_source if sc.collateral is not None else None
    levers: dict[str, Any] = {
        "margin_mode": {
            "type": "Select",
            "value": sc.margin_mode,
            "values": ["cross", "isolated", "portfolio"],
            "label": "Margin mode",
        },
        "leverage_cap": {
            "type": "SliderFloat",
            "value": sc.leverage_cap or 50.0,
            "min": 2.0,
            "max": 100.0,
            "step": 1.0,
            "label": "Leverage cap (×)",
        },
        "mmr_scale": {
            "type": "SliderFloat",
            "value": sc.mmr_scale,
            "min": 0.5,
            "max": 1.9,
            "step": 0.1,
            "label": "Maintenance-margin scale",
        },
        "mark_rule": {
            "type": "Select",
            "value": sc.mark_rule,
            "values": ["median", "book_mid", "last_trade", "index"],
            "label": "Mark-price rule",
        },
        "agents__market_makers__replenish_rate": {
            "type": "SliderFloat",
            "value": sc.agents.market_makers.replenish_rate,
            "min": 0.0,
            "max": 1.0,
            "step": 0.05,
            "label": "Makers' replenishment rate",
        },
        "agents__leveraged__count": {
            "type": "SliderInt",
            "value": sc.agents.leveraged.count,
            "min": 20,
            "max": 1000,
            "step": 20,
            "label": "Leveraged traders",
        },
        "rng": {
            "type": "SliderInt",
            "value": sc.seed,
            "min": 0,
            "max": 99,
            "step": 1,
            "label": "Seed",
        },
    }
    if sc.shocks:
        levers["shocks__0__size"] = {
            "type": "SliderFloat",
            "value": sc.shocks[0].size,
            "min": -0.5,
            "max": 0.0,
            "step": 0.01,
            "label": f"Shock size ({sc.shocks[0].kind})",
        }
        levers["shocks__0__step"] = {
            "type": "SliderInt",
            "value": sc.shocks[0].step,
            "min": 1,
            "max": sc.steps,
            "step": 1,
            "label": "Shock time (step)",
        }
    if coll is not None:
        levers["collateral__price_source"] = {
            "type": "Select",
            "value": coll,
            "values": ["book", "index", "pool_nav"],
            "label": "Collateral price source",
        }
    return levers


def make_page():
    """Build the SolaraViz page for the current base scenario."""
    sc = base_scenario()
    levers = _levers(sc)
    model = DashboardModel(rng=sc.seed)
    return SolaraViz(
        model,
        components=[
            StatusPanel,
            PricePanel,
            OrderBookPanel,
            MarginPanel,
            PoolPanel,
            LeveragePanel,
            CascadePanel,
        ],
        model_params=levers,
        name="crossmargin: liquidation contagion",
        play_interval=150,
    )


page = make_page()
