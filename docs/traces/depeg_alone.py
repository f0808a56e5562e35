"""Trace behind docs/experiments.md's open question on the collateral depeg: the
October 2025 scenario's depeg alone (no index jump, no maker withdrawal), the
collateral priced off its own book or off the index.

Run: ``.venv/bin/python docs/traces/depeg_alone.py`` (about 40 s).
"""

from __future__ import annotations

from crossmargin.model import CrossMarginModel, Scenario

BASE = Scenario.from_toml("experiments/scenarios/oct2025_collateral_depeg.toml").replace(
    **{
        "shocks.0.step": 400,
        "shocks.1.step": 402,
        "shocks.2.step": 402,
        "steps": 600,
        "agents.leveraged.count": 400,
        "agents.noise.count": 150,
    }
)


def main() -> None:
    depeg = next(s for s in BASE.model_dump(mode="python")["shocks"] if s["kind"] == "depeg")
    for size in (500_000.0, 3_000_000.0, 10_000_000.0):
        for source in ("book", "index"):
            sc = BASE.replace(
                shocks=[dict(depeg, step=400, size=size)],
                **{"collateral.price_source": source},
            )
            for seed in (1, 2):
                m = CrossMarginModel(sc, rng=seed)
                m.run_for(sc.steps)
                df = m.model_frame()
                after = df["liquidations"].to_numpy()[399:].sum()
                print(
                    f"sell {size / 1e6:>4} M tokens, collateral priced off the {source:5}, "
                    f"rng {seed}: USDX low {df['collateral_price'].min():.3f}, "
                    f"liquidations after the depeg {after:.0f}"
                )


if __name__ == "__main__":
    main()
