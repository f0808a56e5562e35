"""Vectorized revaluation of 1,000,000 accounts × 4 markets.

Computes equity, maintenance and initial margin (tiered), margin ratio and the
liquidatable mask for every account in one pass. Prints the best time of several.

Run: ``.venv/bin/python benchmarks/ledger.py [--accounts N] [--repeat K]``
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
from crossmargin.model.ledger import Ledger
from crossmargin.model.markets import MarginTier, Market


def build(n: int, *, seed: int = 3) -> tuple[Ledger, np.ndarray]:
    rng = np.random.default_rng(seed)
    tiers = (
        MarginTier(50_000, 0.004, 125),
        MarginTier(250_000, 0.005, 100),
        MarginTier(1_000_000, 0.01, 50),
        MarginTier(float("inf"), 0.025, 20),
    )
    markets = [
        Market("BTC", 0.1, 0.001, tiers),
        Market("ETH", 0.01, 0.01, tiers),
        Market("SOL", 0.001, 0.1, tiers),
        Market("ALT", 0.0001, 1.0, (MarginTier(float("inf"), 0.05, 10),)),
    ]
    marks = np.array([100_000.0, 3_500.0, 180.0, 0.5])
    ledger = Ledger(markets, capacity=n)
    ledger.open_accounts(rng.lognormal(8, 1.5, n))
    # Heavy-tailed position sizes like real account populations: median notional
    # about $3k per position, a few whales in the top tiers.
    usd = rng.lognormal(np.log(3_000), 1.6, size=(4, n)) * rng.choice([-1, 1], size=(4, n))
    lots = np.round(usd / (ledger.lot * marks)[:, None])
    ledger.pos[:, :n] = lots
    ledger.cost[:, :n] = lots * (ledger.lot * marks)[:, None] * rng.normal(1, 0.02, size=(4, n))
    return ledger, marks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    ledger, marks = build(args.accounts)
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        v = ledger.revalue(marks)
        times.append(time.perf_counter() - t0)
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}"
    )
    print(
        f"accounts: {args.accounts} x {len(ledger.markets)} markets, liquidatable: {int(v.liquidatable.sum())}"
    )
    print(
        f"revalue best of {args.repeat}: {min(times) * 1e3:.1f} ms  median: {np.median(times) * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
