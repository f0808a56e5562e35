"""The numbers of docs/experiments.md, from the sweeps it describes.

Each sweep is made by ``crossmargin sweep experiments/NAME.toml --out results/exp20/NAME``;
this prints, per design point, the mean over seeds with its 95% seed-bootstrap interval
(:func:`crossmargin.analysis.metrics.interval_table`) and the contrasts paired by seed
(:func:`crossmargin.analysis.metrics.paired_difference`) that the page quotes.

Run: ``.venv/bin/python docs/scripts/experiments_tables.py NAME [NAME ...]``
"""

from __future__ import annotations

import sys

import pandas as pd
from crossmargin.analysis.metrics import interval_table, paired_difference

ROOT = "results/exp20"

# What each page section reads: (factor columns of the tables, metrics, contrasts as
# (column, a, b) read a - b paired by seed).
SECTIONS = {
    "cross_vs_isolated": (
        ["param.margin_mode", "param.shocks.0.size"],
        ["liquidations", "bankruptcies", "fund_loss", "adl_charged", "orders_rejected.leveraged"],
        [("param.margin_mode", "cross", "isolated"), ("param.margin_mode", "portfolio", "cross")],
    ),
    "leverage_grid": (
        ["param.leverage_cap", "param.mmr_scale"],
        [
            "liquidations",
            "cascade_largest_size",
            "bankruptcies",
            "liquidated_notional",
            "fund_loss",
        ],
        [
            ("param.leverage_cap", 10.0, 5.0),
            ("param.leverage_cap", 50.0, 10.0),
            ("param.mmr_scale", 1.9, 0.5),
        ],
    ),
    "liquidation_mechanism": (
        ["param.liquidation.backstop", "param.liquidation.fee", "param.liquidation.step_share"],
        [
            "liquidations",
            "backstop_notional",
            "takeover_notional",
            "fund_loss",
            "adl_events",
            "bankruptcies",
            "vault_pnl",
        ],
        [
            ("param.liquidation.backstop", True, False),
            ("param.liquidation.fee", 0.015, 0.0),
            ("param.liquidation.step_share", 0.25, 1.0),
        ],
    ),
    "correlation": (
        ["param.agents.leveraged.portfolio", "param.correlation"],
        ["liquidations", "liquidated_notional"],
        [("param.agents.leveraged.portfolio", "correlation_aware", "naive")],
    ),
    "market_maker_resilience": (
        ["param.agents.market_makers.withdraw_vol", "param.agents.market_makers.replenish_rate"],
        [
            "liquidations",
            "bankruptcies",
            "max_drawdown.BTC",
            "depth_retained_1h.BTC",
            "depth_retained_1h.ETH",
        ],
        [
            ("param.agents.market_makers.withdraw_vol", 0.008, 0.001),
            ("param.agents.market_makers.replenish_rate", 1.0, 0.05),
        ],
    ),
    "mark_price_rule": (
        ["param.mark_rule", "param.collateral.price_source"],
        ["bankruptcies", "liquidated_notional", "accounts_liquidated"],
        [
            ("param.mark_rule", "index", "median"),
            ("param.mark_rule", "index", "book_mid"),
            ("param.mark_rule", "index", "last_trade"),
            ("param.collateral.price_source", "index", "book"),
        ],
    ),
}


def main(names: list[str]) -> None:
    for name in names:
        factors, metrics, contrasts = SECTIONS[name]
        t = pd.read_parquet(f"{ROOT}/{name}/summary.parquet")
        t = t[t["status"] == "ok"].assign(fund_loss=lambda d: d["loss_borne.insurance_fund"])
        print(
            f"\n=== {name}: {len(t)} runs, {t['seed'].nunique()} seeds, largest state error "
            f"{t['state_error'].abs().max():.2g} USD"
        )
        for f in factors:  # each factor alone, pooling the others
            print(interval_table(t, [f], metrics).round(4).to_string(index=False))
        print(interval_table(t, factors[:2], metrics[:1]).round(4).to_string(index=False))
        for col, a, b in contrasts:  # within every level of the first other factor
            rest = [f for f in factors if f != col]
            levels = sorted(t[rest[0]].unique(), key=str) if rest else [None]
            for lv in levels:
                s = t if lv is None else t[t[rest[0]] == lv]
                for m in metrics[:3]:
                    v, lo, hi = paired_difference(s, col, a, b, m)
                    at = "" if lv is None else f" at {rest[0]}={lv}"
                    print(f"{col}: {a} - {b}{at}, {m}: {v:.4g} [{lo:.4g}, {hi:.4g}]")
            for m in metrics[:3]:  # pooled over the other factors within a seed
                v, lo, hi = paired_difference(t, col, a, b, m)
                print(f"{col}: {a} - {b}, all, {m}: {v:.4g} [{lo:.4g}, {hi:.4g}]")


if __name__ == "__main__":
    main(sys.argv[1:] or list(SECTIONS))
