"""Hashes of every table a run produces, to show a speed change leaves outputs as they were.

``short``: every preset for up to 800 steps; ``full``: the baseline and five-venue days.
For each run it hashes the model, market, event, trade and agent tables and the summary,
and writes them as JSON; run it in two checkouts (``PYTHONPATH`` at the other one) and
compare the files with ``cmp``.

Run: ``.venv/bin/python benchmarks/golden.py short|full OUT.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json

import pandas as pd
from crossmargin.model import CrossMarginModel, Scenario, presets


def digest(df: pd.DataFrame) -> str:
    """A short hash of a table's values, index and column names."""
    values = pd.util.hash_pandas_object(df.reset_index(), index=True).to_numpy().tobytes()
    return hashlib.sha256(values + ",".join(map(str, df.columns)).encode()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=["short", "full"])
    parser.add_argument("out")
    args = parser.parse_args()
    jobs = (
        [(p, 800) for p in presets()]
        if args.which == "short"
        else [("baseline", 1440), ("multivenue", 1440)]
    )
    hashes = {}
    for name, steps in jobs:
        sc = Scenario.preset(name)
        m = CrossMarginModel(sc)
        m.run_for(min(steps, sc.steps))
        summary = json.dumps(m.summary(), sort_keys=True, default=str).encode()
        hashes[name] = {
            "model": digest(m.model_frame()),
            "market": digest(m.market_frame()),
            "events": digest(m.events),
            "trades": digest(m.trades),
            "agents": digest(m.agent_frame()),
            "summary": hashlib.sha256(summary).hexdigest()[:16],
        }
        print(name, hashes[name], flush=True)
    with open(args.out, "w") as fh:
        json.dump(hashes, fh, indent=1)


if __name__ == "__main__":
    main()
