"""``crossmargin report DIR``: figures (PNG + PDF) and a report (Markdown + HTML).

A run directory (``summary.json``) gets its prices, liquidations, pools, depth,
margin-ratio, leverage, cascade and exposure figures plus tables of cascades, loss
shares, systemic importance, resilience and stylized facts. A sweep directory
(``summary.parquet``) gets heatmaps, lines with confidence bands, the cascade-size
CCDF, the margin-mode comparison and Sobol indices, whichever its design supports.
The HTML is self-contained: the PNGs are embedded.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import tempfile
import tomllib
from pathlib import Path

import markdown
import networkx as nx
import numpy as np
import pandas as pd

__all__ = ["ReportError", "report", "sobol_indices"]


class ReportError(ValueError):
    """The directory is neither a run nor a sweep, or cannot be read as one (one line)."""


RUN_INPUTS = (
    "summary.json",
    "model.parquet",
    "events.parquet",
    "trades.parquet",
    "cascade.graphml",
    "exposure.graphml",
)
"""What a run folder must hold for its report."""


def report(path: str | Path) -> Path:
    """Write ``DIR/figures/`` and ``DIR/report.md`` / ``DIR/report.html``; return the .md path.

    The folder is not trusted: every value read from it is escaped before it reaches
    the Markdown or the HTML, only the report's own figures are embedded, no file is
    read or written through a symbolic link that leaves the folder, and a folder that
    is not a crossmargin run or sweep, or cannot be read as one, stops with one line
    (:class:`ReportError`) before anything is written. The report is built in a
    temporary folder inside DIR and moved into place at the end; an earlier report is
    replaced file by file (the command line's ``--overwrite``), only the files
    crossmargin wrote (its manifest), never anything else in the folder.
    """
    from ..experiments.outputs import read_manifest, remove_written, write_manifest

    path = Path(path)
    if not path.is_dir():
        raise ReportError(f"{path}: no such directory")
    for name in ("report.md", "report.html", "figures"):
        if (path / name).is_symlink():
            raise ReportError(f"{path}: {name} is a symbolic link; not writing through it")
    kind = _kind(path)
    tmp = Path(tempfile.mkdtemp(prefix=".crossmargin-report-", dir=path))
    try:
        try:
            if kind == "run":
                summary = _read_json(path, "summary.json")
                sections = _run_report(path, tmp)
                title = f"Run report: {_text(summary.get('scenario', path.name))}"
                made_by = summary.get("provenance", {})
            else:
                design = _read_toml(path, "experiment.toml")
                sections = _sweep_report(path, tmp)
                name = design.get("experiment", {}).get("name") or path.name
                title = f"Sweep report: {_text(name)}"
                made_by = design.get("provenance", {})
        except ReportError:
            raise
        except Exception as exc:  # a corrupt folder: one line, nothing written
            raise ReportError(
                f"{path}: cannot be read as a crossmargin {kind} ({type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]})"
            ) from None
        made_by = made_by if isinstance(made_by, dict) else {}
        md = f"# {title}\n\n" + _provenance_line(made_by) + "\n\n".join(sections) + "\n"
        (tmp / "report.md").write_text(md)
        (tmp / "report.html").write_text(_html(title, md, tmp))
        figures = (
            sorted(f.name for f in (tmp / "figures").iterdir())
            if (tmp / "figures").is_dir()
            else []
        )
        earlier = [n for n in read_manifest(path) if n.startswith(("report.", "figures"))]
        remove_written(path, earlier)
        if figures:
            (path / "figures").mkdir(exist_ok=True)
            for f in figures:
                os.replace(tmp / "figures" / f, path / "figures" / f)
        for f in ("report.md", "report.html"):
            os.replace(tmp / f, path / f)
        write_manifest(path, ["report.md", "report.html", *(f"figures/{f}" for f in figures)])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path / "report.md"


def _kind(path: Path) -> str:
    """``run`` or ``sweep``, from the files a crossmargin run or sweep writes; anything
    else is refused (one line)."""
    if (path / "summary.json").exists():
        missing = [f for f in RUN_INPUTS if not (path / f).is_file()]
        if missing:
            raise ReportError(
                f"{path}: not a complete crossmargin run (missing {', '.join(missing)})"
            )
        return "run"
    if (path / "experiment.toml").is_file():
        return "sweep"
    raise ReportError(
        f"{path}: neither a run (summary.json) nor a sweep (experiment.toml): not a results folder"
    )


def _inside(path: Path, name: str) -> Path:
    """``path / name``, refusing a symbolic link that leads out of ``path``."""
    p = path / name
    if p.is_symlink() and path.resolve() not in p.resolve().parents:
        raise ReportError(f"{path}: {name} is a symbolic link out of the folder; not reading it")
    return p


def _read_json(path: Path, name: str) -> dict:
    try:
        data = json.loads(_inside(path, name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ReportError(f"{path}: {name} is not readable JSON ({type(exc).__name__})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: {name} does not hold a summary (not a JSON object)")
    return data


def _read_toml(path: Path, name: str) -> dict:
    try:
        return tomllib.loads(_inside(path, name).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError) as exc:
        raise ReportError(f"{path}: {name} is not readable TOML ({type(exc).__name__})") from None


def _text(value) -> str:
    """A value read from the folder, made inert for Markdown and HTML: HTML escaped
    (no tag or script can form) and the characters of Markdown links, images, code
    and table cells backslash-escaped (no link or image can form, no cell can split).

    Examples:
        >>> print(_text('<b>x</b> ![a](../../etc/passwd) | c'))
        &lt;b&gt;x&lt;/b&gt; \\!\\[a\\](../../etc/passwd) \\| c
    """
    s = html.escape(str(value), quote=False)
    return re.sub(r"([\\`\[\]!|])", r"\\\1", s)


_ORDER_PATH = {
    "compiled": ", the compiled order book",
    "python": ", the Python order book",
    "compiled book": ", the compiled order book with the order path in Python (a twin edited)",
}
"""How the report names provenance's ``order_book`` (:func:`~..model.twins.order_path`)."""


def _provenance_line(made_by: dict) -> str:
    """Who made the results and who made the report: versions, commit, command."""
    from ..experiments.provenance import provenance

    def describe(p: dict) -> str:
        if not p:
            return "unknown (written before provenance was recorded)"
        t = {k: _text(v) for k, v in p.items()}
        commit = f", commit {t['commit'][:12]}" if p.get("commit") else ""
        book = _ORDER_PATH.get(p.get("order_book"), f", order book {t.get('order_book')}")
        book = book if p.get("order_book") else ""
        return (
            f"crossmargin {t.get('crossmargin', '?')}{commit}, Python {t.get('python', '?')}, "
            f"numpy {t.get('numpy', '?')}, Mesa {t.get('mesa', '?')}{book}; "
            f"command: {t.get('command', '?')}"
        )

    return (
        f"*Results made by* {describe(made_by)}.  \n*Report made by* {describe(provenance())}.\n\n"
    )


def _sweep_table(path: Path) -> tuple[pd.DataFrame, str]:
    """The sweep's table: ``summary.parquet`` when the sweep finished; else rebuilt from
    the run files of a partial (interrupted or still running) sweep, with a note."""
    if (path / "summary.parquet").exists():
        table = pd.read_parquet(_inside(path, "summary.parquet"))
        missing = int((table["status"] != "ok").sum())
        note = (
            f"**{missing} of {len(table)} runs did not finish** (failed or missing); "
            "the figures and tables use the finished runs only.\n\n"
            if missing
            else ""
        )
        return table, note
    design = _read_toml(path, "experiment.toml")
    rows = []
    for r in design.get("runs", []):
        row = {"run_id": r["id"], "point": r["index"], "seed": r["seed"]}
        row.update({f"param.{k}": v for k, v in r.get("params", {}).items()})
        f = _inside(path / "runs", f"{r['id']}.json") if _plain_id(r["id"]) else None
        if f is not None and f.exists():
            rec = json.loads(f.read_text())
            row.update(status="ok", error="", seconds=rec.get("seconds"))
            row.update(_flatten(rec["summary"]))
        else:
            row.update(status="missing", error="")
        rows.append(row)
    table = pd.DataFrame(rows)
    done = int((table["status"] == "ok").sum()) if len(table) else 0
    if done == 0:
        raise ReportError(f"{path}: a sweep with no finished run yet")
    note = (
        f"**Partial sweep: {done} of {len(table)} runs finished** (no summary.parquet yet; "
        "rerun the sweep to finish it). The figures and tables use the finished runs "
        "only.\n\n"
    )
    return table, note


def _flatten(d: dict, prefix: str = "") -> dict:
    flat: dict = {}
    for k, v in d.items():
        if isinstance(v, dict):
            flat.update(_flatten(v, f"{prefix}{k}."))
        else:
            flat[f"{prefix}{k}"] = v
    return flat


def _has_prefix(df: pd.DataFrame, venue: str) -> bool:
    """Whether the frame has columns prefixed with ``venue`` (every venue's but the
    home venue's)."""
    return any(c.startswith(f"{venue}:") for c in df.columns)


def _fig(out: Path, fig, name: str, caption: str) -> str:
    """Save a figure into ``out/figures`` and return its Markdown (the name is ours, a
    slug; the caption is escaped)."""
    from . import figures as fg

    fg.save(fig, out / "figures", name)
    caption = _text(caption)
    return f"![{caption}](figures/{name}.png)\n\n*{caption}*"


def _table(df: pd.DataFrame, *, floatfmt: str = ",.4g") -> str:
    """A Markdown table; every header and cell is escaped (:func:`_text`)."""

    def fmt(v):
        if isinstance(v, float | np.floating):
            return "" if np.isnan(v) else format(v, floatfmt)
        return _text(v)

    cols = [_text(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


# ----------------------------------------------------------------------- runs


def _run_report(path: Path, dest: Path) -> list[str]:
    summary = _read_json(path, "summary.json")
    df = pd.read_parquet(_inside(path, "model.parquet"))
    events = pd.read_parquet(_inside(path, "events.parquet"))
    trades = pd.read_parquet(_inside(path, "trades.parquet"))
    cascade = nx.read_graphml(_inside(path, "cascade.graphml"))
    exposure = nx.read_graphml(_inside(path, "exposure.graphml"))
    if "t" not in df or not any(c.endswith("_mark") for c in df.columns):
        raise ReportError(f"{path}: model.parquet is not a crossmargin model frame")
    # The plotting stack (matplotlib, seaborn: 2 s to import) once the folder is read,
    # so a folder that cannot be read as a run is refused at once.
    from . import figures as fg
    from . import metrics as mx

    fg.theme()
    names = [c[: -len("_mark")] for c in df.columns if c.endswith("_mark") and ":" not in c]
    shocks = _shocks(path, events)
    flat = {
        k: (
            ", ".join(f"{m}: {_num(v)}" for m, v in val.items())
            if isinstance(val, dict)
            else _num(val)
        )
        for k, val in summary.items()
        if k != "provenance"
    }
    out = [
        "## Headline\n\n" + _headline(summary, events, df),
        "## Prices\n\n"
        + _fig(
            dest,
            fg.prices(df, events),
            "prices",
            "Index (grey), mid and mark per market; triangles mark steps with forced "
            "liquidation orders in that market. A gap between mark and index is the basis "
            "the mark rule lets through.",
        ),
        "## Liquidations\n\n"
        + _fig(
            dest,
            fg.liquidations(df, shocks=shocks),
            "liquidations",
            "Liquidated notional by waterfall stage, over the whole run (5-minute bars) "
            "and, right, minute by minute around the shocks (labelled by kind, size and "
            "minute): partial and full liquidations went through the book; backstop is "
            "what the vault took over, takeover what the insurance fund took over; ADL is "
            "what was closed against profitable opposite positions.",
        ),
        "## Shared pools\n\n"
        + _fig(
            dest,
            fg.pools(df, shocks=shocks),
            "pools",
            "Change since the start of the insurance fund (liquidation fees in, shortfalls "
            "out) and, when the run has one, of the backstop vault's NAV (its depositors "
            "share the PnL of the positions it took over). Dashed: shocks.",
        ),
    ]
    if fg.has_venues(df):
        by = summary.get("by_venue") or {}
        home = next((v for v in summary.get("venues", []) if not _has_prefix(df, v)), "")
        out.append(
            "## Venues\n\n"
            + _fig(
                dest,
                fg.venues(df, events, home=home, shocks=shocks),
                "venues",
                "Per market: every venue's mark (solid), each perpetual venue's index "
                "(dotted, in its colour), made by its rule from the spot venues' prices, and "
                "the latent value (black), which news and every venue's signed order flow "
                "move. Dashed: shocks.",
            )
            + "\n\nBy venue (USD):\n\n"
            + _table(pd.DataFrame([{"venue": k, **v} for k, v in by.items()]))
        )
    if fg.has_collateral(df):
        out.append(
            "## Collateral\n\n"
            + _fig(
                dest,
                fg.collateral(df, shocks=shocks),
                "collateral",
                "The collateral token's price as the exchange valued it (its price source "
                "is a scenario lever), against its 1-USD peg; its low is marked.",
            )
        )
    out.append(
        "Losses that liquidated accounts could not pay, by who bore them (USD, net at "
        "the end of the run; shares add up to 1). `notional` is what each bearer took over "
        "or closed (USD): the fund's takeovers, the vault's backstops, ADL's closes. ADL "
        "events that close a position at a price no worse than the mark close notional "
        "but bear no loss; only ADL charges do. The vault's and the fund's losses are "
        "their P&L over the run when negative; the pool's is its write-down left at the "
        "end.\n\n"
        + _table(
            mx.loss_table(events, df).assign(
                notional=lambda t: t["notional"].map("{:,.0f}".format),
                loss=lambda t: t["loss"].map("{:,.0f}".format),
                share=lambda t: t["share"].map("{:.3f}".format),
            )
        )
    )
    out.append(
        "## Liquidity\n\n"
        + _fig(
            dest,
            fg.depth_heatmap(df, shocks=shocks),
            "depth",
            "Resting depth in bands of distance from the mid (band edges in basis points), "
            "as USD per basis point of each band, 10-minute mean, log colour scale: bids "
            "below the mid, asks above; white is an empty band (makers pulled their quotes).",
        )
    )
    out.append(_resilience(df, summary, trades, names))
    out.append(
        "## Leverage and margin\n\n"
        + _fig(
            dest,
            fg.margin_ratio(df, shocks=shocks),
            "margin_ratio",
            "Margin ratio (equity / maintenance margin) across accounts with positions: "
            "median, 25–75% and 5–95% bands; below the dashed line an account is liquidated.",
        )
        + "\n\n"
        + _fig(
            dest,
            fg.leverage(df, shocks=shocks),
            "leverage",
            "Aggregate leverage (gross notional / equity), open interest, and the number "
            "of accounts within 10% of their maintenance margin.",
        )
    )
    gens = mx.branching_by_generation(cascade)
    sizes = mx.cascade_sizes(cascade)
    out.append(
        "## Cascade\n\n"
        + _fig(
            dest,
            fg.cascade(cascade),
            "cascade",
            "Each liquidation at its minute and generation (generation 0 was set off by a "
            "shock or by the market itself, generation k by the forced orders of generation "
            "k−1 that moved the prices of what the account held); the three largest "
            "cascades by liquidated notional in colour with their links, the rest grey. "
            "Right: liquidations per generation and the mean children per liquidation (b).",
        )
        + (
            "\n\n"
            + _fig(
                dest,
                fg.cascade_by_venue(cascade),
                "cascade_venues",
                "The same liquidations coloured by the venue they happened on; right: the "
                "loss passed along cause → effect edges whose ends are on different venues, "
                "by channel (index: forced flow moved the value and so the spot prices "
                "another venue's index is made of; owner: the same owner's hedge was cut "
                "on another venue; treasury: a transfer to the account had not landed; "
                "shock: a world-wide shock recorded on the home venue).",
            )
            if fg.has_venues(df)
            else ""
        )
        + "\n\nLiquidations and branching ratio by generation:\n\n"
        + (_table(gens) if len(gens) else "no liquidations")
        + "\n\nLargest cascades:\n\n"
        + (_table(sizes.head(10)) if len(sizes) else "none")
    )
    dr = mx.exposure_debtrank(exposure, top=25)
    out.append(
        "## Exposure network and systemic importance\n\n"
        + _fig(
            dest,
            fg.exposure(exposure),
            "exposure",
            "Gross and net position notional by account type and market at the end of the "
            "run, from the exposure graph (account–market edges).",
        )
        + "\n\nDebtRank (Battiston et al. 2012) of the 25 largest holders, each starting "
        "fully distressed, on the account–market exposure graph (top 10):\n\n"
        + (_table(dr.head(10)) if len(dr) else "no positions")
    )
    facts = mx.stylized_facts(df[f"{names[0]}_mark"].to_numpy())
    out.append(
        f"## Stylized facts of {names[0]} returns\n\n"
        "Cont (2001): heavy tails (excess kurtosis > 0, tail index 2–5), no linear "
        "autocorrelation beyond short lags, slowly decaying autocorrelation of absolute "
        "returns. Horizons in minutes.\n\n" + (_table(facts) if len(facts) else "series too short")
    )
    out.append(
        "## Every summary value\n\nAs in `summary.json` (units: docs/outputs.md).\n\n"
        + _table(pd.DataFrame({"metric": list(flat), "value": list(flat.values())}))
    )
    return out


def _shocks(path: Path, events: pd.DataFrame) -> list:
    """The run's shocks labelled by kind and size (from its scenario.toml), else their
    steps (from the events)."""
    from . import figures as fg

    try:
        scenario = _read_toml(path, "scenario.toml")
        return fg.shock_marks(scenario.get("shocks", []))
    except (ReportError, KeyError, TypeError, ValueError):
        return fg.shock_steps(events)


def _headline(summary: dict, events: pd.DataFrame, df: pd.DataFrame) -> str:
    """The answer first: what was liquidated, who bore the losses, what was left, with
    units; then the books' checks."""
    from . import metrics as mx

    lt = mx.loss_table(events, df)
    borne = lt.set_index("bearer")["loss"]
    kept = summary.get("depth_retained_1h") or {}
    rows = [
        ("liquidations (waterfall entries)", _int(summary.get("liquidations"))),
        ("accounts liquidated", _int(summary.get("accounts_liquidated"))),
        ("liquidated notional", _money(summary.get("liquidated_notional"))),
        ("longs' share of liquidated notional", _pct(summary.get("long_share"))),
        ("bankrupt accounts", _int(summary.get("bankruptcies"))),
        ("losses borne by others than the liquidated (total)", _money(borne.get("total"))),
        *(
            (f"  … borne by {b.replace('_', ' ')}", _money(borne.get(b)))
            for b in borne.index
            if b != "total" and borne.get(b, 0.0) > 0.005
        ),
        ("bad debt written off", _money(summary.get("bad_debt"))),
        (
            "insurance fund, start → end",
            f"{_money(summary.get('insurance_fund_start'))} → "
            f"{_money(summary.get('insurance_fund_end'))}",
        ),
        (
            "largest cascade; depth; branching ratio",
            f"{_int(summary.get('cascade_largest_size'))} accounts; "
            f"{_int(summary.get('cascade_max_depth'))} generations; "
            f"{_num(summary.get('cascade_mean_branching'))}",
        ),
        (
            "depth within ±1% an hour after the first shock (share of before)",
            ", ".join(f"{m} {_pct(v)}" for m, v in kept.items()) or "—",
        ),
        (
            "books: state error; unbooked negative equity",
            f"{_money(summary.get('state_error'))}; "
            f"{_money(summary.get('unbooked_negative_equity'))}",
        ),
    ]
    return _table(pd.DataFrame(rows, columns=["", "value"]))


def _dust(v) -> float | None:
    """A number with float dust (below a thousandth of a cent) shown as 0."""
    if v is None:
        return None
    v = float(v)
    return 0.0 if abs(v) < 1e-5 else v


def _number(v) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _money(v) -> str:
    if v is not None and not _number(v):
        return _text(v)  # not a number: shown as the text it is, inert
    v = _dust(v)
    if v is None or v != v:
        return "—"
    return ("−" if v < 0 else "") + f"${abs(v):,.0f}"


def _int(v) -> str:
    if v is not None and not _number(v):
        return _text(v)
    return "—" if v is None or v != v else f"{int(v):,}"


def _pct(v) -> str:
    if v is not None and not _number(v):
        return _text(v)
    return "—" if v is None or v != v else f"{100 * float(v):.1f}%"


def _resilience(df: pd.DataFrame, summary: dict, trades: pd.DataFrame, names: list[str]) -> str:
    from . import metrics as mx

    rows = []
    hl = summary.get("resilience_half_life") or {}
    kept = summary.get("depth_retained_1h") or {}
    for k, name in enumerate(names):
        big = mx.large_trades(trades, market=k)
        idx = [s - 1 for s in big]
        rows.append(
            {
                "market": name,
                "depth ±1% half-life after shock (min)": hl.get(name),
                "depth ±1% an hour after shock (share of before)": kept.get(name),
                "replenished within 60 min after large trades": mx.replenishment_probability(
                    df[f"{name}_depth1"].to_numpy(), idx
                ),
                "events": len(idx),
            }
        )
    return (
        "Resilience (Large 2007; Degryse et al. 2005): the half-life of depth within ±1% "
        "of the mid after the first shock (none when it never got half of its loss back "
        "within 4 hours), that depth an hour after the shock as a share of its level "
        "before, and the share of large or forced trades after "
        "which depth got back to 90% of its previous level within an hour.\n\n"
        + _table(pd.DataFrame(rows))
    )


# --------------------------------------------------------------------- sweeps


def _sweep_report(path: Path, dest: Path) -> list[str]:
    table, note = _sweep_table(path)
    design = _read_toml(path, "experiment.toml")
    from . import figures as fg  # the plotting stack once the folder is read (as for a run)
    from . import metrics as mx

    fg.theme()
    params = [c for c in table.columns if c.startswith("param.")]
    # Grid parameters (a handful of levels each); a sampled design is read by Sobol below.
    varying = [p for p in params if 1 < table[p].nunique() <= 12]
    ok = table[table["status"] == "ok"]
    metrics = [
        m
        for m in (
            "liquidated_notional",
            "liquidations",
            "cascade_largest_size",
            "bankruptcies",
            "adl_events",
        )
        if m in table
    ]
    if "insurance_fund_start" in table:
        table["insurance_depletion"] = table["insurance_fund_start"] - table["insurance_fund_min"]
        ok = table[table["status"] == "ok"]
        metrics.append("insurance_depletion")
    out = [
        "## Design\n\n"
        + note
        + f"{len(table)} runs ({int((table['status'] == 'ok').sum())} finished, "
        f"{int((table['status'] == 'failed').sum())} failed); parameters: "
        + ", ".join(f"`{p.removeprefix('param.')}`" for p in params)
        + ".",
    ]
    if varying and len(ok):
        iv = mx.interval_table(ok, varying, metrics)
        agg = iv[[*varying, "runs"]].copy()
        for m in metrics:
            agg[m] = [
                _num(v) if not np.isfinite(lo) else f"{_num(v)} [{_num(lo)}, {_num(hi)}]"
                for v, lo, hi in zip(iv[m], iv[f"{m}_lo"], iv[f"{m}_hi"], strict=True)
            ]
        agg.columns = [c.removeprefix("param.") for c in agg.columns]
        seeds = ok.groupby(varying).size().min()
        out.append(
            f"## Mean over seeds ({seeds} or more per point), with a 95% seed-bootstrap "
            "interval from 3 runs a point\n\n" + _table(agg.head(60))
        )
    if len(varying) >= 2 and len(ok):
        x, y = varying[0], varying[1]
        for metric in metrics[:2]:
            out.append(
                _fig(
                    dest,
                    fg.heatmap(table, x, y, metric),
                    f"heatmap_{_slug(metric)}",
                    f"{fg.label(metric)}: mean over seeds for each pair of {fg.label(x)} and "
                    f"{fg.label(y)} (runs per cell in the title).",
                )
            )
    categorical = [p for p in varying if table[p].dtype.kind not in "fi"]
    if categorical and len(ok):
        x = categorical[0]
        others = [p for p in varying if p != x and table[p].nunique() <= 6]
        hue = others[0] if others else None
        for metric in metrics[:2]:
            out.append(
                _fig(
                    dest,
                    fg.points(table, x, metric, hue=hue),
                    f"points_{_slug(metric)}",
                    f"{fg.label(metric)} by {fg.label(x)}: mean over runs with a 95% "
                    "bootstrap interval (given only with 3 or more runs per point; the title "
                    "says how many), and every run as a dot.",
                )
            )
    if varying and len(ok) and table[varying[0]].dtype.kind in "fi":
        hue = varying[1] if len(varying) > 1 and table[varying[1]].nunique() <= 6 else None
        out.append(
            _fig(
                dest,
                fg.lines(table, varying[0], metrics[0], hue=hue),
                f"lines_{_slug(metrics[0])}",
                f"{fg.label(metrics[0])} against {fg.label(varying[0])}: mean over seeds, with "
                "a 95% bootstrap band when there are 3 or more runs per point (the title says "
                "how many).",
            )
        )
    if "cascade_largest_size" in ok and (ok["cascade_largest_size"] > 0).any():
        hue = next((p for p in varying if table[p].nunique() <= 6), None)
        out.append(
            _fig(
                dest,
                fg.ccdf(table, hue=hue),
                "ccdf",
                "Complementary CDF of the largest cascade (accounts) across runs, log-log: "
                "a straight tail is a power law.",
            )
        )
    shock = next((p for p in params if re.fullmatch(r"param\.shocks\.\d+\.size", p)), None)
    if "param.margin_mode" in varying and shock is not None and shock in varying:
        out.append(
            _fig(
                dest,
                fg.cross_vs_isolated(table, shock),
                "cross_vs_isolated",
                "Robust yet fragile? Liquidations and liquidated notional by margin mode "
                "across shock sizes (mean over seeds; 95% bootstrap bands from 3 runs per "
                "point on, the title says how many).",
            )
        )
    sample = design.get("sample")
    if sample and sample.get("method") == "sobol" and len(ok) == len(table):
        indices = sobol_indices(
            table, sample, [m for m in ("liquidated_notional", "insurance_depletion") if m in table]
        )
        out.append(
            "## Sensitivity\n\n"
            + _fig(
                dest,
                fg.sobol(indices),
                "sobol",
                "First-order and total Sobol indices with 95% confidence intervals.",
            )
            + "\n\n"
            + _table(indices)
        )
    return out


def sobol_indices(table: pd.DataFrame, sample: dict, outputs: list[str]) -> pd.DataFrame:
    """Sobol indices (SALib, Saltelli estimator) of each output over the sampled bounds.

    Runs with several seeds per design point are averaged over seeds first.
    """
    from SALib.analyze import sobol

    names = list(sample["bounds"])
    problem = {
        "num_vars": len(names),
        "names": names,
        "bounds": [sample["bounds"][k] for k in names],
    }
    per_point = table.groupby("point")[outputs].mean().sort_index()
    rows = []
    for out in outputs:
        res = sobol.analyze(
            problem, per_point[out].to_numpy(dtype=float), calc_second_order=False, seed=0
        )
        for k, name in enumerate(names):
            rows.append(
                {
                    "output": out,
                    "parameter": name,
                    "S1": float(res["S1"][k]),
                    "S1_conf": float(res["S1_conf"][k]),
                    "ST": float(res["ST"][k]),
                    "ST_conf": float(res["ST_conf"][k]),
                }
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------- html


def _html(title: str, md: str, root: Path) -> str:
    """Self-contained HTML of ``md``; only the report's own figures (plain names in
    ``root/figures``, regular files) are embedded."""
    body = markdown.markdown(md, extensions=["tables"])
    figures = root / "figures"

    def embed(match: re.Match) -> str:
        f = figures / match.group(1)
        if f.is_symlink() or not f.is_file():
            return match.group(0)
        data = base64.b64encode(f.read_bytes()).decode()
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="figures/([A-Za-z0-9_-]+\.png)"', embed, body)
    style = (
        "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;"
        "color:#222;line-height:1.45}img{max-width:100%}table{border-collapse:collapse;"
        "font-size:.9em}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}"
        "th{background:#f3f3f3}em{color:#555}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body>{body}</body></html>\n"
    )


def _num(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        v = _dust(v)
        return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
    return str(v)


def _plain_id(run_id: object) -> bool:
    """A run id as the sweep writes them (hex digits), not a path."""
    return isinstance(run_id, str) and re.fullmatch(r"[0-9a-f]{4,64}", run_id) is not None


def _slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", s.lower()).strip("_")
