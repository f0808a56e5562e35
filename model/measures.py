"""Measures the model's own summary needs (the analysis package re-exports them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def half_life(
    series: Sequence[float], event: int, *, pre: int = 30, window: int = 240
) -> float | None:
    """Steps after the trough (following ``event``) until the series has recovered half
    of what it lost relative to its mean over the ``pre`` steps before the event.

    None when it did not fall (by more than 5%) or never recovered within ``window``.
    For an exponential recovery x(t) = base − A e^{−t/τ} after the trough this is
    τ ln 2 (up to the sampling step).
    """
    x = np.asarray(series, dtype=float)
    if event <= 0 or event >= len(x):
        return None
    base = float(np.nanmean(x[max(0, event - pre) : event]))
    seg = x[event : event + window]
    if not len(seg) or not np.isfinite(base):
        return None
    t = int(np.nanargmin(seg))
    trough = float(seg[t])
    if trough >= 0.95 * base:
        return None
    target = trough + 0.5 * (base - trough)
    after = np.flatnonzero(seg[t:] >= target)
    return float(after[0]) if len(after) else None


def depth_retained(
    series: Sequence[float], event: int, *, after: int = 60, pre: int = 30, window: int = 10
) -> float | None:
    """Depth ``after`` steps past ``event`` (mean over ``window`` steps) as a share of its
    mean over the ``pre`` steps before the event.

    The response for a book that does not come back, where :func:`half_life` is None:
    after 10 October 2025 BTC depth within 1% of the mid fell to about 70% and had not
    recovered a month later (CoinDesk Research), and after large trades books often fail
    to replenish at all (Large 2007). None when the series ends too soon or had no depth
    before the event.
    """
    x = np.asarray(series, dtype=float)
    if event <= 0 or event + after + window > len(x):
        return None
    base = float(np.nanmean(x[max(0, event - pre) : event]))
    if not np.isfinite(base) or base <= 0:
        return None
    return float(np.nanmean(x[event + after : event + after + window]) / base)


def max_drawdown(prices: Sequence[float]) -> float:
    """Largest peak-to-trough fall, as a fraction of the peak."""
    p = np.asarray(prices, dtype=float)
    if not len(p):
        return 0.0
    peak = np.maximum.accumulate(p)
    return float(np.max(1 - p / peak))
