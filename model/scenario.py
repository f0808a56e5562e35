"""Scenarios: every parameter of a run, validated by pydantic, read from and written to TOML.

One step is one minute. Volatilities are daily (converted to per-step inside the
model); rates are per step unless the name says otherwise. A scenario is immutable:
``scenario.replace(**changes)`` returns a validated copy, with nested fields named by
dotted keys (``"liquidation.fee"``) or double underscores (``liquidation__fee``, the
form Mesa's ``batch_run`` can pass as a keyword).
"""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .risk import VENUES

__all__ = [
    "PRESET_DIR",
    "STEPS_PER_DAY",
    "AgentsConfig",
    "CollateralConfig",
    "CrossAgentsConfig",
    "EntrantConfig",
    "FeeConfig",
    "FundamentalistConfig",
    "FundingConfig",
    "ImpactConfig",
    "IndexRuleConfig",
    "LeveragedConfig",
    "LiquidationConfig",
    "MarketConfig",
    "MarketMakerConfig",
    "MomentumConfig",
    "NoiseConfig",
    "Scenario",
    "ScenarioError",
    "ShockConfig",
    "Tier",
    "TransferConfig",
    "VenueConfig",
    "presets",
    "read_toml",
    "scenario_path",
    "set_dotted",
]

STEPS_PER_DAY = 1440
PRESET_DIR = Path(__file__).resolve().parent.parent / "experiments" / "scenarios"
"""Where the shipped scenarios live (``crossmargin/experiments/scenarios`` once
installed); read as files, so the model imports nothing from ``experiments``."""


class ScenarioError(ValueError):
    """A bad scenario: the message is one line naming the field and the reason."""


MAX_STEPS = 1_000_000
"""Default upper bound on ``steps`` (about two years of minutes); ``size_guard = false``
lifts it and :data:`MAX_AGENTS`."""
MAX_AGENTS = 200_000
"""Default upper bound on the number of agents of a scenario."""
MAX_SHOCKS = 10_000
"""Default upper bound on the number of shocks of a scenario."""
MAX_MARKETS = 64
"""Default upper bound on the number of markets of a scenario."""
MAX_TICKS = 10**12
"""``price / tick`` must stay below this, so that prices after any shock stay far from
the order book's integer sentinel (2**62 ticks)."""
NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
"""A scenario name is a plain file-name component (it names the run's folder)."""
TICKER = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$"
"""A market or collateral name: letters, digits, ``_`` and ``-`` (it names columns)."""
USD_MAX = 1e15
"""Upper bound on any amount of money in a scenario (USD)."""


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        validate_default=True,
        allow_inf_nan=False,
        use_attribute_docstrings=True,
    )


class Tier(_Strict):
    """A margin tier (Binance-style risk limit)."""

    max_notional: float = Field(gt=0, allow_inf_nan=True, description="USD; inf for the last")
    mmr: float = Field(gt=0, lt=1)
    """Maintenance margin rate of the tier (fraction of notional)."""
    max_leverage: float = Field(gt=0, le=1000)
    """Leverage cap of the tier; its initial margin is 1 / max_leverage."""

    @model_validator(mode="after")
    def _mmr_below_im(self) -> Tier:
        if self.mmr >= 1 / self.max_leverage:
            raise ValueError(
                f"mmr {self.mmr} must be below the initial margin 1/max_leverage = "
                f"{1 / self.max_leverage:.4g}"
            )
        return self


class MarketConfig(_Strict):
    """A perpetual market and the index process behind it."""

    name: str = Field(pattern=TICKER)
    """Ticker; names the market's columns."""
    price: float = Field(gt=0, le=1e12, description="initial index price, USD")
    tick: float = Field(gt=0, le=1e12)
    """Price increment, USD."""
    lot: float = Field(ge=1e-12, le=1e12)
    """Size increment, units of the asset."""
    volatility: float = Field(0.03, ge=0, le=5, description="daily volatility of the index")
    jump_intensity: float = Field(0.0, ge=0, le=1440, description="idiosyncratic jumps per day")
    jump_mean: float = Field(0.0, ge=-5, le=5, description="mean log jump size")
    jump_std: float = Field(0.0, ge=0, le=5, description="std of the log jump size")
    beta: float = Field(1.0, ge=-20, le=20, description="loading on market-wide jumps")
    liquidity: float = Field(1.0, gt=0, le=1000, description="multiplier of market-maker depth")
    tiers: tuple[Tier, ...] = (Tier(max_notional=math.inf, mmr=0.005, max_leverage=50),)
    """Margin tiers by notional (Binance-style risk limits), ascending."""
    stress_move: float = Field(0.12, gt=0, lt=1)
    """The market's move in the portfolio-margin stress grid and the insurance fund's
    carrying margin (fraction)."""

    @field_validator("tiers")
    @classmethod
    def _ascending(cls, tiers: tuple[Tier, ...]) -> tuple[Tier, ...]:
        if not tiers:
            raise ValueError("at least one tier is needed")
        caps = [t.max_notional for t in tiers]
        if caps != sorted(caps) or len(set(caps)) != len(caps):
            raise ValueError("max_notional must strictly increase")
        mmr = [t.mmr for t in tiers]
        if mmr != sorted(mmr):
            raise ValueError("mmr must not fall from one tier to the next")
        if any(math.isnan(c) for c in caps):
            raise ValueError("max_notional must be a number")
        return tiers

    @model_validator(mode="after")
    def _tick_room(self) -> MarketConfig:
        if self.price / self.tick > MAX_TICKS:
            raise ValueError(
                f"tick: price / tick = {self.price / self.tick:.3g} ticks is beyond the "
                f"order book's room ({MAX_TICKS:.0e}); use a larger tick"
            )
        if self.price * self.lot < 1e-9:
            raise ValueError(f"lot: one lot is worth {self.price * self.lot:.3g} USD, below 1e-9")
        return self


class CollateralConfig(_Strict):
    """A collateral token and its own spot book."""

    name: str = Field("USDX", pattern=TICKER)
    """Ticker of the token."""
    haircut: float = Field(0.95, ge=0, le=1)
    """Collateral value ratio (fraction of its price counted as margin)."""
    price_source: Literal["index", "book", "pool_nav"] = "book"
    """How the venue prices it: the index, its own spot book, or its pool's NAV."""
    tick: float = Field(0.0001, gt=0, le=1e6)
    """Price increment of its spot book, USD."""
    lot: float = Field(1.0, ge=1e-9, le=1e9)
    """Size increment of its spot book, tokens."""
    peg: float = Field(1.0, gt=0, le=1e6)
    """The price it is meant to hold, USD."""
    supply: float = Field(50_000_000.0, ge=0, le=USD_MAX, description="tokens outstanding")
    vault_stake: float = Field(
        0.0, ge=0, le=1, description="share of the pool's backing held as backstop-vault shares"
    )
    book_depth: float = Field(
        200_000.0, ge=0, le=USD_MAX, description="USD of quotes per side on its book"
    )
    book_levels: int = Field(5, ge=1, le=100)
    """Levels per side of the peg keeper's quotes."""
    book_gap_bps: float = Field(10.0, gt=0, le=5000)
    """Gap between the peg keeper's levels, basis points."""
    one_sided: Literal["last", "conversion"] = Field(
        "last",
        description="the price of a book-priced token when its book is one-sided: the "
        "last trade, or the conversion ratio (redemption value), as Binance adopted",
    )
    arbitrage_capital: float = Field(
        0.0,
        ge=0,
        le=USD_MAX,
        description="USD of an arbitrageur who buys the token below its redemption value "
        "on this book and redeems it at the pool (and mints and sells above); 0 = none",
    )
    redeem_fee: float = Field(0.001, ge=0, lt=0.5, description="mint and redeem fee")
    redeem_delay: int = Field(
        60, ge=1, le=MAX_STEPS, description="steps before a redemption's cash can be reused"
    )

    @model_validator(mode="after")
    def _book_room(self) -> CollateralConfig:
        if self.price_source == "book" and self.book_depth <= 0:
            raise ValueError("book_depth: a collateral priced off its own book needs depth > 0")
        if self.peg / self.tick > MAX_TICKS or self.peg / self.tick < 10:
            raise ValueError(f"tick: peg / tick must be between 10 and {MAX_TICKS:.0e} ticks")
        return self


class FeeConfig(_Strict):
    maker: float = Field(0.0002, ge=-0.001, le=0.01)
    """Maker fee rate on notional (negative: a rebate)."""
    taker: float = Field(0.0005, ge=0, le=0.01)
    """Taker fee rate on notional."""


class FundingConfig(_Strict):
    """Perpetual funding as on Binance: F = P + clamp(I − P, ±0.05%), capped."""

    interval: int = Field(480, ge=1, le=MAX_STEPS, description="steps between payments (480 = 8 h)")
    interest: float = Field(0.0001, ge=-0.01, le=0.01, description="interest rate per interval")
    clamp: float = Field(0.0005, ge=0, le=0.1)
    """Clamp of (interest − premium) in the funding formula, per interval."""
    cap: float = Field(0.0075, gt=0, le=0.5)
    """Largest funding rate per interval."""


class LiquidationConfig(_Strict):
    """The liquidation waterfall (:mod:`model.risk`). ``venue`` names a preset of its
    mechanism (``binance``, ``bybit``, ``bitmex``, ``hyperliquid``): the keys it sets
    (``backstop``, ``fund_takeover``, ``shortfall``, ``adl_price``) take the venue's
    values unless the table gives them."""

    venue: Literal["binance", "bybit", "bitmex", "hyperliquid"] | None = None
    """A venue style that sets backstop, fund_takeover, shortfall and adl_price (risk.VENUES)."""
    step_share: float = Field(0.25, gt=0, le=1)
    """Share of every position closed per partial liquidation step (1 = no partials)."""
    target_ratio: float = Field(1.25, ge=1, le=100)
    """Partial liquidation stops once equity ≥ target_ratio × MM."""
    full_ratio: float = Field(0.5, ge=0, le=1)
    """Below this margin ratio (equity / MM) everything is closed at once."""
    max_partial_steps: int = Field(4, ge=1, le=100)
    """Partial steps per account and round before going full."""
    fee: float = Field(0.002, ge=0, lt=0.2)
    """Liquidation fee rate on the notional closed, paid to the insurance fund."""
    max_slippage: float = Field(0.05, gt=0, lt=1)
    """Forced orders of an account already bankrupt fill within this fraction of the mark."""
    backstop: bool = Field(True, description="the backstop vault takes over first")
    fund_takeover: bool = Field(True, description="the insurance fund takes over what is left")
    insurance_floor: float = Field(
        0.0, ge=0, le=USD_MAX, description="USD; the fund is exhausted at or below it (then ADL)"
    )
    shortfall: Literal["adl", "socialized"] = "adl"
    """What charges a shortfall once the fund is exhausted: ranked ADL or socialized loss."""
    adl_price: Literal["bankruptcy", "mark"] = "bankruptcy"
    """The price of ADL closes: the bankrupt account's bankruptcy price or the mark
    (Hyperliquid)."""
    adl_rank: Literal["pnl_leverage", "mark_entry_leverage"] = "pnl_leverage"
    """How ADL ranks the profitable: PnL% × effective leverage (Bybit, BitMEX, Binance)
    or (mark / entry) × (notional / account value) (Hyperliquid's ADL index)."""
    unwind_share: float = Field(
        0.1, ge=0, le=1, description="share of vault/fund inventory worked out per step"
    )
    unwind_band: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="pool unwinding offers no lower (bids no higher) than mark ∓ band; "
        "0 = at the mark, which never drags the mark along",
    )
    fund_max_hold: int = Field(
        60,
        ge=1,
        le=MAX_STEPS,
        description="steps the insurance fund warehouses a position before it closes the "
        "rest (into the book, then ADL at the mark): the venue's unwind speed",
    )
    pool_buffer: float = Field(
        0.8,
        ge=0,
        le=1,
        description="a pool over its limit (vault above its leverage cap, fund beyond what "
        "it can carry) cuts to this share of the limit",
    )
    max_rounds: int = Field(10, ge=1, le=1000)
    """Cascade rounds per step at most."""

    @model_validator(mode="before")
    @classmethod
    def _venue_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("venue") is not None:
            preset = VENUES.get(data["venue"], {})
            data = {**preset, **data}
        return data


class LeveragedConfig(_Strict):
    count: int = Field(1000, ge=0, le=10**7)
    """Number of leveraged traders."""
    capital_median: float = Field(10_000.0, gt=0, le=1e12)
    """Median capital, USD (lognormal)."""
    capital_sigma: float = Field(1.2, ge=0, le=5)
    """Sigma of log capital."""
    leverage_median: float = Field(5.0, gt=0, le=1000)
    """Median target leverage (×)."""
    leverage_tail: float = Field(
        1.5, gt=0, le=100, description="Pareto tail index of leverage above the median"
    )
    max_leverage: float = Field(25.0, gt=0, le=1000, description="a trader never targets more")
    long_bias: float = Field(0.7, ge=0, le=1)
    """Probability that a position is long (a position share, not a liquidation share)."""
    markets_per_trader: int = Field(2, ge=1, le=1000)
    """Markets each trader holds."""
    portfolio: Literal["naive", "correlation_aware"] = "naive"
    """How a trader picks its markets."""
    activation_rate: float = Field(0.02, ge=0, le=100)
    """Activations per step (Poisson)."""
    rebalance_band: float = Field(0.25, ge=0, le=10)
    """Rebalance when leverage is off its target by this share."""
    call_ratio: float = Field(1.5, ge=1, le=100)
    """Margin ratio (equity / MM) below which the trader tops up or de-risks."""
    reserve_share: float = Field(0.3, ge=0, le=100, description="off-exchange cash / capital")
    borrow_rate: float = Field(0.00001, ge=0, le=0.01, description="per step on cash topped up")
    derisk_share: float = Field(0.3, gt=0, le=1)
    """Share of each position sold when the trader de-risks."""
    collateral_share: float = Field(0.0, ge=0, le=1, description="capital posted as the token")


class MarketMakerConfig(_Strict):
    count: int = Field(20, ge=0, le=10**7)
    """Number of market makers."""
    capital: float = Field(2_000_000.0, gt=0, le=1e12)
    """Each maker's capital, USD."""
    levels: int = Field(5, ge=1, le=100)
    """Price levels per side."""
    level_gap_bps: float = Field(5.0, gt=0, le=10000)
    """Gap between levels (the ladder's grid), basis points."""
    half_spread_bps: float = Field(2.0, gt=0, le=10000)
    """Base half-spread, basis points."""
    size_usd: float = Field(
        20_000.0, gt=0, le=1e12, description="quote size per level (× market liquidity)"
    )
    vol_widen: float = Field(
        2.0, ge=0, le=1000, description="half-spread += vol_widen × per-step vol"
    )
    index_weight: float = Field(0.5, ge=0, le=1, description="weight of the index in the reference")
    inventory_limit: float = Field(
        0.5, gt=0, le=100, description="|inventory| / capital that stops quoting"
    )
    skew: float = Field(1.0, ge=0, le=100)
    """Inventory skew of the reference (share of the half-spread at the inventory limit)."""
    replenish_rate: float = Field(
        0.5, ge=0, le=1, description="chance a hit level refills per step"
    )
    withdraw_vol: float = Field(
        0.004, gt=0, le=1, description="per-step realized vol that pulls quotes"
    )
    withdraw_loss: float = Field(
        0.1, gt=0, le=10, description="drawdown (share of capital) that pulls quotes"
    )
    cooldown: int = Field(30, ge=1, le=MAX_STEPS)
    """Steps a maker stays out after pulling its quotes."""
    reentry: Literal["calm", "cooldown"] = Field(
        "calm",
        description="calm: a maker that pulled quotes returns only once volatility is "
        "back under its limit; cooldown: it returns after the cool-down with quotes "
        "widened by volatility and sized down by limit/vol, pulling them again only if "
        "volatility rises half as much again, and tightening as it decays",
    )
    vol_source: Literal["mark", "index"] = Field(
        "mark",
        description="the volatility a maker widens with and withdraws on: this venue's "
        "mark (which gaps when the book empties, so an empty book keeps makers out) or "
        "the index, the fair price on the venues where makers hedge",
    )
    capacity: Literal["cooldown", "capital"] = Field(
        "cooldown",
        description="cooldown: the maker pulls its quotes on volatility, drawdown or "
        "inventory and returns after a cool-down; capital: it never leaves for volatility, "
        "its quote size is (equity / capital)² (none after losing withdraw_loss) times its "
        "inventory headroom, so depth comes back only with its capital",
    )
    take_stale: bool = Field(
        False,
        description="a maker whose bid (ask) would cross a resting ask (bid) takes it "
        "first, IOC at its own price, one quote's size: stale orders left behind by a "
        "move of the reference are picked off (latency arbitrage), as they are within "
        "seconds on real venues; false: post-only quotes only",
    )
    activation_rate: float = Field(3.0, ge=0, le=100)
    """Activations per step (Poisson)."""


class EntrantConfig(MarketMakerConfig):
    """Liquidity providers that are not in the market until it pays: they start quoting
    a market when its spread exceeds ``entry_spread_bps`` and leave once it has stayed
    under ``exit_spread_bps`` for ``min_stay`` steps (new market makers arriving after
    a crash, as on 10 October 2025 when spreads widened tenfold). With ``entry_funding``
    they also enter while the predicted funding rate pays for the risk (its size, either
    sign, above ``entry_funding`` per interval: the side against the crowd is paid), and
    stay while it does."""

    count: int = Field(0, ge=0, le=10**7)
    """Number of liquidity entrants."""
    entry_spread_bps: float = Field(20.0, gt=0, le=10000)
    """An entrant starts quoting a market when its spread exceeds this, basis points."""
    entry_funding: float | None = Field(
        None,
        gt=0,
        le=0.5,
        description="also enter while |predicted funding rate| per interval exceeds this; "
        "none: spreads only",
    )
    exit_spread_bps: float = Field(5.0, gt=0, le=10000)
    """... and leaves once it has stayed below this, basis points."""
    min_stay: int = Field(60, ge=1, le=MAX_STEPS)
    """... for this many steps."""
    reentry: Literal["calm", "cooldown"] = "cooldown"
    """How an entrant that pulled its quotes comes back (as market makers)."""


class NoiseConfig(_Strict):
    count: int = Field(300, ge=0, le=10**7)
    """Number of noise traders."""
    capital: float = Field(50_000.0, gt=0, le=1e12)
    """Each noise trader's capital, USD."""
    activation_rate: float = Field(0.2, ge=0, le=100)
    """Activations per step (Poisson)."""
    limit_share: float = Field(0.6, ge=0, le=1)
    """Share of activations that place a limit order."""
    market_share: float = Field(0.15, ge=0, le=1)
    """Share that place a market order (the rest cancel)."""
    size_usd: float = Field(1_000.0, gt=0, le=1e12)
    """Mean order size, USD (exponential)."""
    offset_bps: float = Field(
        30.0, gt=0, le=10000, description="limit orders up to this far from the touch"
    )
    max_orders: int = Field(4, ge=1, le=1000)
    """Resting orders per trader at most (the oldest is cancelled)."""


class FundamentalistConfig(_Strict):
    count: int = Field(50, ge=0, le=10**7)
    """Number of fundamentalists."""
    capital: float = Field(200_000.0, gt=0, le=1e12)
    """Each one's capital, USD."""
    activation_rate: float = Field(0.1, ge=0, le=100)
    """Activations per step (Poisson)."""
    threshold_bps: float = Field(10.0, ge=0, le=10000)
    """Trade when the book is this far from the index, basis points."""
    size_usd: float = Field(20_000.0, gt=0, le=1e12)
    """Order size at the threshold, USD (up to 3×)."""
    max_leverage: float = Field(3.0, gt=0, le=1000)
    """Gross notional / equity at most (×)."""


class MomentumConfig(_Strict):
    count: int = Field(50, ge=0, le=10**7)
    """Number of momentum traders."""
    capital: float = Field(50_000.0, gt=0, le=1e12)
    """Each one's capital, USD."""
    activation_rate: float = Field(0.05, ge=0, le=100)
    """Activations per step (Poisson)."""
    lookback: int = Field(30, ge=1, le=MAX_STEPS)
    """Steps of the trailing return."""
    threshold: float = Field(0.003, ge=0, le=1)
    """Trade when the trailing log return exceeds this."""
    size_usd: float = Field(5_000.0, gt=0, le=1e12)
    """Order size, USD."""
    max_leverage: float = Field(5.0, gt=0, le=1000)
    """Gross notional / equity at most (×)."""


class AgentsConfig(_Strict):
    leveraged: LeveragedConfig = LeveragedConfig()
    """Leveraged traders."""
    market_makers: MarketMakerConfig = MarketMakerConfig()
    """Market makers."""
    entrants: EntrantConfig = EntrantConfig()
    """Liquidity entrants."""
    noise: NoiseConfig = NoiseConfig()
    """Zero-intelligence noise traders."""
    fundamentalists: FundamentalistConfig = FundamentalistConfig()
    """Fundamentalists (basis traders)."""
    momentum: MomentumConfig = MomentumConfig()
    """Momentum traders."""
    carry_leverage: float = Field(
        3.0,
        gt=0,
        le=1000,
        description="leverage of the basis desk holding the other side of the initial OI",
    )


class IndexRuleConfig(_Strict):
    """How a perpetual venue makes its index from the prices of its constituent spot
    venues (``../shared/REFERENCE.md``, index and oracle rules).

    ``weighted_median``: the weighted median of the constituents' prices (Hyperliquid's
    oracle). ``capped_mean``: the weighted mean with each price clamped to the median ×
    (1 ± ``cap``) (OKX; Binance's later wording). ``exclusion``: the weighted mean of
    the constituents within ``exclude`` of the median; one excluded is readmitted once
    it has been back within ``readmit`` for ``readmit_steps`` steps (BitMEX). In every
    rule a constituent with no price (an empty book) for ``stale_steps`` steps is left
    out until it has one again.
    """

    rule: Literal["weighted_median", "capped_mean", "exclusion"] = "weighted_median"
    """weighted_median (Hyperliquid's oracle), capped_mean (each price clamped to the
    median ± cap: OKX, Binance) or exclusion (a price beyond ``exclude`` from the median
    left out until readmitted: BitMEX)."""
    constituents: dict[str, float] = Field(default_factory=dict)
    """Spot venue name → weight (≥ 0); empty: every spot venue, weight 1."""
    cap: float = Field(0.03, gt=0, lt=1)
    """capped_mean: a price is clamped to median × (1 ± cap)."""
    exclude: float = Field(0.05, gt=0, lt=1)
    """exclusion: a price further than this from the median is left out."""
    readmit: float = Field(0.02, gt=0, lt=1)
    """exclusion: ... and readmitted once back within this ..."""
    readmit_steps: int = Field(15, ge=0, le=MAX_STEPS)
    """exclusion: ... for this many steps."""
    stale_steps: int = Field(5, ge=1, le=MAX_STEPS)
    """A constituent without a price for this many steps is left out."""

    @field_validator("constituents")
    @classmethod
    def _weights(cls, w: dict[str, float]) -> dict[str, float]:
        for name, x in w.items():
            if not (isinstance(x, int | float) and math.isfinite(x)) or x < 0:
                raise ValueError(f"weight of {name!r} must be a number >= 0, got {x!r}")
        if w and sum(w.values()) <= 0:
            raise ValueError("the weights must not all be 0")
        return w


class VenueConfig(_Strict):
    """One venue of a world of venues: its kind, the real venue whose rules it copies,
    its index rule, its share of the leveraged traders and its own changes to the
    world's scenario (fees, waterfall, agents, ...)."""

    name: str = Field(pattern=TICKER)
    """The venue's name (events, frames and accounts carry it)."""
    kind: Literal["spot", "perp"] = "perp"
    """spot: assets against cash, no leverage, no shorting; perp: perpetual futures."""
    rules: Literal["binance_2025", "hyperliquid_2025", "bitmex_2020"] | None = None
    """A venue rule preset (model.rules.VENUE_RULES): waterfall, ADL ranking, mark,
    fees and index rule of the named venue as of the dated version."""
    index: IndexRuleConfig | None = None
    """perp: the index rule over the spot venues (default: the preset's, else a weighted
    median of every spot venue)."""
    leveraged_share: float = Field(0.0, ge=0, le=1)
    """perp: the share of the world's leveraged traders that trade here."""
    population: float = Field(1.0, ge=0, le=100)
    """The world's counts of market makers, entrants, noise traders, fundamentalists and
    momentum traders × this are the venue's own (rounded)."""
    changes: dict[str, Any] = Field(default_factory=dict)
    """Scenario fields for this venue only, dotted keys (``"fees.taker"``,
    ``"agents.noise.count"``); applied after the rule preset."""


class ImpactConfig(_Strict):
    """How aggregate signed order flow moves the latent (efficient) price in a world of
    venues: a propagator (Bouchaud, Gefen, Potters & Wyart 2004) whose instantaneous
    impact is the square root of the minute's flow over the minute's volume and whose
    kernel decays as (1 + τ/τ0)^−1/2 towards a permanent share, so that a metaorder at a
    fixed participation rate moves the price by ≈ Y σ √(Q/V) (Tóth et al. 2011); flow in
    one asset moves the others through the correlation matrix (cross-impact aligned
    with correlations, Benzaquen, Mastromatteo, Eisler & Bouchaud 2017)."""

    y: float = Field(0.7, ge=0, le=10)
    """The square-root law's prefactor Y (order 1 in every market studied)."""
    permanent: float = Field(0.1, ge=0, le=1)
    """Share of the impact that never decays (the information in the flow)."""
    tau0: float = Field(1.0, gt=0, le=1440)
    """Minutes of the kernel's short-time cut-off."""
    window: int = Field(720, ge=1, le=100_000)
    """Minutes of flow history the transient part remembers."""
    cross: float = Field(1.0, ge=0, le=1)
    """Scale of cross-impact: 1 = the flow of asset j moves i by its correlation, 0 = none."""
    daily_volume: float = Field(2e8, gt=0, le=USD_MAX)
    """USD traded per day in an asset of liquidity 1 across all venues (× each market's
    liquidity): the V of √(Q/V)."""


class TransferConfig(_Strict):
    """Collateral moved between an owner's venue accounts by its treasury: it leaves at
    once and arrives after a stochastic settlement delay (Hautsch, Scheuch & Voigt:
    settlement latency is what limits cross-venue arbitrage)."""

    delay_mean: float = Field(30.0, ge=0, le=MAX_STEPS)
    """Mean delay in minutes beyond ``delay_min`` (exponential); 0 with delay_min 0:
    every transfer settles at once."""
    delay_min: int = Field(5, ge=0, le=MAX_STEPS)
    """Smallest delay in minutes (block confirmations)."""
    call_ratio: float = Field(2.0, ge=1, le=100)
    """An account with equity below call_ratio × maintenance margin asks for collateral."""
    target_ratio: float = Field(4.0, ge=1, le=100)
    """... enough to bring it to target_ratio × maintenance margin, from accounts of
    its owner with equity above target_ratio × their margin (never below it)."""

    @model_validator(mode="after")
    def _order(self) -> TransferConfig:
        if self.target_ratio <= self.call_ratio:
            raise ValueError("target_ratio: must be above call_ratio")
        return self


class CrossAgentsConfig(_Strict):
    """Agents that hold an account on several venues (one owner, one account per
    venue, their collateral moved by the treasury)."""

    venues: list[str] = Field(default_factory=list)
    """The venues they trade on (names; empty: every venue)."""
    arbitrageurs: int = Field(6, ge=0, le=10**5)
    """Cross-venue arbitrageurs (spot–spot, perp–perp and spot–perp basis)."""
    arbitrage_capital: float = Field(2_000_000.0, gt=0, le=1e12)
    """Each arbitrageur's capital per venue account, USD."""
    arbitrage_bps: float = Field(15.0, ge=0, le=10000)
    """An arbitrageur trades a gap wider than this (beyond both taker fees), bp."""
    arbitrage_size_usd: float = Field(50_000.0, gt=0, le=1e12)
    """Each arbitrage trade's size per leg, USD."""
    arbitrage_rate: float = Field(0.5, ge=0, le=100)
    """Activations per step (Poisson)."""
    hedged: int = Field(100, ge=0, le=10**6)
    """Hedged traders: long on one perpetual venue, short the same on another."""
    hedged_capital: float = Field(50_000.0, gt=0, le=1e12)
    """Median capital of a hedged trader per venue account, USD (lognormal, σ = 0.8)."""
    hedged_leverage: float = Field(8.0, ge=1, le=100)
    """Leverage of each leg on its venue (×)."""


SHOCK_SIZES = {
    "index_jump": (-0.99, 100.0, "the index move (a fraction; × beta when beta_scaled)"),
    "vol_regime": (0.0, 1000.0, "the volatility multiplier"),
    "mm_withdrawal": (0.0, 1.0, "the share of market makers withdrawing"),
    "depeg": (0.0, USD_MAX, "the number of tokens sold"),
    "oracle_freeze": (0.0, 0.0, "the size (unused for an oracle freeze)"),
    "halt": (0.0, 0.0, "the size (unused for a trading halt)"),
    "sell_program": (0.0, 0.0, "the size (unused: a sell program has a notional)"),
    "withdrawal_halt": (0.0, 0.0, "the size (unused for a withdrawal halt)"),
}
"""Allowed ``size`` of each shock kind: (low, high, what it is)."""


class ShockConfig(_Strict):
    """An exogenous shock, fired by a Mesa event before step ``step``.

    Kinds: ``index_jump`` (index × (1 + size), over ``duration`` steps),
    ``vol_regime`` (volatility × size for ``duration`` steps; 0 = for good),
    ``mm_withdrawal`` (a ``size`` share of market makers pull quotes for ``duration``),
    ``depeg`` (``size`` tokens market-sold on the collateral's book over ``duration``),
    ``oracle_freeze`` (the index the exchange sees stays stale for ``duration``),
    ``halt`` (trading halted for ``duration`` steps: no matching, no liquidations, no
    funding; the index moves on; BitMEX, 12–13 March 2020, 02:16–02:40 UTC),
    ``sell_program`` (a seller works ``notional`` USD of ``market`` on ``venue`` over
    ``duration`` minutes in equal slices, by market orders), ``withdrawal_halt``
    (``venue`` lets no collateral out for ``duration`` minutes: transfers from it wait).

    In a world of venues ``venue`` names the venue a shock hits (default: the first
    perpetual venue); an ``index_jump`` moves the fundamental value, seen by every venue.
    """

    kind: Literal[
        "index_jump",
        "vol_regime",
        "mm_withdrawal",
        "depeg",
        "oracle_freeze",
        "halt",
        "sell_program",
        "withdrawal_halt",
    ]
    """What the shock does (see the class docstring)."""
    venue: str | None = None
    """The venue it hits (a world of venues; default: the first perpetual venue)."""
    market: str | None = None
    """sell_program: the market sold."""
    notional: float = Field(0.0, ge=0, le=USD_MAX)
    """sell_program: USD to sell."""
    step: int = Field(ge=1)
    """The step it fires before."""
    size: float = 0.0
    """Its size; meaning and bounds by kind (SHOCK_SIZES)."""
    duration: int = Field(1, ge=0)
    """Steps it lasts or is spread over."""
    markets: list[str] | Literal["all"] = "all"
    """The markets it hits (names), or all."""
    beta_scaled: bool = Field(True, description="index_jump: scale the move by each market's beta")

    @model_validator(mode="after")
    def _size_in_range(self) -> ShockConfig:
        lo, hi, what = SHOCK_SIZES[self.kind]
        if not lo <= self.size <= hi:
            raise ValueError(f"size: {what} must be in [{lo:g}, {hi:g}], got {self.size:g}")
        if self.kind == "index_jump" and self.size <= -1:
            raise ValueError("size: an index jump of -100% or less leaves no price")
        if self.kind == "sell_program" and (self.notional <= 0 or self.market is None):
            raise ValueError("notional: a sell program needs a market and a notional > 0")
        if self.kind == "vol_regime" and self.size <= 0:
            raise ValueError(
                "size: a volatility multiplier must be > 0 (0 would freeze the index and "
                "could not be undone at the regime's end)"
            )
        return self


class Scenario(_Strict):
    """Everything a run needs. Defaults give a small calm market; presets live in
    ``experiments/scenarios/*.toml``."""

    name: str = Field("scenario", pattern=NAME)
    """The run's name (names its folder)."""
    steps: int = Field(1440, ge=1)
    """One-minute steps to run."""
    seed: int = Field(0, ge=0, le=2**63 - 1)
    """Seed of the model's random generator."""
    markets: tuple[MarketConfig, ...] = (
        MarketConfig(name="BTC", price=100_000.0, tick=0.1, lot=0.001),
        MarketConfig(name="ETH", price=3_500.0, tick=0.01, lot=0.01, volatility=0.04),
    )
    """The perpetual markets."""
    correlation: float | list[list[float]] = 0.7
    """Correlation of the markets' index returns: one number for every pair, or a full
    matrix (positive semi-definite)."""
    common_jump_intensity: float = Field(
        0.0, ge=0, le=1440, description="market-wide jumps per day"
    )
    common_jump_mean: float = Field(0.0, ge=-5, le=5)
    """Mean log size of a market-wide jump (× each market's beta)."""
    common_jump_std: float = Field(0.0, ge=0, le=5)
    """Std of its log size."""
    garch_alpha: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="GARCH(1,1) weight of the last squared shock (0 = constant volatility)",
    )
    garch_beta: float = Field(0.0, ge=0, lt=1, description="GARCH(1,1) persistence of the variance")
    margin_mode: Literal["cross", "isolated", "portfolio"] = "cross"
    """How accounts are margined: cross, isolated or portfolio (stress-scenario) margin."""
    leverage_cap: float | None = Field(
        None,
        gt=1,
        le=1000,
        description="exchange-wide leverage cap on top of the tiers (policy lever)",
    )
    mmr_scale: float = Field(
        1.0, gt=0, le=100, description="multiplies every tier's MMR (policy lever)"
    )
    mark_rule: Literal["book_mid", "last_trade", "index", "median"] = "median"
    """How the mark price is made: book mid, last trade, the index, or the median of (index
    + basis, mid, last)."""
    margin_vol_scale: float = Field(
        0.0,
        ge=0,
        le=100,
        description="risk-based margin: every minute each market's MM and IM rates are "
        "multiplied by 1 + k × (realized vol / the market's own vol − 1), between 1 and "
        "margin_vol_cap (Brunnermeier & Pedersen 2009's margin spiral); 0 = fixed tiers",
    )
    margin_vol_cap: float = Field(
        4.0, ge=1, le=100, description="the largest multiplier of margin_vol_scale"
    )
    mark_clamp: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="the mark stays within index × (1 ± mark_clamp) (a circuit breaker on "
        "the mark, as Bybit and OKX clamp it to a band around the index); none by default",
    )
    index_venue_weight: float = Field(
        0.0,
        ge=0,
        le=1,
        description="weight of this venue's mark in the index it uses (the venue as part "
        "of the oracle basket): the index is the weighted geometric mean of the outside "
        "world's price and the venue's last mark; 0 keeps the index exogenous",
    )
    order_band: float = Field(
        0.05,
        gt=0,
        lt=1,
        description="market orders fill at most this far beyond the opposite best quote",
    )
    price_band: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="limit orders priced further than this from the mark are rejected "
        "(a price band, as venues apply); none by default",
    )
    basis_halflife: int = Field(
        30, ge=1, le=MAX_STEPS, description="steps; EMA of mid − index for the mark"
    )
    fees: FeeConfig = FeeConfig()
    """Trading fees."""
    funding: FundingConfig = FundingConfig()
    """Perpetual funding."""
    liquidation: LiquidationConfig = LiquidationConfig()
    """The liquidation waterfall."""
    insurance_fund: float = Field(1_000_000.0, ge=0, le=USD_MAX)
    """Initial insurance fund, USD."""
    vault_capital: float = Field(5_000_000.0, ge=0, le=USD_MAX)
    """Initial capital of the backstop vault, USD (0 = no vault)."""
    vault_max_leverage: float = Field(5.0, gt=0, le=1000)
    """The vault's leverage cap on its whole book (×), at takeover and between takeovers."""
    collateral: CollateralConfig | None = None
    """A synthetic dollar posted as collateral, with its own spot book (optional)."""
    agents: AgentsConfig = AgentsConfig()
    """The agent populations."""
    shocks: tuple[ShockConfig, ...] = ()
    """Exogenous shocks."""
    venues: tuple[VenueConfig, ...] = ()
    """A world of venues (spot and perpetual, each with its books, ledger, risk engine
    and index rule); empty: one perpetual venue whose index is the exogenous price."""
    impact: ImpactConfig = ImpactConfig()
    """How aggregate order flow moves the latent price (a world of venues only)."""
    transfers: TransferConfig = TransferConfig()
    """The treasuries' transfers between an owner's venue accounts (a world of venues)."""
    cross: CrossAgentsConfig = CrossAgentsConfig()
    """Agents on several venues (a world of venues only)."""
    collect_agents: bool = Field(False, description="per-agent data every step")
    size_guard: bool = Field(
        True,
        description=f"refuse more than {MAX_STEPS:,} steps or {MAX_AGENTS:,} agents "
        "(false: the user means it; ``--allow-large`` on the command line)",
    )

    def __iter__(self):  # type: ignore[override]
        """Not iterable, so that Mesa's ``batch_run`` takes a scenario as one value."""
        raise TypeError("a Scenario is one parameter value, not a sequence")

    @field_validator("markets")
    @classmethod
    def _unique_names(cls, markets: tuple[MarketConfig, ...]) -> tuple[MarketConfig, ...]:
        if not markets:
            raise ValueError("at least one market is needed")
        names = [m.name for m in markets]
        if len(set(names)) != len(names):
            raise ValueError(f"market names must be unique, got {names}")
        return markets

    @model_validator(mode="after")
    def _cross_checks(self) -> Scenario:
        self.correlation_matrix()  # raises on a bad matrix
        if self.size_guard:
            if len(self.shocks) > MAX_SHOCKS:
                raise ValueError(
                    f"shocks: {len(self.shocks):,} shocks is above {MAX_SHOCKS:,} (set "
                    "size_guard = false, or --allow-large, if you mean it)"
                )
            if len(self.markets) > MAX_MARKETS:
                raise ValueError(
                    f"markets: {len(self.markets):,} markets is above {MAX_MARKETS} (set "
                    "size_guard = false, or --allow-large, if you mean it)"
                )
            if self.steps > MAX_STEPS:
                raise ValueError(
                    f"steps: {self.steps:,} is above {MAX_STEPS:,} (set size_guard = false, "
                    "or --allow-large, if you mean it)"
                )
            a = self.agents
            n = (
                a.leveraged.count
                + a.market_makers.count
                + a.noise.count
                + a.fundamentalists.count
                + a.momentum.count
            )
            if n > MAX_AGENTS:
                raise ValueError(
                    f"agents: {n:,} agents is above {MAX_AGENTS:,} (set size_guard = false, "
                    "or --allow-large, if you mean it)"
                )
        if self.garch_alpha + self.garch_beta >= 1:
            raise ValueError("garch_alpha: garch_alpha + garch_beta must be below 1 (stationarity)")
        top = self.margin_vol_cap if self.margin_vol_scale > 0 else 1.0
        for m in self.markets:
            for t in self.effective_tiers(m):
                if top * t.mmr >= 1:
                    raise ValueError(
                        f"margin_vol_cap: market {m.name}'s MMR {t.mmr:.4g} × {top:g} would "
                        "reach the whole notional"
                    )
                if t.mmr >= 1 / t.max_leverage:
                    raise ValueError(
                        f"mmr_scale: market {m.name}'s MMR {t.mmr:.4g} would reach the initial "
                        f"margin 1/{t.max_leverage:g} under leverage_cap {self.leverage_cap}"
                    )
        names = {m.name for m in self.markets}
        self._check_venues()
        for k, s in enumerate(self.shocks):
            if s.markets != "all":
                unknown = set(s.markets) - names
                if unknown:
                    raise ValueError(f"shocks.{k}.markets: unknown market(s) {sorted(unknown)}")
            if s.kind == "depeg" and self.collateral is None:
                raise ValueError(f"shocks.{k}.kind: a depeg needs a [collateral] table")
            if s.step > self.steps:
                raise ValueError(f"shocks.{k}.step: {s.step} is after the last step {self.steps}")
            if s.venue is not None and s.venue not in self.venue_names:
                raise ValueError(
                    f"shocks.{k}.venue: no venue {s.venue!r} (venues: {', '.join(self.venue_names)})"
                )
            if s.market is not None and s.market not in names:
                raise ValueError(f"shocks.{k}.market: unknown market {s.market!r}")
        return self

    def _check_venues(self) -> None:
        """A world of venues: unique names, a perpetual venue, index constituents that
        are spot venues, shares that add up, and every venue's scenario valid."""
        if not self.venues:
            return
        names = [v.name for v in self.venues]
        if len(set(names)) != len(names):
            raise ValueError(f"venues: venue names must be unique, got {names}")
        spot = {v.name for v in self.venues if v.kind == "spot"}
        if not any(v.kind == "perp" for v in self.venues):
            raise ValueError("venues: a world of venues needs a perpetual venue")
        total = 0.0
        for i, v in enumerate(self.venues):
            if v.kind == "spot":
                if v.index is not None or v.leveraged_share:
                    raise ValueError(
                        f"venues.{i}.kind: a spot venue has no index rule and no leveraged traders"
                    )
            else:
                total += v.leveraged_share
                rule = self.index_rule(v)
                for c in rule.constituents:
                    if c not in spot:
                        raise ValueError(
                            f"venues.{i}.index.constituents: {c!r} is not a spot venue "
                            f"(spot venues: {', '.join(sorted(spot)) or 'none'})"
                        )
                if not rule.constituents and not spot:
                    raise ValueError(f"venues.{i}.index: there is no spot venue to make it from")
            try:
                self.venue_scenario(v.name)
            except ScenarioError as exc:
                raise ValueError(f"venues.{i}.changes: {exc}") from None
        if total > 1 + 1e-9:
            raise ValueError(f"venues: leveraged_share adds up to {total:g} > 1")
        unknown = [x for x in self.cross.venues if x not in names]
        if unknown:
            raise ValueError(f"cross.venues: no venue {unknown[0]!r} (venues: {', '.join(names)})")

    # ------------------------------------------------------------ venues
    @property
    def venue_names(self) -> list[str]:
        """The venues' names (one venue called ``venue`` when the scenario names none).

        Examples:
            >>> Scenario().venue_names
            ['venue']
        """
        return [v.name for v in self.venues] or ["venue"]

    @property
    def home_venue(self) -> str:
        """The venue shocks hit and single-venue readers see: the first perpetual one.

        Examples:
            >>> Scenario().home_venue
            'venue'
        """
        return next((v.name for v in self.venues if v.kind == "perp"), "venue")

    def index_rule(self, venue: VenueConfig) -> IndexRuleConfig:
        """A perpetual venue's index rule: its own, else its rule preset's, else a
        weighted median; with no constituents named, every spot venue at weight 1."""
        from .rules import VENUE_RULES

        rule = venue.index
        if rule is None:
            preset = VENUE_RULES[venue.rules]["index"] if venue.rules else {}
            rule = IndexRuleConfig(**preset)
        if not rule.constituents:
            spot = {v.name: 1.0 for v in self.venues if v.kind == "spot"}
            rule = rule.model_copy(update={"constituents": spot})
        return rule

    def venue_scenario(self, name: str) -> Scenario:
        """The scenario one venue runs on: the world's fields with the venue's rule
        preset and its own changes, its share of the agents, no venues and no shocks of
        its own (shocks belong to the world); a collateral token (a venue's synthetic
        dollar) only on the home venue. For a single-venue scenario, itself.

        Examples:
            >>> w = Scenario.preset("multivenue")
            >>> w.venue_scenario("hyperliquid").liquidation.adl_price
            'mark'
        """
        if not self.venues:
            return self
        from .rules import VENUE_RULES

        v = next((x for x in self.venues if x.name == name), None)
        if v is None:
            raise ScenarioError(f"venue: no venue {name!r} (venues: {', '.join(self.venue_names)})")
        base = self.model_copy(update={"venues": (), "shocks": ()})
        a = self.agents
        share = v.leveraged_share
        perps = [x for x in self.venues if x.kind == "perp"]
        if v.kind == "perp" and not any(x.leveraged_share for x in perps):
            share = 1.0 / len(perps)  # no shares named: split evenly
        f = v.population
        counts = {
            "agents.leveraged.count": round(a.leveraged.count * share) if v.kind == "perp" else 0,
            "agents.market_makers.count": round(a.market_makers.count * f),
            "agents.entrants.count": round(a.entrants.count * f),
            "agents.noise.count": round(a.noise.count * f),
            "agents.fundamentalists.count": round(a.fundamentalists.count * f),
            "agents.momentum.count": round(a.momentum.count * f),
        }
        if v.kind == "spot":
            counts |= {"insurance_fund": 0.0, "vault_capital": 0.0, "collateral": None}
        elif v.name != self.home_venue:
            counts |= {"collateral": None}  # the synthetic dollar is the home venue's
        changes = dict(VENUE_RULES[v.rules]["changes"]) if v.rules else {}
        out = base.replace(**counts, **changes) if changes or counts else base
        return out.replace(**v.changes) if v.changes else out

    def as_multivenue(self) -> Scenario:
        """This scenario as a world of venues: three spot venues and two perpetual venues
        with different rules, the same markets, agents and shocks (an index jump becomes
        a move of the fundamental value): the world of ``Scenario.preset("multivenue")``.

        Spot venues (the oracle weights of Hyperliquid's: Binance 3, OKX 2, Kraken 1):
        binance_spot (half the world's makers, noise traders and fundamentalists), okx_spot
        (30%), kraken_spot (20%). Perpetual venues: binance (Binance 2025 rules, 55% of the
        leveraged traders, the full populations), hyperliquid (Hyperliquid 2025 rules,
        45%, half the populations); a scenario already a world is returned unchanged.

        Examples:
            >>> w = Scenario.preset("baseline").as_multivenue()
            >>> w.venue_names
            ['binance_spot', 'okx_spot', 'kraken_spot', 'binance', 'hyperliquid']
        """
        if self.venues:
            return self
        oracle = {"binance_spot": 3.0, "okx_spot": 2.0, "kraken_spot": 1.0}
        # Spot makers quote around the consolidated reference (which carries the news);
        # every maker picks off quotes the reference left behind.
        spot = {"agents.market_makers.index_weight": 1.0}
        venues = [
            {"name": "binance_spot", "kind": "spot", "population": 0.5, "changes": spot},
            {"name": "okx_spot", "kind": "spot", "population": 0.3, "changes": spot},
            {"name": "kraken_spot", "kind": "spot", "population": 0.2, "changes": spot},
            {
                "name": "binance",
                "kind": "perp",
                "rules": "binance_2025",
                "leveraged_share": 0.55,
                "population": 1.0,
                "index": {"rule": "capped_mean", "cap": 0.03, "constituents": oracle},
            },
            {
                "name": "hyperliquid",
                "kind": "perp",
                "rules": "hyperliquid_2025",
                "leveraged_share": 0.45,
                "population": 0.5,
                "index": {"rule": "weighted_median", "constituents": oracle},
            },
        ]
        data = self.model_dump(mode="python")
        data["venues"] = venues
        for makers in ("market_makers", "entrants"):
            data["agents"][makers]["take_stale"] = True
            data["agents"][makers]["capacity"] = "capital"
        data["mark_clamp"] = None
        data["index_venue_weight"] = 0.0
        return Scenario.from_dict(data)

    # ------------------------------------------------------------ derived
    def effective_tiers(self, market: MarketConfig) -> list[Tier]:
        """A market's tiers after the policy levers (MMR × mmr_scale, leverage ≤ cap)."""
        cap = self.leverage_cap or math.inf
        return [
            Tier.model_construct(
                max_notional=t.max_notional,
                mmr=t.mmr * self.mmr_scale,
                max_leverage=min(t.max_leverage, cap),
            )
            for t in market.tiers
        ]

    def correlation_matrix(self) -> np.ndarray:
        """The index correlation matrix; raises ValueError if it is not a valid one."""
        k = len(self.markets)
        if isinstance(self.correlation, float | int):
            rho = float(self.correlation)
            if not -1 <= rho <= 1:  # also false for nan
                raise ValueError(f"correlation: must be in [-1, 1], got {rho}")
            c = np.full((k, k), rho)
            np.fill_diagonal(c, 1.0)
        else:
            c = np.asarray(self.correlation, dtype=float)
            if c.ndim == 2 and not np.isfinite(c).all():
                raise ValueError("correlation: entries must be finite numbers")
            if c.shape != (k, k):
                raise ValueError(
                    f"correlation: must be {k}x{k} (one row per market), got {c.shape}"
                )
            if not np.allclose(c, c.T):
                raise ValueError("correlation: matrix must be symmetric")
            if not np.allclose(np.diag(c), 1.0):
                raise ValueError("correlation: diagonal must be 1")
            if np.abs(c).max() > 1:
                raise ValueError("correlation: entries must be in [-1, 1]")
        eig = np.linalg.eigvalsh(c)
        if eig.min() < -1e-10:
            raise ValueError(
                f"correlation: matrix is not positive semi-definite (smallest eigenvalue {eig.min():.4g})"
            )
        return c

    # ------------------------------------------------------------------ IO
    @classmethod
    def from_toml(cls, path: str | Path) -> Scenario:
        """Read a scenario file; raise :class:`ScenarioError` (one line) on any problem."""
        return cls.from_dict(read_toml(path))

    @classmethod
    def preset(cls, name: str) -> Scenario:
        """A shipped scenario by name (see :func:`presets`), wherever the caller stands.

        Examples:
            >>> Scenario.preset("baseline").name
            'baseline'
        """
        if name not in presets():
            raise ScenarioError(f"preset: unknown preset {name!r}; one of {presets()}")
        return cls.from_toml(PRESET_DIR / f"{name}.toml")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Scenario:
        """Validate a plain dict; raise :class:`ScenarioError` naming the first bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ScenarioError(_one_line(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        """Plain data, infinities as the string "inf" (TOML has no null)."""
        return _tomlable(self.model_dump(mode="python", exclude_none=True))

    def to_toml(self) -> str:
        """The fully resolved scenario as TOML (reads back to an equal scenario)."""
        return tomli_w.dumps(self.to_dict())

    def replace(self, **changes: Any) -> Scenario:
        """A validated copy with ``changes`` applied (dotted or ``__``-separated keys)."""
        data = self.model_dump(mode="python")
        keys = {key.replace("__", ".") for key in changes}
        for key, value in changes.items():
            set_dotted(data, key.replace("__", "."), value)
        if "liquidation.venue" in keys and data["liquidation"].get("venue") is not None:
            # A venue named now sets its mechanism, except what this call sets itself.
            for k in VENUES.get(data["liquidation"]["venue"], {}):
                if f"liquidation.{k}" not in keys:
                    data["liquidation"].pop(k, None)
        return Scenario.from_dict(data)

    @property
    def market_names(self) -> list[str]:
        return [m.name for m in self.markets]


def scenario_path(ref: str | Path) -> Path:
    """The TOML file a scenario reference names: an existing file, else a shipped preset
    by name (``"baseline"``, or ``"baseline.toml"``); a missing one raises
    :class:`ScenarioError` naming the presets.

    Examples:
        >>> scenario_path("baseline").name
        'baseline.toml'
    """
    path = Path(ref)
    if path.is_file():
        return path
    name = path.name.removesuffix(".toml")
    if str(ref) in (name, f"{name}.toml") and name in presets():
        return PRESET_DIR / f"{name}.toml"
    raise ScenarioError(f"{ref}: no such file, and not a preset (presets: {', '.join(presets())})")


def presets() -> list[str]:
    """Names of the shipped scenarios (``experiments/scenarios/*.toml``).

    Examples:
        >>> "oct2025_collateral_depeg" in presets()
        True
    """
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def set_dotted(data: dict, key: str, value: Any) -> None:
    """Set ``data[a][b][c] = value`` for key ``"a.b.c"``; list items by index (``"markets.0.tick"``).

    Raises ScenarioError for a path that does not exist.

    Examples:
        >>> data = {"a": {"b": 1}, "markets": [{"tick": 0.1}]}
        >>> set_dotted(data, "a.b", 2)
        >>> set_dotted(data, "markets.0.tick", 0.5)
        >>> data
        {'a': {'b': 2}, 'markets': [{'tick': 0.5}]}
    """
    parts = key.split(".")
    node: Any = data
    for k, part in enumerate(parts[:-1]):
        node = _child(node, part, ".".join(parts[: k + 1]))
    last = parts[-1]
    if isinstance(node, dict):
        if last not in node and not _optional_table(node, last):
            import difflib

            close = difflib.get_close_matches(last, [str(k) for k in node], n=1, cutoff=0.6)
            hint = f" (did you mean {'.'.join([*parts[:-1], close[0]])!r}?)" if close else ""
            raise ScenarioError(f"{key}: unknown key{hint}")
        node[last] = value
    elif isinstance(node, list):
        node[_index(node, last, key)] = value
    else:
        raise ScenarioError(f"{key}: unknown key")


def _optional_table(node: dict, key: str) -> bool:
    return key == "collateral" and "markets" in node


def _child(node: Any, part: str, path: str) -> Any:
    if isinstance(node, dict):
        if part not in node or node[part] is None:
            raise ScenarioError(f"{path}: unknown key")
        child = node[part]
    elif isinstance(node, list | tuple):
        child = node[_index(node, part, path)]
    else:
        raise ScenarioError(f"{path}: unknown key")
    if isinstance(child, tuple):
        child = list(child)
        if isinstance(node, dict):
            node[part] = child
        else:
            node[int(part)] = child
    return child


def _index(node: list, part: str, path: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ScenarioError(f"{path}: no item {part!r} (there are {len(node)})")
    return int(part)


def read_toml(path: str | Path, *, error: type[ValueError] = ScenarioError) -> dict[str, Any]:
    """The table in a TOML file; a missing file or bad TOML raises ``error`` (one line).

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "run.toml"
        >>> _ = path.write_text("steps = 60  # one hour\\nagents.noise.count = 5")
        >>> read_toml(path)
        {'steps': 60, 'agents': {'noise': {'count': 5}}}
        >>> read_toml(path.with_name("missing.toml"))
        Traceback (most recent call last):
        ...
        crossmargin.model.scenario.ScenarioError: .../missing.toml: no such file
    """
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise error(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise error(f"{path}: not valid TOML: nested too deeply") from None


def _one_line(exc: ValidationError, model: type[BaseModel] | None = None) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err["loc"]) or "scenario"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key" + _did_you_mean(model or Scenario, err["loc"])
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    extra = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    value = err.get("input")
    shown = f", got {value!r}" if err["type"] != "extra_forbidden" and _short(value) else ""
    if not err["loc"]:  # a whole-model check: its message starts with the field it names
        return f"{msg}{extra}"
    return f"{loc}: {msg}{shown}{extra}"


def _did_you_mean(model: type[BaseModel], loc: tuple) -> str:
    """`` (did you mean 'x'?)`` for an unknown key at ``loc`` when a field of the table
    it sits in has a close name, else ""."""
    import difflib
    import typing

    node: Any = model
    for part in loc[:-1]:
        if isinstance(part, int) or str(part).isdigit():
            continue
        fields = getattr(node, "model_fields", {})
        if part not in fields:
            return ""
        ann = fields[part].annotation
        nested = [
            a
            for a in (
                ann,
                *typing.get_args(ann),
                *(b for a in typing.get_args(ann) for b in typing.get_args(a)),
            )
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if not nested:
            return ""
        node = nested[0]
    names = list(getattr(node, "model_fields", {}))
    close = difflib.get_close_matches(str(loc[-1]), names, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _short(value: Any) -> bool:
    return isinstance(value, str | int | float | bool) and len(repr(value)) < 40


def _tomlable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _tomlable(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, list | tuple):
        return [_tomlable(v) for v in obj]
    if isinstance(obj, float) and math.isinf(obj):
        return "inf" if obj > 0 else "-inf"
    return obj
