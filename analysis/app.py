"""The interactive dashboard (``crossmargin dashboard``): a Solara page, one model per
browser session.

Every visitor's page builds its own model when it opens (nothing is shared at module
level: two tabs never step each other's run, and a reload starts afresh). The levers
(:data:`LEVERS`: margin mode, leverage cap, MMR scale, mark rule, makers' refill,
re-entry and volatility source, traders, entrants, the index's weight on the venue,
seed; the shock's size and time; the collateral's price source) rebuild the run when
changed, and are echoed in the status line. **Compare** adds a paired run: the same scenario and seed
under one other policy, stepped in lockstep, so the difference is the policy's (the
model's common random numbers: both face the same index path).

Charts are vega-lite (built with altair, drawn in the browser by vega from the
installed solara-assets package) with hover values, zoom and pan on the time axis
(double-click resets), an export menu, and the shock marked on every time axis; each
step sends only the new rows (:file:`livechart.vue`). Play stops at the scenario's last
step. Metric definitions are those of :mod:`crossmargin.model.measures`.

The scenario comes from ``$CROSSMARGIN_SCENARIO`` (set by ``crossmargin dashboard
--scenario FILE``), else ``experiments/scenarios/dashboard.toml``.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import altair as alt
import numpy as np
import solara

from ..model import CrossMarginModel, Scenario
from ..model import measures as ms
from ..model.contagion import liquidation_tree

__all__ = ["COMPARE", "LEVERS", "Page", "Session", "base_scenario", "lever_specs"]

DEFAULT_SCENARIO = Path(__file__).resolve().parent.parent / "experiments/scenarios/dashboard.toml"
OVERLAP = 20
"""Rows each chart chunk repeats from earlier frames (the browser keeps the new ones)."""

COMPARE = {
    "none": None,
    "isolated margin": {"margin_mode": "isolated"},
    "cross margin": {"margin_mode": "cross"},
    "portfolio margin": {"margin_mode": "portfolio"},
    "mark = index": {"mark_rule": "index"},
    "mark = book mid": {"mark_rule": "book_mid"},
    "Binance waterfall": {"liquidation.venue": "binance"},
    "BitMEX waterfall": {"liquidation.venue": "bitmex"},
    "Hyperliquid waterfall": {"liquidation.venue": "hyperliquid"},
    "makers that come back": {
        "agents.market_makers.reentry": "cooldown",
        "agents.market_makers.vol_source": "index",
    },
    "index listens to venue (0.5)": {"index_venue_weight": 0.5},
}
"""The paired run's policy: changes applied to the main run's scenario."""

WORLDS = {"one venue": False, "five venues": True}
"""The dashboard's worlds: the scenario as it is, or as a world of venues
(:meth:`Scenario.as_multivenue`: three spot venues, two perpetual venues)."""


def base_scenario() -> Scenario:
    """The scenario the dashboard starts from."""
    return Scenario.from_toml(os.environ.get("CROSSMARGIN_SCENARIO", DEFAULT_SCENARIO))


LEVERS: tuple[tuple[str, str, tuple | None], ...] = (
    ("margin_mode", "Margin mode", None),
    ("leverage_cap", "Leverage cap (×)", (2.0, 100.0, 1.0)),
    ("mmr_scale", "Maintenance-margin scale", (0.5, 1.9, 0.1)),
    ("mark_rule", "Mark-price rule", None),
    ("agents.market_makers.replenish_rate", "Makers' replenishment rate", (0.0, 1.0, 0.05)),
    ("agents.leveraged.count", "Leveraged traders", (20, 1000, 20)),
    ("agents.market_makers.reentry", "Makers come back", None),
    ("agents.market_makers.vol_source", "Makers read the volatility of", None),
    ("agents.entrants.count", "Liquidity entrants", (0, 20, 1)),
    ("index_venue_weight", "Index weight on this venue's mark", (0.0, 0.9, 0.1)),
    ("seed", "Seed", (0, 99, 1)),
)
"""The levers: scenario field, label, and (low, high, step) for a slider or None for a
choice among the field's allowed values."""


def _owner(sc: Scenario, dotted: str) -> tuple[Any, str]:
    """The object holding the dotted field (list items by index) and the field's name."""
    *path, name = dotted.split(".")
    obj: Any = sc
    for part in path:
        obj = obj[int(part)] if part.isdigit() else getattr(obj, part)
    return obj, name


def _field(sc: Scenario, dotted: str) -> Any:
    """The value of the dotted field of ``sc``."""
    obj, name = _owner(sc, dotted)
    return getattr(obj, name)


def _choices(sc: Scenario, dotted: str) -> list | None:
    """The values a field that takes one of fixed values (a ``Literal``) allows, read
    from the scenario's schema; None for any other field."""
    obj, name = _owner(sc, dotted)
    annotation = type(obj).model_fields[name].annotation
    return list(get_args(annotation)) if get_origin(annotation) is Literal else None


def lever_specs(sc: Scenario) -> dict[str, dict[str, Any]]:
    """The levers of ``sc``: scenario field → label, range or allowed values, and
    starting value (:data:`LEVERS`, plus the first shock's size and time when there is a
    shock and the collateral's price source when there is a collateral).

    Examples:
        >>> specs = lever_specs(base_scenario())
        >>> specs["leverage_cap"]["label"], specs["seed"]["value"]
        ('Leverage cap (×)', 1)
        >>> specs["margin_mode"]["values"]
        ['cross', 'isolated', 'portfolio']
    """
    rows = list(LEVERS)
    if sc.shocks:
        rows.append(("shocks.0.size", f"Shock size ({sc.shocks[0].kind})", (-0.5, 0.0, 0.01)))
        rows.append(("shocks.0.step", "Shock time (step)", (1, sc.steps, 1)))
    if sc.collateral is not None:
        rows.append(("collateral.price_source", "Collateral price source", None))
    specs: dict[str, dict[str, Any]] = {}
    for key, label, span in rows:
        value = _field(sc, key)
        if value is None and key == "leverage_cap":
            value = 50.0  # no exchange-wide cap in the scenario: the slider starts at 50×
        spec = {"label": label, "value": value}
        specs[key] = spec | ({"values": _choices(sc, key)} if span is None else {"range": span})
    return specs


class Session:
    """One visitor's runs: the main run and, when comparing, its pair (same seed).

    Args:
        base: The scenario the levers change.
        levers: Scenario field → value (``seed`` is the model's seed).
        compare: A key of :data:`COMPARE`.
    """

    def __init__(
        self,
        base: Scenario,
        levers: dict[str, Any],
        *,
        compare: str = "none",
        world: str = "one venue",
        venue: str | None = None,
    ) -> None:
        changes = {k: v for k, v in levers.items() if k != "seed"}
        if "shocks.0.step" in changes:
            changes["shocks.0.step"] = int(min(changes["shocks.0.step"], base.steps))
        self.scenario = base.replace(**changes)
        if WORLDS.get(world):  # the same scenario as a world of venues
            self.scenario = self.scenario.as_multivenue()
        names = self.scenario.venue_names
        self.venue = venue if venue in names else self.scenario.home_venue
        # The selected venue's columns in the wide frame carry its name, but the home's.
        self.prefix = "" if self.venue == self.scenario.home_venue else f"{self.venue}:"
        self.seed = int(levers.get("seed", base.seed))
        change = COMPARE.get(compare) or {"margin_mode": None}
        main = ", ".join(
            f"{k.split('.')[-1].replace('_', ' ')} {_field(self.scenario, k)}" for k in change
        )
        self.runs: list[tuple[str, CrossMarginModel]] = [
            (f"A: {main}", CrossMarginModel(self.scenario, rng=self.seed))
        ]
        if COMPARE.get(compare):
            pair = self.scenario.replace(**COMPARE[compare])
            self.runs.append((f"B: {compare}", CrossMarginModel(pair, rng=self.seed)))
        self.lock = threading.Lock()
        self._trees: dict[int, tuple] = {}
        self.shock = self.scenario.shocks[0].step if self.scenario.shocks else None
        self.shocks = [(s.step, s.kind.replace("_", " ")) for s in self.scenario.shocks]
        self.drawn = 0  # the last frame the browser has drawn
        self.full = False  # the next frame sends the whole history (a venue was chosen)
        self._drawn = threading.Condition()

    def on_drawn(self, frame: int) -> None:
        """The browser drew ``frame`` (:func:`VegaChart`'s acknowledgement)."""
        with self._drawn:
            self.drawn = max(self.drawn, int(frame))
            self._drawn.notify_all()

    def wait_drawn(self, frame: int, timeout: float) -> bool:
        """Wait until the browser has drawn ``frame`` (at most ``timeout`` seconds):
        Play steps at the pace the page is drawn, so frames never queue up in the
        browser (a backlog froze the page under load). True if it was drawn."""
        with self._drawn:
            return self._drawn.wait_for(lambda: self.drawn >= frame, timeout=timeout)

    def show(self, venue: str) -> None:
        """Show ``venue``'s books, pools and liquidations in the panels (the charts start
        again with the venue's whole history)."""
        with self.lock:
            self.venue = venue
            self.prefix = "" if venue == self.scenario.home_venue else f"{venue}:"
            self.full = True

    @property
    def epoch(self) -> str:
        """What the charts hold: this session's runs on the venue shown (a chart clears
        itself when it changes)."""
        return f"{id(self)}:{self.venue}"

    @property
    def t(self) -> int:
        return int(self.runs[0][1].t)

    @property
    def done(self) -> bool:
        return self.t >= self.scenario.steps

    def step(self, n: int = 1) -> None:
        """Advance every run by up to ``n`` steps, never past the scenario's last."""
        with self.lock:
            for _ in range(min(n, self.scenario.steps - self.t)):
                for _, m in self.runs:
                    m.step()

    def tree(self, model: CrossMarginModel) -> tuple[dict, dict]:
        """The run's liquidation tree (parents, generation), rebuilt only when new events
        were logged."""
        key = (id(model), len(model.exchange.events))
        if self._trees.get(id(model), (None,))[0] != key:
            self._trees[id(model)] = (key, liquidation_tree(model.cascade_graph))
        return self._trees[id(model)][1]

    def tail(self, n: int, columns: list[str]) -> list[tuple[str, list[float], list[list[float]]]]:
        """Per run: its label, and the last ``n`` steps' ``t`` and ``columns``."""
        return [(label, *m.datacollector.tail(n, columns)) for label, m in self.runs]


# ------------------------------------------------------------------------ charts


@solara.component_vue("livechart.vue")
def VegaChart(spec: str, chunk: str, event_drawn: Callable[[int], None] | None = None) -> None:
    """A vega-lite ``spec`` (JSON) whose dataset ``table`` grows by ``chunk`` (JSON: rows
    keyed by ``t`` and ``run``) or is replaced by it (``"replace": true``). Both travel
    as strings: reacton walks list and dict props looking for elements on every render,
    which for a few thousand values cost more than the rest of the frame. When a chunk
    carries a ``frame`` number, ``event_drawn(frame)`` is called once vega has drawn it."""


@solara.component
def LiveChart(spec: str, chunk: str, on_drawn: Callable[[int], None] | None = None) -> None:
    """A :func:`VegaChart` under its title (the spec's ``description``)."""
    title = solara.use_memo(lambda: json.loads(spec).get("description", ""), [spec])
    with solara.Column(gap="0px", classes=["xm-panel"]):
        solara.HTML(tag="div", unsafe_innerHTML=title, classes=["xm-title"])
        # A new spec gets a new widget (a fresh vega view): re-embedding into the old
        # element measured its container before the layout settled.
        VegaChart(spec=spec, chunk=chunk, event_drawn=on_drawn).key(f"chart-{hash(spec)}")


def _time_spec(
    session: Session,
    kind: str,
    y: str,
    color: str,
    *,
    title: str,
    y_title: str,
    fmt: str = ",.4~g",
) -> str:
    """A line chart over time of the long rows (t, run, ``color``, ``y``): colour by
    ``color``, dash by run, the shock as a rule, hover values, x zoom and pan."""
    x = alt.X("t:Q", title="time (minutes)", scale=alt.Scale(domain=[0, session.scenario.steps]))
    runs = [label for label, _ in session.runs]
    # Prices and margin ratios are read against their own range, not against 0 (a 15%
    # crash on an axis from 0 to 100 looks flat).
    yscale = alt.Scale(zero=kind not in ("prices", "margin", "collateral", "venues"))
    base = alt.Chart(alt.NamedData("table")).encode(
        x=x,
        y=alt.Y(f"{y}:Q", title=y_title, axis=alt.Axis(format="~s"), scale=yscale),
        color=alt.Color(f"{color}:N", title=None, legend=alt.Legend(orient="top", columns=4)),
    )
    lines = base.mark_line(strokeWidth=1.4, clip=True).encode(
        strokeDash=alt.StrokeDash(
            "run:N",
            scale=alt.Scale(domain=runs, range=[[1, 0], [5, 3]][: len(runs)]),
            legend=None,  # named in the title: a second top legend squeezes the plot
        ),
    )
    # Hover: the nearest minute gets a rule and a table of every series at that minute.
    keys = _keys(session, kind)
    hover = alt.selection_point(
        fields=["t"], nearest=True, on="mouseover", clear="mouseout", empty=False
    )
    rule = (
        alt.Chart(alt.NamedData("table"))
        .transform_pivot("k", value="value", groupby=["t"])
        .mark_rule(color="#555")
        .encode(
            x="t:Q",
            opacity=alt.condition(hover, alt.value(0.5), alt.value(0)),
            tooltip=[alt.Tooltip("t:Q", title="minute")]
            + [
                alt.Tooltip(
                    f"{k}:Q", title=name if len(runs) == 1 else f"{name} ({run[0]})", format=fmt
                )
                for (run, name), k in keys.items()
            ],
        )
        .add_params(hover)
    )
    layers: list[Any] = [lines.interactive(bind_y=False), rule]
    if session.shocks:
        # shocks within 3% of the day of each other share one label
        groups: list[list[tuple[int, str]]] = []
        for t, k in session.shocks:
            if groups and t - groups[-1][-1][0] <= 0.03 * session.scenario.steps:
                groups[-1].append((t, k))
            else:
                groups.append([(t, k)])
        labels = [
            {"t": g[0][0], "label": f"{', '.join(dict.fromkeys(k for _, k in g))} @{g[0][0]}"}
            for g in groups
        ]
        lines_at = [{"t": t, "label": ""} for t, _ in session.shocks]
        shock = alt.Chart(alt.Data(values=lines_at + labels))
        layers.append(shock.mark_rule(color="#c0392b", strokeDash=[3, 3]).encode(x="t:Q"))
        layers.append(
            shock.transform_filter("datum.label != ''")
            .mark_text(align="left", dx=3, dy=2, baseline="top", color="#c0392b")
            .encode(x="t:Q", y=alt.value(0), text="label:N")
        )
    if len(runs) > 1 and kind != "liquidations":
        title += " · A solid, B dashed"
    return _spec(alt.layer(*layers), title, 170)


def _spec(chart: Any, title: str, height: int) -> str:
    """The chart as vega-lite JSON: as wide as its panel (``fit-x``: the height stays
    fixed, so a chart that has no data yet keeps its size). The title is drawn by the
    page above the chart (``description`` carries it), so it never moves with the
    axis labels as data arrive."""
    return (
        chart.properties(
            width="container",
            height=height,
            description=title,
            autosize=alt.AutoSizeParams(type="fit-x", contains="padding"),
        )
        .configure_view(strokeWidth=0)
        .configure_axisY(minExtent=52, labelLimit=90)
        .to_json(indent=None)
    )


def _chunk(
    session: Session, rows: list[dict], *, replace: bool = False, frame: int | None = None
) -> str:
    msg: dict[str, Any] = {"epoch": session.epoch, "rows": rows, "replace": replace}
    if frame is not None:
        msg["frame"] = frame
    return json.dumps(msg)


PANELS = {
    "prices": ("Mark prices (start = 100)", "price (start = 100)"),
    "liquidations": ("Liquidated notional per minute", "USD per minute"),
    "pools": ("Shared pools: change since the start", "USD"),
    "depth": ("Depth within ±1% of the mid", "USD"),
    "margin": ("Margin ratio (equity / maintenance margin)", "ratio"),
    "collateral": ("Collateral token price", "USD"),
    "venues": ("First market, every venue (start = 100)", "price (start = 100)"),
}
"""The time-series panels: title and y-axis title."""


def _panel(session: Session, kind: str) -> tuple[list[str], list[str]]:
    """The model-frame columns of a time-series panel and the series they are drawn as
    (the liquidations panel draws one series per run: the sum of its columns), on the
    selected venue; ``venues`` draws the first market's mark on every venue beside the
    latent value."""
    names = session.scenario.market_names
    pre = session.prefix
    if kind == "venues":
        sc = session.scenario
        m = names[0]
        cols = [f"{m}_mark" if v == sc.home_venue else f"{v}:{m}_mark" for v in sc.venue_names]
        return [*cols, f"world:{m}_value"], [*sc.venue_names, "value (latent)"]
    if kind == "prices":
        return [f"{pre}{n}_mark" for n in names], names
    if kind == "liquidations":
        kinds = ("partial", "full", "backstop", "takeover", "adl")
        return [f"{pre}liq_notional_{k}" for k in kinds], [label for label, _ in session.runs]
    if kind == "pools":
        return [f"{pre}insurance_fund", f"{pre}vault_nav"], ["insurance fund", "backstop vault"]
    if kind == "depth":
        return [f"{pre}{n}_depth1" for n in names], names
    if kind == "margin":
        return [f"{pre}ratio_p05", f"{pre}ratio_p25", f"{pre}ratio_p50"], [
            "5th pct",
            "25th pct",
            "median",
        ]
    return [f"{pre}collateral_price"], [session.scenario.collateral.name]


def _keys(session: Session, kind: str) -> dict[tuple[str, str], str]:
    """(run, series) → the short field name its values take in the hover table."""
    _, series = _panel(session, kind)
    pairs = [
        (label, name)
        for label, _ in session.runs
        for name in ([label] if kind == "liquidations" else series)
    ]
    return {pair: f"k{i}" for i, pair in enumerate(pairs)}


def _time_rows(session: Session, kind: str, window: int) -> list[dict]:
    """The last ``window`` steps of every run for one time-series panel, in long form
    (t, run, series, value, and k: the hover table's field)."""
    cols, series = _panel(session, kind)
    keys = _keys(session, kind)
    rows: list[dict] = []
    for (label, m), (_, t, data) in zip(session.runs, session.tail(window, cols), strict=True):
        if kind == "liquidations":
            total = np.sum(data, axis=0) if t else []
            k = keys[label, label]
            rows += [
                {"t": a, "run": label, "series": label, "value": v, "k": k}
                for a, v in zip(t, total, strict=True)
            ]
            continue
        for name, col, values in zip(series, cols, data, strict=len(series) == len(cols)):
            base = float(m.datacollector.at(0, col)) if t else 0.0
            for a, v in zip(t, values, strict=True):
                if np.isfinite(v):
                    if kind in ("prices", "venues"):
                        v = 100 * v / base
                    elif kind == "pools":
                        v = v - base
                    rows.append(
                        {"t": a, "run": label, "series": name, "value": v, "k": keys[label, name]}
                    )
    return rows


def _book_rows(session: Session, m: int) -> list[dict]:
    """The main run's top 10 price levels a side of market ``m`` (USD at the mark)."""
    venue = session.runs[0][1].venue(session.venue)
    spec = venue.exchange.markets[m]
    digits = max(0, -int(np.floor(np.log10(spec.tick))))
    bids, asks = venue.exchange.books[m].top(10)
    return [
        {
            "t": 0,
            "run": "A",
            "side": side,
            "price": round(p * spec.tick, digits),
            "usd": q * spec.lot * float(venue.mark[m]),
        }
        for side, levels in (("ask", asks), ("bid", bids))
        for p, q in levels
    ]


def _cascade_rows(session: Session) -> list[dict]:
    """Liquidations per cascade generation in each run."""
    rows = []
    for label, m in session.runs:
        gens = ms.branching_by_generation(*session.tree(m))
        rows += [
            {"t": 0, "run": label, "generation": int(g), "liquidations": int(n)}
            for g, n in zip(gens["generation"], gens["liquidations"], strict=True)
        ]
    return rows


@solara.component
def TimePanel(
    session: Session, kind: str, chunk: str, on_drawn: Callable[[int], None] | None = None
) -> None:
    """One time-series panel (a key of :data:`PANELS`)."""
    title, y_title = PANELS[kind]
    spec = solara.use_memo(
        lambda: _time_spec(
            session, kind, "value", "series", title=title, y_title=y_title, fmt=",.6~g"
        ),
        dependencies=[id(session), kind],
    )
    LiveChart(spec=spec, chunk=chunk, on_drawn=on_drawn)


@solara.component
def BookPanel(session: Session, market: int, on_market, chunk: str) -> None:
    """The main run's order book: resting size (USD) by price, bids and asks."""
    names = session.scenario.market_names
    spec = solara.use_memo(
        lambda: _spec(
            alt.Chart(alt.NamedData("table"))
            # Levels at their prices (a quantitative axis): the gaps between levels, the
            # spread included, are seen as they are, not as equal categories.
            .transform_calculate(zero="0")
            .mark_rule(strokeWidth=4)
            .encode(
                y=alt.Y(
                    "price:Q",
                    title="price (USD)",
                    scale=alt.Scale(zero=False),
                    axis=alt.Axis(labelLimit=90, minExtent=90, format=",~r"),
                ),
                x=alt.X("zero:Q", title="resting size (USD)", axis=alt.Axis(format="~s")),
                x2=alt.X2("usd:Q"),
                color=alt.Color(
                    "side:N",
                    scale=alt.Scale(domain=["bid", "ask"], range=["#2e8b57", "#c0392b"]),
                    legend=alt.Legend(orient="top", title=None),
                ),
                tooltip=[
                    "side:N",
                    alt.Tooltip("price:Q", format=",~r"),
                    alt.Tooltip("usd:Q", format=",.0f"),
                ],
            ),
            f"Order book {names[market]} (main run)",
            220,
        ),
        dependencies=[id(session), market],
    )
    with solara.Column(gap="4px"):
        LiveChart(spec=spec, chunk=chunk)
        solara.ToggleButtonsSingle(
            value=names[market],
            values=names,
            on_value=lambda v: on_market(names.index(v)),
            dense=True,
        )


@solara.component
def CascadePanel(session: Session, chunk: str) -> None:
    """Liquidations per cascade generation in each run (the cascade so far)."""
    spec = solara.use_memo(
        lambda: _spec(
            alt.Chart(alt.NamedData("table"))
            .mark_bar()
            .encode(
                x=alt.X("generation:O", title="generation (0: set off by a shock or the market)"),
                xOffset="run:N",
                y=alt.Y("liquidations:Q", title="liquidations"),
                color=alt.Color("run:N", legend=alt.Legend(orient="top", title=None)),
                tooltip=["run:N", "generation:O", "liquidations:Q"],
            ),
            "Cascade: liquidations by generation",
            170,
        ),
        dependencies=[id(session)],
    )
    LiveChart(spec=spec, chunk=chunk)


# ------------------------------------------------------------------------ status


def _headline(session: Session, model: CrossMarginModel) -> dict[str, str]:
    """The run's headline numbers, from the one set of definitions."""
    ev = model.exchange.events
    parents, _ = session.tree(model)
    vault = model.datacollector.at(-1, "vault_pnl") if model.t else 0.0
    fund = model.datacollector.at(-1, "fund_pnl") if model.t else 0.0
    pool = model.pool_writedown()
    lost = sum(ms.loss_borne(ev, vault_pnl=vault, fund_pnl=fund, pool_writedown=pool).values())
    return {
        "liquidations": f"{ms.liquidation_count(ev):,}",
        "accounts liquidated": f"{ms.accounts_liquidated(ev):,}",
        "branching ratio": f"{ms.branching_ratio(parents):.2f}",
        "losses borne (USD)": f"{lost:,.0f}",
        "insurance fund (USD)": f"{model.exchange.fund_equity():,.0f}",
        "state error (USD)": f"{model.exchange.state_error():.1e}",
    }


def _status_html(session: Session) -> str:
    """The step, the levers in force, and each run's headline numbers."""
    sc = session.scenario
    shock = sc.shocks[0] if sc.shocks else None
    levers = [
        f"margin <b>{sc.margin_mode}</b>",
        f"leverage cap <b>{sc.leverage_cap or 'none'}</b>",
        f"MMR × <b>{sc.mmr_scale:g}</b>",
        f"mark <b>{sc.mark_rule}</b>",
        f"traders <b class='xm-traders'>{sc.agents.leveraged.count}</b>",
        f"seed <b class='xm-seed'>{session.seed}</b>",
    ]
    if shock is not None:
        levers.append(f"shock <b>{shock.kind} {shock.size:g}</b> at step <b>{shock.step}</b>")
    if sc.collateral is not None:
        levers.append(f"collateral price <b>{sc.collateral.price_source}</b>")
    mm = sc.agents.market_makers
    levers.append(f"makers <b>{mm.reentry}</b> re-entry, <b>{mm.vol_source}</b> volatility")
    levers.append(f"entrants <b>{sc.agents.entrants.count}</b>")
    if len(sc.venue_names) > 1:
        levers.append(
            f"world of <b>{len(sc.venue_names)}</b> venues, shown: <b class='xm-venue'>"
            f"{session.venue}</b>"
        )
    else:
        levers.append(f"index weight on venue <b>{sc.index_venue_weight:g}</b>")
    cards = []
    for label, m in session.runs:
        items = "".join(f"<span>{k} <b>{v}</b></span>" for k, v in _headline(session, m).items())
        cards.append(f"<div class='xm-card'><div class='xm-run'>{label}</div>{items}</div>")
    return (
        f"<div class='xm-status'><b>{sc.name}</b> · step <b class='xm-step'>{session.t}</b>"
        f" of <b class='xm-steps'>{sc.steps}</b>"
        f"{' · <b>finished</b>' if session.done else ''}<br>{' · '.join(levers)}</div>"
        f"<div class='xm-cards'>{''.join(cards)}</div>"
    )


# ------------------------------------------------------------------------ controls


@solara.component
def Levers(specs: dict, values: dict, on_change) -> None:
    """One input per lever, its value always shown in its label."""
    with solara.Column(gap="0px", classes=["xm-levers"]):
        for key, spec in specs.items():
            value = values[key]
            label = f"{spec['label']}: {value:g}" if "range" in spec else spec["label"]

            def set_value(v, key=key):
                on_change({**values, key: v})

            if "values" in spec:
                solara.Select(label=label, value=value, values=spec["values"], on_value=set_value)
            elif isinstance(spec["value"], int) and isinstance(spec["range"][2], int):
                lo, hi, st = spec["range"]
                solara.SliderInt(
                    label, value=int(value), min=lo, max=hi, step=st, on_value=set_value
                )
            else:
                lo, hi, st = spec["range"]
                solara.SliderFloat(
                    label, value=float(value), min=lo, max=hi, step=st, on_value=set_value
                )


CSS = """
.xm-layout { display: grid; gap: 18px; grid-template-columns: 290px minmax(0, 1fr); }
@media (max-width: 820px) { .xm-layout { grid-template-columns: minmax(0, 1fr); } }
.xm-layout { padding: 8px 12px; }
.xm-controls, .xm-main { min-width: 0; }
.xm-title { font-weight: 600; font-size: 14px; margin: 0 0 2px 4px; }
.xm-grid { display: grid; gap: 14px; width: 100%;
  grid-template-columns: repeat(auto-fill, minmax(min(100%, 460px), 1fr)); }
.xm-grid > * { min-width: 0; }
.xm-status { font-size: 14px; line-height: 1.6; }
.xm-cards { display: flex; flex-wrap: wrap; gap: 10px; margin-top: 6px; }
.xm-card { flex: 1 1 300px; border: 1px solid #ddd; border-radius: 6px; padding: 6px 10px;
  display: flex; flex-wrap: wrap; gap: 2px 14px; font-size: 13px; }
.xm-run { width: 100%; font-weight: 600; }
.xm-top { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
.xm-levers .v-input { margin-top: 0; }
.xm-busy { padding: 24px 8px; font-size: 15px; }
"""


FRAME_TIMEOUT = 2.0
"""Seconds Play waits for the browser to draw a frame before it steps anyway (a hidden
tab draws nothing)."""


@solara.component
def Page() -> None:
    """The dashboard; everything below is created per browser session."""
    base = solara.use_memo(base_scenario, dependencies=[])
    specs = solara.use_memo(lambda: lever_specs(base), dependencies=[])
    levers = solara.use_reactive({k: s["value"] for k, s in specs.items()})
    compare = solara.use_reactive("none")
    world = solara.use_reactive("one venue")
    venue = solara.use_reactive("")
    resets = solara.use_reactive(0)
    # The run is built in a thread, so the page says it is working while it builds.
    built = solara.use_thread(
        lambda: Session(
            base, levers.value, compare=compare.value, world=world.value, venue=venue.value
        ),
        dependencies=[repr(levers.value), compare.value, world.value, resets.value],
    )
    session = built.value if built.state == solara.ResultState.FINISHED else None
    frame = solara.use_reactive(0)
    finished = solara.use_reactive(False)  # the Step button read session.done last
    playing = solara.use_reactive(False)
    per_frame = solara.use_reactive(1)

    def play() -> None:
        if session is None:
            return
        while playing.value and not session.done:
            started = time.perf_counter()
            session.step(per_frame.value)
            n = frame.value + 1
            frame.set(n)
            # At the pace the browser draws (backpressure): never more frames in flight
            # than one, so a slow or loaded browser cannot fall behind and freeze.
            session.wait_drawn(n, FRAME_TIMEOUT)
            time.sleep(max(0.0, 0.02 - (time.perf_counter() - started)))
        finished.set(session.done)
        if session.done:
            playing.set(False)

    solara.use_thread(play, dependencies=[playing.value, id(session)])

    def step_once() -> None:
        if session is None:
            return
        session.step(per_frame.value)
        frame.set(frame.value + 1)
        finished.set(session.done)

    def choose_world(name: str) -> None:
        playing.set(False)
        world.set(name)

    def choose_venue(name: str) -> None:
        if session is not None:
            session.show(name)
        venue.set(name)
        frame.set(frame.value + 1)  # redraw now, also when paused

    def rebuild(new_levers: dict | None = None, new_compare: str | None = None) -> None:
        playing.set(False)
        finished.set(False)
        if new_levers is None and new_compare is None:
            resets.set(resets.value + 1)
        if new_levers is not None:
            levers.set(new_levers)
        if new_compare is not None:
            compare.set(new_compare)

    window = per_frame.value + OVERLAP
    finished.value  # noqa: B018 - subscribe: the page re-renders when the run ends
    busy = session is None
    done = session is not None and session.done
    solara.Style(CSS)
    solara.Title("crossmargin: liquidation contagion")
    with solara.Div(classes=["xm-layout"]):
        with solara.Div(classes=["xm-controls"]):
            with solara.Row(classes=["xm-top"]):
                solara.Button(
                    "Pause" if playing.value else "Play",
                    color="primary",
                    on_click=lambda: playing.set(not playing.value),
                    disabled=done or busy,
                )
                solara.Button("Step", on_click=step_once, disabled=playing.value or done or busy)
                solara.Button("Reset", on_click=lambda: rebuild(), disabled=busy)
            solara.Select(
                label="Steps per frame",
                value=per_frame.value,
                values=[1, 2, 5, 10],
                on_value=per_frame.set,
            )
            solara.Select(
                label="World",
                value=world.value,
                values=list(WORLDS),
                on_value=choose_world,
            )
            if session is not None and len(session.scenario.venue_names) > 1:
                solara.Select(
                    label="Venue shown",
                    value=session.venue,
                    values=session.scenario.venue_names,
                    on_value=choose_venue,
                )
            solara.Select(
                label="Compare with (same seed)",
                value=compare.value,
                values=list(COMPARE),
                on_value=lambda v: rebuild(new_compare=v),
            )
            Levers(specs, levers.value, on_change=lambda v: rebuild(new_levers=v))
            if session is not None:
                Downloads(session)
        with solara.Div(classes=["xm-main"]):
            if built.state == solara.ResultState.ERROR:
                solara.Error(f"the run could not be built: {built.error}")
            elif busy:
                with solara.Column(classes=["xm-busy"]):
                    solara.ProgressLinear(True)
                    traders = levers.value.get("agents.leveraged.count", "")
                    solara.Text(
                        f"building the run: {traders} leveraged traders and the rest of "
                        "the market …",
                        classes=["xm-building"],
                    )
            else:
                Live(session, frame, window)


@solara.component
def Downloads(session: Session) -> None:
    """The main run's data as it stands: the model frame (Parquet, one row per step) and
    the events (CSV), for a researcher to take away."""

    def frame_bytes() -> bytes:
        import io

        with session.lock:
            df = session.runs[0][1].model_frame()
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return buf.getvalue()

    def events_bytes() -> bytes:
        with session.lock:
            ev = session.runs[0][1].events
        return ev.to_csv(index=False).encode()

    name = f"{session.scenario.name}-{session.seed}"
    with solara.Column(gap="2px", classes=["xm-downloads"]):
        solara.Text("Download this run's data:")
        solara.FileDownload(
            frame_bytes, filename=f"{name}-model.parquet", label="Model frame (Parquet)"
        )
        solara.FileDownload(events_bytes, filename=f"{name}-events.csv", label="Events (CSV)")


@solara.component
def Live(session: Session, frame: solara.Reactive[int], window: int) -> None:
    """The status and the charts: the only part redrawn each frame (reading ``frame``
    here, not in :func:`Page`, keeps the sidebar's inputs out of the per-step render).
    Everything shown is read from the runs at once, under the session's lock, so a
    frame never mixes two steps."""
    frame.value  # noqa: B018 - subscribe to the frame counter
    market, set_market = solara.use_state(0)
    shown = session.scenario.venue_scenario(session.venue)
    kinds = [*PANELS][:5] + (["collateral"] if shown.collateral is not None else [])
    if len(session.scenario.venue_names) > 1:
        kinds.append("venues")
    with session.lock:
        if session.full:  # a new venue: its whole history so far
            window, session.full = session.t + 1, False
        status = _status_html(session)
        series = {
            k: _chunk(session, _time_rows(session, k, window), frame=frame.value) for k in kinds
        }
        book = _chunk(session, _book_rows(session, market), replace=True)
        cascade = _chunk(session, _cascade_rows(session), replace=True)
    with solara.Column(gap="10px"):
        solara.HTML(tag="div", unsafe_innerHTML=status)
        with solara.Div(classes=["xm-grid"]):
            for kind in kinds:
                # the first panel tells Play when a frame is on screen
                drawn = session.on_drawn if kind == kinds[0] else None
                TimePanel(session, kind, series[kind], on_drawn=drawn)
            BookPanel(session, market, set_market, book)
            CascadePanel(session, cascade)
