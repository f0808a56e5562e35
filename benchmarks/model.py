"""The baseline scenario end to end: wall time, steps/s, orders/s, agent-steps/s.

Run: ``.venv/bin/python benchmarks/model.py [--scenario FILE] [--repeat K]``
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
from crossmargin.model import CrossMarginModel, Scenario

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=str(ROOT / "experiments/scenarios/baseline.toml"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sc = Scenario.from_toml(args.scenario)
    times, builds = [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        m = CrossMarginModel(sc)
        t1 = time.perf_counter()
        m.run_for(sc.steps)
        t2 = time.perf_counter()
        builds.append(t1 - t0)
        times.append(t2 - t1)
    books = [*m.exchange.books, *m.exchange.spot_books]
    orders = sum(b._next_id - 1 for b in books)  # every submitted order got an id
    activations = float(np.sum(m._p_active)) * sc.steps  # expected Poisson activations
    best = min(times)
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}"
    )
    print(
        f"scenario: {sc.name}, {sc.steps} steps, {len(m.agents)} agents, {m.exchange.ledger.n} accounts"
    )
    print(
        f"build: {min(builds):.2f} s   run (best of {args.repeat}): {best:.2f} s   total: {min(builds) + best:.2f} s"
    )
    print(
        f"steps/s: {sc.steps / best:,.0f}   orders/s: {orders / best:,.0f} ({orders:,} orders, {m.exchange.n_trades:,} trades)"
    )
    print(
        f"agent-steps/s: {len(m.agents) * sc.steps / best:,.0f} (all agents)   activations/s: {activations / best:,.0f}"
    )


if __name__ == "__main__":
    main()
