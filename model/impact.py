"""Price impact of aggregate order flow on the latent (efficient) price.

A propagator model (Bouchaud, Gefen, Potters & Wyart 2004; Bouchaud, Bonart, Donier &
Gould 2018, ch. 13): the log impact of asset i at minute t is

    I_i(t) = Σ_j C_ij^(c) Σ_{s<t} G(t − s) κ_j ε_j(s) √(|x_j(s)| / v_j)

with x_j(s) the signed taker flow of minute s in USD summed over every venue (forced
flow included), v_j the asset's volume per minute, ε its sign, the kernel
G(τ) = θ + (1 − θ)(1 + τ/τ0)^−1/2 (a transient power-law part over a finite window
and a permanent share θ), and C^(c) = (1 − c) I + c C the cross-impact matrix aligned
with the return correlation C (Benzaquen, Mastromatteo, Eisler & Bouchaud 2017).

With κ_j = Y σ_j / (2 √(1440 τ0)) (σ_j the asset's daily volatility) a metaorder at a
fixed participation rate r for T minutes (Q = r v T) moves the price by
≈ Σ_τ κ √r (τ/τ0)^−1/2 ≈ 2 κ √(r τ0 T) = Y σ √(Q / V) with V = 1440 v: the
square-root law (Tóth et al. 2011) at every participation rate, since the square root
of the rate times the kernel's √T make √(rT).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Propagator"]


class Propagator:
    """Impact of signed order flow, one asset per column.

    Args:
        sigma: Daily volatility per asset.
        volume: USD traded per day per asset (V).
        correlation: The assets' return correlation matrix.
        y: The square-root law's prefactor Y.
        permanent: θ, the kernel's permanent share.
        tau0: The kernel's cut-off, minutes.
        window: Minutes of flow the transient part remembers.
        cross: c, the scale of cross-impact (0: none, 1: the correlation matrix).

    Examples:
        >>> p = Propagator([0.03], [1.44e8], np.eye(1), y=1.0, permanent=0.0, window=2000)
        >>> for _ in range(100):  # 10% participation for 100 minutes: Q/V = 1/144
        ...     _ = p.absorb(np.array([-1e4]))
        >>> round(float(-p.log_impact[0] / (0.03 * math.sqrt(1 / 144))), 1)  # ≈ Y
        0.9
    """

    def __init__(
        self,
        sigma: np.ndarray | list[float],
        volume: np.ndarray | list[float],
        correlation: np.ndarray,
        *,
        y: float = 0.7,
        permanent: float = 0.1,
        tau0: float = 1.0,
        window: int = 720,
        cross: float = 1.0,
    ) -> None:
        sigma = np.asarray(sigma, dtype=float)
        k = len(sigma)
        self.per_minute = np.asarray(volume, dtype=float) / 1440.0
        self.kappa = y * sigma / (2.0 * math.sqrt(1440.0 * tau0))
        self.theta = permanent
        lags = np.arange(1, window + 1, dtype=float)  # the flow of s = t − 1 has τ = 1
        self.kernel = (1 - permanent) * (1 + (lags - 1) / tau0) ** -0.5
        self.mix = (1 - cross) * np.eye(k) + cross * np.asarray(correlation, dtype=float)
        self.history = np.zeros((window, k))  # row 0: the last minute's impulse
        self.permanent_impact = np.zeros(k)
        self.log_impact = np.zeros(k)

    def absorb(self, flow: np.ndarray) -> np.ndarray:
        """Add one minute's signed flow (USD per asset, buys positive); return the new
        log impact per asset."""
        impulse = self.kappa * np.sign(flow) * np.sqrt(np.abs(flow) / self.per_minute)
        self.history = np.roll(self.history, 1, axis=0)
        self.history[0] = impulse
        self.permanent_impact += self.theta * impulse
        own = self.kernel @ self.history + self.permanent_impact
        self.log_impact = self.mix @ own
        return self.log_impact
