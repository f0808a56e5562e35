"""Venue rule presets: the risk engine, index and fees of a real venue, named and dated
after the version of the rules they copy (``../shared/REFERENCE.md`` gives the sources).

A preset is a set of scenario changes (applied to the world's scenario for that venue,
before the venue's own ``changes``) and an index rule (for a perpetual venue in a world
of venues). Fields a preset does not name keep the world's values.
"""

from __future__ import annotations

from typing import Any

__all__ = ["VENUE_RULES"]

VENUE_RULES: dict[str, dict[str, Any]] = {
    # Binance USDⓈ-M, 2025: liquidation by IOC orders into the book, the insurance
    # fund takes over what the book cannot absorb, ADL (PnL% × leverage) only when it
    # cannot cover, at the bankruptcy price; no vault. Mark = median of three
    # estimates (index + basis, mid, last). Index: volume-weighted spot prices with
    # each source capped at 3% from the median (the later wording of Binance's index
    # page; 1% for BTC and ETH is not modelled). Fees 0.02% maker / 0.05% taker.
    "binance_2025": {
        "changes": {
            "liquidation.venue": "binance",
            "liquidation.adl_rank": "pnl_leverage",
            "vault_capital": 0.0,
            "mark_rule": "median",
            "fees.maker": 0.0002,
            "fees.taker": 0.0005,
        },
        "index": {"rule": "capped_mean", "cap": 0.03, "stale_steps": 5},
    },
    # Hyperliquid, 2025: oracle = weighted median of venues' spot prices; mark = median
    # of three components; positions liquidated 20% at a time with a 30-second
    # cool-down (two slices per one-minute step); below 2/3 of maintenance margin the
    # HLP vault takes over (full_ratio = 2/3: the whole book goes, the vault backstops
    # what the book does not take); ADL at the mark, ranked by (mark / entry) ×
    # (notional / account value); no separate insurance-fund takeover. Fees 0.015% /
    # 0.045%.
    "hyperliquid_2025": {
        "changes": {
            "liquidation.venue": "hyperliquid",
            "liquidation.adl_rank": "mark_entry_leverage",
            "liquidation.step_share": 0.2,
            "liquidation.max_partial_steps": 2,
            "liquidation.full_ratio": 2 / 3,
            "mark_rule": "median",
            "fees.maker": 0.00015,
            "fees.taker": 0.00045,
        },
        "index": {"rule": "weighted_median", "stale_steps": 5},
    },
    # BitMEX, March 2020: the insurance fund absorbs losses (ADL when it cannot, at the
    # bankruptcy price, ranked by PnL% × leverage); no vault; full liquidation (no
    # partial steps on the small accounts that dominated then); index = mean of the
    # constituents, a constituent more than 25% from the median excluded and
    # readmitted after 15 minutes back within 2%. Fees −0.025% maker / 0.075% taker.
    "bitmex_2020": {
        "changes": {
            "liquidation.venue": "bitmex",
            "liquidation.adl_rank": "pnl_leverage",
            "liquidation.step_share": 1.0,
            "vault_capital": 0.0,
            "mark_rule": "median",
            "fees.maker": -0.00025,
            "fees.taker": 0.00075,
        },
        "index": {
            "rule": "exclusion",
            "exclude": 0.25,
            "readmit": 0.02,
            "readmit_steps": 15,
            "stale_steps": 5,
        },
    },
}
"""Venue rule presets by name: ``changes`` (scenario fields) and ``index`` (the index
rule's fields)."""
