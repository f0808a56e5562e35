"""Index rules: how a perpetual venue makes its index from the prices of spot venues.

Every rule reads one price per constituent and market (NaN: the constituent has no
price, e.g. an empty book) and returns one index per market. Constituents silent for
``stale_steps`` steps are left out; when every constituent is out the index keeps its
last value (an oracle that cannot update publishes its last price).

* ``weighted_median``: Hyperliquid's oracle (weights 3, 2, 2, 1, ... over venues).
* ``capped_mean``: the weighted mean with every price clamped to median × (1 ± cap)
  (OKX's 2%; Binance's later wording, 3%).
* ``exclusion``: the weighted mean of the prices within ``exclude`` of the median; an
  excluded constituent is readmitted after ``readmit_steps`` steps back within
  ``readmit`` (BitMEX: 25% out, readmitted after 15 minutes within 2%).
"""

from __future__ import annotations

import numpy as np

__all__ = ["IndexRule", "weighted_median"]


def weighted_median(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted median down the first axis of ``x`` (sources × markets), NaNs left out:
    the smallest value at which the cumulative weight reaches half the total (the
    lower weighted median, as an oracle picks one of its inputs).

    Examples:
        >>> x = np.array([[100.0], [101.0], [130.0]])
        >>> weighted_median(x, np.array([3.0, 2.0, 1.0])).tolist()
        [100.0]
        >>> weighted_median(x, np.array([1.0, 1.0, 5.0])).tolist()
        [130.0]
    """
    x = np.asarray(x, dtype=float)
    out = np.full(x.shape[1], np.nan)
    for m in range(x.shape[1]):
        col = x[:, m]
        ok = ~np.isnan(col) & (w > 0)
        if not ok.any():
            continue
        v, ww = col[ok], w[ok]
        order = np.argsort(v, kind="stable")
        v, ww = v[order], ww[order]
        c = np.cumsum(ww)
        out[m] = v[np.searchsorted(c, 0.5 * c[-1] - 1e-12)]
    return out


class IndexRule:
    """One perpetual venue's index rule over its constituents.

    Args:
        rule: ``weighted_median``, ``capped_mean`` or ``exclusion``.
        weights: One weight per constituent (≥ 0).
        n_markets: Markets priced.
        cap: capped_mean's clamp around the median.
        exclude: exclusion's distance from the median that leaves a price out.
        readmit: exclusion's distance within which an excluded price may come back ...
        readmit_steps: ... after this many steps there.
        stale_steps: Steps without a price after which a constituent is left out.

    Examples:
        >>> r = IndexRule("exclusion", [1.0, 1.0, 1.0], 1, exclude=0.25)
        >>> r([[100.0], [102.0], [140.0]], prev=np.array([101.0])).tolist()
        [101.0]
        >>> r.excluded[:, 0].tolist()
        [False, False, True]
    """

    def __init__(
        self,
        rule: str,
        weights: list[float] | np.ndarray,
        n_markets: int,
        *,
        cap: float = 0.03,
        exclude: float = 0.05,
        readmit: float = 0.02,
        readmit_steps: int = 15,
        stale_steps: int = 5,
    ) -> None:
        self.rule = rule
        self.w = np.asarray(weights, dtype=float)
        self.cap = cap
        self.exclude_at = exclude
        self.readmit = readmit
        self.readmit_steps = readmit_steps
        self.stale_steps = stale_steps
        n = len(self.w)
        self.silent = np.zeros((n, n_markets), dtype=np.int64)  # steps without a price
        self.last = np.full((n, n_markets), np.nan)  # the last price seen
        self.excluded = np.zeros((n, n_markets), dtype=bool)
        self.back_for = np.zeros((n, n_markets), dtype=np.int64)  # steps back within readmit

    def __call__(self, prices: np.ndarray | list, *, prev: np.ndarray) -> np.ndarray:
        """The index from this step's constituent prices (``prev``: the last index,
        kept where no constituent has a price)."""
        x = np.asarray(prices, dtype=float)
        fresh = ~np.isnan(x)
        self.silent = np.where(fresh, 0, self.silent + 1)
        self.last = np.where(fresh, x, self.last)
        live = np.where(self.silent < self.stale_steps, self.last, np.nan)
        med = weighted_median(live, self.w)
        if self.rule == "weighted_median":
            out = med
        elif self.rule == "capped_mean":
            out = self._mean(np.clip(live, med * (1 - self.cap), med * (1 + self.cap)))
        else:
            gap = np.abs(live / med - 1)
            out_now = gap > self.exclude_at
            within = gap <= self.readmit
            self.back_for = np.where(self.excluded & within, self.back_for + 1, 0)
            readmitted = self.excluded & (self.back_for >= self.readmit_steps)
            self.excluded = (self.excluded & ~readmitted) | out_now
            out = self._mean(np.where(self.excluded, np.nan, live))
        return np.where(np.isnan(out), prev, out)

    def _mean(self, x: np.ndarray) -> np.ndarray:
        ok = ~np.isnan(x)
        w = self.w[:, None] * ok
        tot = w.sum(axis=0)
        s = np.where(ok, x, 0.0) * w
        return np.divide(s.sum(axis=0), tot, out=np.full(x.shape[1], np.nan), where=tot > 0)
