"""Where a day's time goes, by agent type: wall time in each type's ``act`` or
``execute`` over one full day, per market book.

Every type's method is wrapped with a ``perf_counter`` pair, so the figures carry
about 1 µs of overhead per call; compare the shares between scenarios, not the total
against ``benchmarks/model.py``.

Run: ``.venv/bin/python benchmarks/agent_types.py [--scenario multivenue]``
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict


def main() -> None:
    from crossmargin.model import CrossMarginModel, Scenario

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="baseline", help="a preset's name")
    args = parser.parse_args()
    sc = Scenario.preset(args.scenario)
    model = CrossMarginModel(sc)
    spent: dict[str, float] = defaultdict(float)
    clock = time.perf_counter

    def timed(f, name):
        def wrapper(self, *a):
            t0 = clock()
            out = f(self, *a)
            spent[f"{type(self).__name__}.{name}"] += clock() - t0
            return out

        return wrapper

    wrapped = set()  # each defining class's method once, keyed by the acting type
    for cls in {type(a) for a in model.agents}:
        for name in ("act", "execute"):
            owner = next((k for k in cls.__mro__ if name in vars(k)), None)
            if owner is not None and (owner, name) not in wrapped:
                wrapped.add((owner, name))
                setattr(owner, name, timed(vars(owner)[name], name))
    cpu = time.process_time()
    model.run_for(sc.steps)
    cpu = time.process_time() - cpu
    books = sum(len(v.exchange.books) for v in model.world.venues)
    print(f"{args.scenario}: CPU {cpu:.2f} s for {books} books ({cpu / books:.3f} s a book)")
    for key, s in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"  {key:28s} {s:7.2f} s  {100 * s / cpu:4.1f}%  {s / books:.3f} s a book")


if __name__ == "__main__":
    main()
