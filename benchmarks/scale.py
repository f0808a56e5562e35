"""Scale: 10,000 and 100,000 leveraged traders over a 1,440-step day.

Prints wall time (build and run) and peak memory (resident set) for each size, each
size in a fresh process so that the peaks do not mix.

Run: ``.venv/bin/python benchmarks/scale.py [--traders 10000 100000] [--steps 1440]``
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def scenario(traders: int, steps: int = 1440):
    """The baseline preset with ``traders`` leveraged traders and the rest of the market
    grown with them, the shock at mid-day: the day this benchmark runs (also
    ``benchmarks/where.py --traders``)."""
    from crossmargin.model import Scenario

    sc = Scenario.from_toml(ROOT / "experiments/scenarios/baseline.toml")
    return sc.replace(
        steps=steps,
        size_guard=False,  # a million traders is the point here
        **{
            "shocks.0.step": steps // 2,
            "agents.leveraged.count": traders,
            # the rest of the market grows more slowly than the traders: one maker per
            # thousand traders, one noise trader per ten, one fundamentalist and one
            # momentum trader per hundred (never fewer than in the baseline)
            "agents.market_makers.count": max(20, traders // 1000),
            "agents.noise.count": max(300, traders // 10),
            "agents.fundamentalists.count": max(50, traders // 100),
            "agents.momentum.count": max(50, traders // 100),
            "insurance_fund": 1_000_000.0 * traders / 1000,
            "vault_capital": 5_000_000.0 * traders / 1000,
        },
    )


def one(traders: int, steps: int) -> dict:
    from crossmargin.model import CrossMarginModel

    sc = scenario(traders, steps)
    t0 = time.perf_counter()
    m = CrossMarginModel(sc)
    t1 = time.perf_counter()
    chunk = max(1, steps // 12)
    while m.t < steps:  # progress on stderr, so a run that is stopped still tells
        m.run_for(min(chunk, steps - m.t))
        print(
            f"step {m.t}: {time.perf_counter() - t1:.0f} s, peak RSS {_peak_gib():.2f} GiB, "
            f"{len(m.world.events):,} events",
            file=sys.stderr,
            flush=True,
        )
    t2 = time.perf_counter()
    s = m.summary()
    t3 = time.perf_counter()
    return {
        "traders": traders,
        "agents": len(m.agents),
        "steps": steps,
        "build_s": t1 - t0,
        "run_s": t2 - t1,
        "summary_s": t3 - t2,
        "peak_rss_gib": _peak_gib(),
        "liquidations": s["liquidations"],
        "trades": s["trades"],
        "conservation_error": s["conservation_error"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--traders", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--steps", type=int, default=1440)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one(args.traders[0], args.steps)))
        return
    print(
        f"machine: {platform.machine()} {platform.python_implementation()} {platform.python_version()}"
    )
    for n in args.traders:
        out = subprocess.run(
            [sys.executable, __file__, "--child", "--traders", str(n), "--steps", str(args.steps)],
            stdout=subprocess.PIPE,  # the child's progress goes straight to stderr
            text=True,
            check=False,
        )
        if out.returncode != 0:
            print(f"{n:>7,} traders: failed (exit {out.returncode})", flush=True)
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        print(
            f"{r['traders']:>7,} traders ({r['agents']:,} agents), {r['steps']} steps: "
            f"build {r['build_s']:.1f} s, run {r['run_s']:.1f} s, summary {r['summary_s']:.1f} s, "
            f"peak RSS {r['peak_rss_gib']:.2f} GiB, {r['liquidations']:,} liquidations, "
            f"{r['trades']:,} trades, conservation error {r['conservation_error']:.1e} USD",
            flush=True,
        )


if __name__ == "__main__":
    main()
