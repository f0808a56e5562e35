"""External (index) prices: a correlated jump-diffusion standing for the rest of the world.

Per step, log returns are ``σ_i z_i − σ_i²/2 + J_i + β_i J_m`` with ``z`` standard normal
with the scenario's correlation matrix (factored once), ``J_i`` idiosyncratic
compound-Poisson jumps and ``J_m`` market-wide jumps loaded by each asset's beta
(Merton 1976 jump-diffusion, with a common jump factor). With ``garch_alpha`` > 0 the
diffusive variance follows a GARCH(1,1) (Bollerslev 1986) around the scenario's
volatility, h_t = ω + a ε²_{t−1} + b h_{t−1} with ω = σ²(1 − a − b), so volatility
clusters as in real returns. Shocks move it further: a
scheduled index jump, a volatility regime, or a frozen oracle (the exchange sees a
stale index while the world moves on).

An index that leaves what its market's book can quote (below one tick, or above
2**53 ticks: a volatility regime of hundreds of times the market's own compounds
within minutes) stops the run with :class:`PriceRangeError`, a one-line message
naming the market, rather than a run of prices no book can hold; in a world of venues
the same holds for the latent value and the reference price, which forced flow moves
(:func:`check_range`, called by :meth:`World.open <crossmargin.model.world.World.open>`).
"""

from __future__ import annotations

import numpy as np

from .scenario import STEPS_PER_DAY, Scenario, ScenarioError

__all__ = ["MAX_PRICE_TICKS", "IndexProcess", "PriceRangeError", "check_range"]

MAX_PRICE_TICKS = 2**53
"""The most ticks a price may reach: beyond it a price in ticks is no longer an exact
integer in a float."""


class PriceRangeError(ScenarioError):
    """The scenario took a price (an index; in a world of venues also the value or the
    reference price) out of the range its market's book can quote.

    Examples:
        >>> ip = IndexProcess(Scenario(steps=30), np.random.default_rng(0))
        >>> ip.vol_mult[:] = 1000.0  # a volatility regime of 1000 times, for good
        >>> try:
        ...     for _ in range(30):
        ...         _ = ip.step()
        ... except PriceRangeError as exc:
        ...     print(str(exc)[:50])
        markets.ETH: the index reached 0.00203 USD at step
    """


def check_range(
    prices: np.ndarray, ticks: np.ndarray, names: list[str], step: int, *, what: str
) -> None:
    """Raise :class:`PriceRangeError` for the first market whose price (``what``: the
    index, the value, the reference price) is below one tick of its book, above :data:`MAX_PRICE_TICKS` ticks,
    or not a number.

    Examples:
        >>> check_range(np.array([100.0, 2.0]), np.array([0.1, 0.01]), ["A", "B"], 5, what="index")
        >>> try:
        ...     check_range(np.array([100.0, 0.004]), np.array([0.1, 0.01]), ["A", "B"], 5,
        ...                 what="value")
        ... except PriceRangeError as exc:
        ...     print(str(exc)[:48])
        markets.B: the value reached 0.004 USD at step 5
    """
    ok = (prices >= ticks) & (prices <= ticks * MAX_PRICE_TICKS)  # NaN fails both
    if ok.all():
        return
    m = int(np.flatnonzero(~ok)[0])
    raise PriceRangeError(
        f"markets.{names[m]}: the {what} reached {prices[m]:.3g} USD at step {step}, "
        f"outside what its book can quote (one tick, {ticks[m]:g} USD, to 2**53 ticks): "
        "the scenario's volatility and shocks are beyond the model's range"
    )


class IndexProcess:
    """The world's prices, one per market, advanced one step at a time."""

    def __init__(self, scenario: Scenario, rng: np.random.Generator) -> None:
        mk = scenario.markets
        self.rng = rng
        self.true = np.array([m.price for m in mk], dtype=float)
        self.names = [m.name for m in mk]
        self.ticks = np.array([m.tick for m in mk], dtype=float)
        self.t = 0  # steps taken
        self.published = self.true.copy()
        self.sigma = np.array([m.volatility for m in mk]) / np.sqrt(STEPS_PER_DAY)
        self.vol_mult = np.ones(len(mk))
        self.jump_p = np.array([m.jump_intensity for m in mk]) / STEPS_PER_DAY
        self.jump_mean = np.array([m.jump_mean for m in mk])
        self.jump_std = np.array([m.jump_std for m in mk])
        self.beta = np.array([m.beta for m in mk])
        self.common_p = scenario.common_jump_intensity / STEPS_PER_DAY
        self.common_mean = scenario.common_jump_mean
        self.common_std = scenario.common_jump_std
        corr = scenario.correlation_matrix()
        w, v = np.linalg.eigh(corr)
        self.factor = v * np.sqrt(np.clip(w, 0.0, None))  # corr = F Fᵀ, also when singular
        self.garch_a = scenario.garch_alpha
        self.garch_b = scenario.garch_beta
        self.h = self.sigma**2  # conditional variance per step (GARCH state)
        self.frozen = np.zeros(len(mk), dtype=bool)
        self.pending = np.zeros(len(mk))  # log move still to apply from spread-out jumps
        self.pending_steps = np.zeros(len(mk), dtype=int)

    def step(self) -> np.ndarray:
        """Advance one step; return the published index (what the exchange sees)."""
        k = len(self.true)
        rng = self.rng
        z = self.factor @ rng.standard_normal(k)
        if self.garch_a > 0:
            sig = np.sqrt(self.h) * self.vol_mult
            eps = np.sqrt(self.h) * z
            self.h = (
                self.sigma**2 * (1 - self.garch_a - self.garch_b)
                + self.garch_a * eps**2
                + self.garch_b * self.h
            )
        else:
            sig = self.sigma * self.vol_mult
        r = sig * z - 0.5 * sig**2
        jumps = rng.random(k) < self.jump_p
        if jumps.any():
            r += jumps * (self.jump_mean + self.jump_std * rng.standard_normal(k))
        if self.common_p and rng.random() < self.common_p:
            r += self.beta * (self.common_mean + self.common_std * rng.standard_normal())
        active = self.pending_steps > 0
        if active.any():
            part = np.where(active, self.pending / np.maximum(self.pending_steps, 1), 0.0)
            r += part
            self.pending -= part
            self.pending_steps -= active
        self.true = self.true * np.exp(r)
        self.t += 1
        check_range(self.true, self.ticks, self.names, self.t, what="index")
        self.published = np.where(self.frozen, self.published, self.true)
        return self.published

    def jump(self, log_moves: np.ndarray, duration: int) -> None:
        """Schedule a move of ``log_moves`` spread over ``duration`` steps (≤1: next step)."""
        self.pending += log_moves
        self.pending_steps = np.where(log_moves != 0, max(duration, 1), self.pending_steps)
