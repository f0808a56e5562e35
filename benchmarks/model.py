"""The baseline scenario end to end: wall time, steps/s, orders/s, agent-steps/s.

Run: ``.venv/bin/python benchmarks/model.py [--scenario NAME|FILE] [--repeat K]``;
``--scenario multivenue`` times the world of five venues (issue #25's budget: no more
than its number of market books times the single-venue day's cost per book).
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
from pathlib import Path

import numpy as np
from crossmargin.model import CrossMarginModel, Scenario

ROOT = Path(__file__).resolve().parent.parent


class GcClock:
    """Wall time Python's cyclic garbage collector spends, per generation (a
    ``gc.callbacks`` hook): the part of a run's cost that grows with the heap."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.count = [0, 0, 0]
        self._start = 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            g = info["generation"]
            self.seconds[g] += time.perf_counter() - self._start
            self.count[g] += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="baseline", help="a preset's name or a scenario file")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    path = Path(args.scenario)
    sc = Scenario.from_toml(path) if path.is_file() else Scenario.preset(args.scenario)
    times, cpus, builds, clocks = [], [], [], []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        m = CrossMarginModel(sc)
        t1, c1 = time.perf_counter(), time.process_time()
        clock = GcClock()
        gc.callbacks.append(clock)
        m.run_for(sc.steps)
        gc.callbacks.remove(clock)
        t2, c2 = time.perf_counter(), time.process_time()
        builds.append(t1 - t0)
        times.append(t2 - t1)
        cpus.append(c2 - c1)
        clocks.append(clock)
    venues = m.world.venues
    books = [b for v in venues for b in (*v.exchange.books, *v.exchange.spot_books)]
    markets = sum(len(v.exchange.books) for v in venues)  # the market books
    orders = sum(b.orders_submitted for b in books)  # every submitted order got an id
    activations = float(np.sum(m._p_active)) * sc.steps  # expected Poisson activations
    best = min(times)
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}"
    )
    accounts = sum(v.exchange.ledger.n for v in venues)
    print(
        f"scenario: {sc.name}, {sc.steps} steps, {len(venues)} venue(s), {markets} market books, "
        f"{len(m.agents)} agents, {accounts} accounts"
    )
    print(
        f"build: {min(builds):.2f} s   run (best of {args.repeat}): {best:.2f} s   total: {min(builds) + best:.2f} s"
    )
    trades = sum(v.exchange.n_trades for v in venues)
    print(
        f"steps/s: {sc.steps / best:,.0f}   orders/s: {orders / best:,.0f} ({orders:,} orders, {trades:,} trades)"
    )
    cpu = cpus[times.index(best)]
    print(
        f"per market book: {best / markets:.2f} s a day ({markets} books); "
        f"CPU {cpu:.2f} s in that run, {cpu / markets:.2f} s a book"
    )
    gcs = clocks[times.index(best)]
    print(
        f"cyclic GC in that run: {sum(gcs.seconds):.2f} s ({sum(gcs.seconds) / best:.1%}), "
        f"collections by generation {gcs.count}, seconds {[round(x, 2) for x in gcs.seconds]}"
    )
    print(
        f"agent-steps/s: {len(m.agents) * sc.steps / best:,.0f} (all agents)   activations/s: {activations / best:,.0f}"
    )


if __name__ == "__main__":
    main()
