"""Small versions of the presets for fast tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from crossmargin.model import Scenario

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = Path(__file__).resolve().parent.parent / "experiments" / "scenarios"
PRESETS = sorted(p.stem for p in SCENARIOS.glob("*.toml"))


def small(scenario: Scenario, *, steps: int = 160, traders: int = 80) -> Scenario:
    """The same scenario with few agents and a short day; shocks keep their place in it."""
    f = steps / scenario.steps
    shocks = [
        s.model_dump() | {"step": max(1, int(s.step * f)), "duration": max(0, int(s.duration * f))}
        for s in scenario.shocks
    ]
    return scenario.replace(
        steps=steps,
        shocks=shocks,
        **{
            "agents.leveraged.count": traders,
            "agents.market_makers.count": 4,
            "agents.noise.count": 30,
            "agents.fundamentalists.count": 5,
            "agents.momentum.count": 5,
        },
    )


def preset(name: str, **kw) -> Scenario:
    return small(Scenario.from_toml(SCENARIOS / f"{name}.toml"), **kw)


def cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run ``crossmargin ARGS`` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "crossmargin.experiments.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
