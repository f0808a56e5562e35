"""Trace behind docs/experiments.md §6 and its first open question: what market makers'
withdrawal threshold does to a −10% shock (the market_maker_resilience scenario).

Run: ``.venv/bin/python docs/traces/makers_withdrawal.py`` (about 20 s).
"""

from __future__ import annotations

from collections import Counter

from crossmargin.model import CrossMarginModel, Scenario

BASE = Scenario.from_toml("experiments/scenarios/baseline.toml").replace(
    **{
        "steps": 720,
        "shocks.0.step": 360,
        "shocks.0.size": -0.1,
        "agents.leveraged.count": 400,
        "agents.noise.count": 150,
    }
)


def main() -> None:
    m = CrossMarginModel(BASE, rng=1)
    m.run_for(BASE.steps)
    depth = m.model_frame()["BTC_depth1"].to_numpy()
    print(
        f"default makers, rng 1: BTC depth within 1% {depth[330:359].mean() / 1e6:.2f} M USD "
        f"before the shock, {depth[419] / 1e6:.2f} M an hour after"
    )
    for vol in (0.001, 0.008):
        for seed in (1, 2):
            m = CrossMarginModel(
                BASE.replace(**{"agents.market_makers.withdraw_vol": vol}), rng=seed
            )
            m.run_for(BASE.steps)
            s = m.summary()
            kinds = Counter(m.exchange.events.column("kind"))
            pulls = sum(getattr(a, "withdrawals", 0) for a in m.agents)
            depth = m.model_frame()["BTC_depth1"].to_numpy()
            print(
                f"withdraw_vol {vol}, rng {seed}: liquidations {s['liquidations']}, "
                f"bankruptcies {s['bankruptcies']}, quote pulls {pulls}, partial sales "
                f"{kinds['partial']}, backstop transfers {kinds['backstop']}, BTC depth in the "
                f"hour after {depth[365:420].mean() / 1e6:.2f} M USD"
            )


if __name__ == "__main__":
    main()
