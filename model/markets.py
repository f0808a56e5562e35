"""Contract specifications: perpetual markets, their margin tiers, and collateral assets.

Tiered maintenance margin follows Binance USDⓈ-M futures: the maintenance-margin
rate (MMR) and the leverage cap step with position notional, and a maintenance
amount keeps the requirement continuous across tier boundaries
(MM = |notional| × MMR − amount).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["CROSS", "ISOLATED", "MARGIN_MODES", "PORTFOLIO", "Collateral", "MarginTier", "Market"]

CROSS = 0
ISOLATED = 1
PORTFOLIO = 2
MARGIN_MODES = {"cross": CROSS, "isolated": ISOLATED, "portfolio": PORTFOLIO}


@dataclass(frozen=True)
class MarginTier:
    """One risk-limit tier: applies to positions with |notional| up to ``max_notional`` USD."""

    max_notional: float
    mmr: float
    max_leverage: float


@dataclass(frozen=True)
class Market:
    """A perpetual futures market (contract specification).

    Args:
        name: Ticker, e.g. ``"BTC"``.
        tick: Price increment in USD.
        lot: Size increment in units of the underlying.
        tiers: Margin tiers, ascending in ``max_notional``; the last one is open-ended.
        stress_move: Portfolio-margin stress shock as a fraction of price (OKX PM uses
            ±12% spot shocks for BTC/ETH, ±24% for the extreme move).
    """

    name: str
    tick: float
    lot: float
    tiers: tuple[MarginTier, ...] = (MarginTier(float("inf"), 0.005, 100.0),)
    stress_move: float = 0.12
    _amounts: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tick <= 0:
            raise ValueError(f"markets.{self.name}.tick: must be > 0, got {self.tick}")
        if self.lot <= 0:
            raise ValueError(f"markets.{self.name}.lot: must be > 0, got {self.lot}")
        if not self.tiers:
            raise ValueError(f"markets.{self.name}.tiers: at least one tier is needed")
        caps = [t.max_notional for t in self.tiers]
        if caps != sorted(caps) or len(set(caps)) != len(caps):
            raise ValueError(f"markets.{self.name}.tiers: max_notional must strictly increase")
        for t in self.tiers:
            if not 0 < t.mmr < 1:
                raise ValueError(f"markets.{self.name}.tiers.mmr: must be in (0, 1), got {t.mmr}")
            if t.max_leverage <= 0:
                raise ValueError(
                    f"markets.{self.name}.tiers.max_leverage: must be > 0, got {t.max_leverage}"
                )
            if t.mmr >= 1 / t.max_leverage:
                raise ValueError(
                    f"markets.{self.name}.tiers: mmr {t.mmr} must be below the initial margin "
                    f"1/max_leverage = {1 / t.max_leverage:.4g}"
                )
        # Binance maintenance amount: cum_k = cum_{k-1} + cap_{k-1} * (mmr_k - mmr_{k-1}).
        amounts = [0.0]
        for prev, cur in zip(self.tiers, self.tiers[1:], strict=False):
            amounts.append(amounts[-1] + prev.max_notional * (cur.mmr - prev.mmr))
        object.__setattr__(self, "_amounts", tuple(amounts))

    def to_ticks(self, price: float) -> int:
        """USD price → integer ticks (nearest)."""
        return round(price / self.tick)

    def to_lots(self, units: float) -> int:
        """Units of the underlying → integer lots (truncated toward zero)."""
        return int(units / self.lot)

    def tier_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(caps, mmr, amount, max_leverage)`` arrays for vectorized tier lookup."""
        return (
            np.array([t.max_notional for t in self.tiers][:-1], dtype=np.float64),
            np.array([t.mmr for t in self.tiers], dtype=np.float64),
            np.array(self._amounts, dtype=np.float64),
            np.array([t.max_leverage for t in self.tiers], dtype=np.float64),
        )


@dataclass(frozen=True)
class Collateral:
    """A collateral asset other than USD cash.

    Args:
        name: e.g. ``"USDX"`` (a synthetic dollar) or ``"VLT"`` (a vault share).
        haircut: Collateral value ratio in [0, 1]; counted at ``min(value × ratio, value)``
            as in Binance's unified account and Bybit's collateral value ratio.
        price_source: ``"index"`` (external reference), ``"book"`` (the exchange's own
            spot book, as Binance priced USDe and wBETH on 10 October 2025) or
            ``"pool_nav"`` (the issuing pool's net asset value per token).
    """

    name: str
    haircut: float = 1.0
    price_source: str = "index"
    tick: float = 0.0001
    lot: float = 1.0
    one_sided: str = "last"  # book price when the book is one-sided: last | conversion
    peg: float = 1.0  # USD a token redeems for at a fully backed pool

    def __post_init__(self) -> None:
        if not 0 <= self.haircut <= 1:
            raise ValueError(
                f"collateral.{self.name}.haircut: must be in [0, 1], got {self.haircut}"
            )
        if self.price_source not in ("index", "book", "pool_nav"):
            raise ValueError(
                f"collateral.{self.name}.price_source: must be index, book or pool_nav, "
                f"got {self.price_source!r}"
            )
        if self.tick <= 0 or self.lot <= 0:
            raise ValueError(f"collateral.{self.name}: tick and lot must be > 0")

    def to_ticks(self, price: float) -> int:
        """USD price → integer ticks on the collateral's spot book (nearest)."""
        return round(price / self.tick)
