"""Hypothesis strategies for whole-model runs: policy levers and shocks.

Shared by the model-level property test (``test_model.py``, a few derandomized cases in
every ``make test``) and the soak search (``tests/soak.py``, hundreds of random cases on
demand), so that both draw from the same space.
"""

from __future__ import annotations

from hypothesis import strategies as st

__all__ = ["LEVERS", "WORLD_LEVERS", "jumps", "shocks", "world_shocks"]

# Policy levers of a single venue (dotted keys of Scenario.replace).
LEVERS = st.fixed_dictionaries(
    {
        "margin_mode": st.sampled_from(["cross", "isolated", "portfolio"]),
        "mark_rule": st.sampled_from(["median", "index", "last_trade", "book_mid"]),
        "insurance_fund": st.sampled_from([0.0, 1e4, 1e6]),
        "vault_capital": st.sampled_from([0.0, 1e5, 5e6]),
        "mmr_scale": st.sampled_from([0.5, 0.8, 1.0]),
        "liquidation.shortfall": st.sampled_from(["adl", "socialized"]),
        "liquidation.adl_price": st.sampled_from(["bankruptcy", "mark"]),
        "liquidation.backstop": st.booleans(),
        "liquidation.fund_takeover": st.booleans(),
        "liquidation.step_share": st.sampled_from([0.1, 0.25, 1.0]),
        "liquidation.insurance_floor": st.sampled_from([0.0, 5e3]),
        "agents.leveraged.leverage_median": st.sampled_from([2.0, 10.0, 40.0]),
        "agents.leveraged.max_leverage": st.sampled_from([25.0, 100.0]),
        "agents.leveraged.collateral_share": st.sampled_from([0.0, 0.3]),
    }
)

# What a world of venues varies beyond its venues' rules.
WORLD_LEVERS = st.fixed_dictionaries(
    {
        "agents.leveraged.leverage_median": st.sampled_from([2.0, 10.0, 40.0]),
        "agents.leveraged.max_leverage": st.sampled_from([25.0, 100.0]),
        "cross.arbitrageurs": st.sampled_from([0, 6]),
        "cross.hedged": st.sampled_from([0, 100]),
        "transfers.delay_mean": st.sampled_from([1.0, 30.0, 300.0]),
    }
)


def _jump(last: int):
    return st.fixed_dictionaries(
        {
            "kind": st.just("index_jump"),
            "step": st.integers(3, last),
            "size": st.sampled_from([-0.95, -0.5, -0.2, 0.3, 1.5]),
            "duration": st.integers(0, 6),
        }
    )


def jumps(*, last: int = 50):
    """One to three index jumps of −95% to +150% between step 3 and ``last``."""
    return st.lists(_jump(last), min_size=1, max_size=3)


def _timed(kind: str, last: int, **fields):
    return st.fixed_dictionaries(
        {"kind": st.just(kind), "step": st.integers(3, last), "duration": st.integers(1, 20)}
        | fields
    )


def shocks(*, last: int = 50):
    """One to four shocks of the single-venue kinds: jumps, volatility regimes,
    market makers withdrawing, a collateral sold off, a frozen oracle, a halt."""
    one = st.one_of(
        _jump(last),
        _timed("vol_regime", last, size=st.sampled_from([0.0, 5.0, 50.0])),
        _timed("mm_withdrawal", last, size=st.sampled_from([0.5, 1.0])),
        _timed("depeg", last, size=st.sampled_from([1e5, 1e7])),
        _timed("oracle_freeze", last),
        _timed("halt", last),
    )
    return st.lists(one, min_size=1, max_size=4)


def world_shocks(venues: list[str], perps: list[str], markets: list[str], *, last: int = 50):
    """One to four shocks of a world of venues: jumps of the value, sell programs on a
    venue, withdrawal halts, trading halts, makers withdrawing, frozen oracles."""
    one = st.one_of(
        _jump(last),
        _timed(
            "sell_program",
            last,
            venue=st.sampled_from(venues),
            market=st.sampled_from(markets),
            notional=st.sampled_from([1e6, 1e8]),
        ),
        _timed("withdrawal_halt", last, venue=st.sampled_from(venues)),
        _timed("halt", last, venue=st.sampled_from(perps)),
        _timed(
            "mm_withdrawal", last, venue=st.sampled_from(venues), size=st.sampled_from([0.5, 1.0])
        ),
        _timed("oracle_freeze", last, venue=st.sampled_from(perps)),
        _timed("vol_regime", last, size=st.sampled_from([5.0, 30.0])),
    )
    return st.lists(one, min_size=1, max_size=4)
