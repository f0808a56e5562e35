"""CrossMarginModel: the Mesa model that ties the world, its venues and the agents.

One step is one minute::

    shocks (Mesa events fired just before the step)
    → the world opens: news moves the value, each venue gets its index
    → agents act on every venue (orders match as they arrive)
    → each venue settles: pools unwind, funding on its interval, the mark (the minute's
      sample), cascade rounds, every negative balance booked
    → the world closes: every venue's signed flow moves the value, treasuries'
      transfers land and leave
    → collect data

A scenario without venues is a world of one perpetual venue whose index is the news
(:mod:`.world`); its runs are those of every earlier version, draw for draw.
"""

from __future__ import annotations

from typing import Any

import mesa
import networkx as nx
import numpy as np
import pandas as pd

from .agents import Fundamentalist, LeveragedTrader, MomentumTrader, NoiseTrader, Trader
from .collect import AGENT_KINDS, REJECTION_COLUMNS, FrameCollector, ModelRecorder
from .contagion import CauseWeights, build_cascade_graph, build_exposure_graph, cascade_metrics
from .events import LIQUIDATION_KINDS
from .markets import ISOLATED, MARGIN_MODES
from .measures import (
    accounts_liquidated,
    depth_retained,
    half_life,
    liquidation_count,
    long_share,
    loss_borne,
    max_drawdown,
)
from .orderbook import COMPILED
from .population import account_kinds, build_cross_agents, build_venue_agents
from .scenario import Scenario, ShockConfig
from .shocks import ATTRIBUTION_WINDOW, Shock, make_shock
from .twins import check as check_twins
from .venue import Venue
from .world import World


def _python_turns(actors: list, order: np.ndarray, kind: np.ndarray, row: np.ndarray):
    """The turns of a step as ``(agent, type, row)``; with the compiled book,
    ``Turns`` of ``model/_turns.pxi`` gives the same with the next agents prefetched."""
    for i, t, r in zip(order.tolist(), kind.tolist(), row.tolist(), strict=True):
        yield actors[i], t, r


def _python_gather(actors: list, sel: np.ndarray) -> list:
    """``[actors[i] for i in sel]``; with the compiled book, ``gather`` of
    ``model/_turns.pxi`` gives the same list with the agents ahead prefetched."""
    return [actors[i] for i in sel.tolist()]


if COMPILED:
    from ._book import Turns, gather

    _turns, _gather = Turns, gather
else:
    _turns, _gather = _python_turns, _python_gather


__all__ = ["VECTOR_TYPES", "CrossMarginModel"]

VECTOR_TYPES = (NoiseTrader, Fundamentalist, MomentumTrader, LeveragedTrader)
"""Agent types whose decisions are made for all active members of a venue at once."""
_FORCED = ("partial", "full", "pool_derisk")


class CrossMarginModel(mesa.Model):
    """Agent-based model of cross-margin liquidation contagion across venues.

    Args:
        scenario: A :class:`~model.scenario.Scenario` (default: ``Scenario()``).
        rng: Seed of the model's random generator (default: ``scenario.seed``).
        **overrides: Scenario fields to change, dotted keys written with ``__``
            (``liquidation__fee=0.01``), so that Mesa's ``batch_run`` can sweep them.
    """

    def __init__(
        self, scenario: Scenario | None = None, *, rng: Any = None, **overrides: Any
    ) -> None:
        """Build the world of ``scenario``: venues, their books, ledgers and pools, the
        agents and the shocks.

        Args:
            scenario: A :class:`~crossmargin.model.scenario.Scenario` (default:
                ``Scenario()``, a small calm market).
            rng: Seed of the model's random generator (default: ``scenario.seed``); an
                int different from it is written into the resolved scenario.
            **overrides: Scenario fields to change, dotted keys written with ``__``
                (``liquidation__fee=0.01``), so that Mesa's ``batch_run`` can sweep them.

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=3), rng=5, margin_mode="isolated")
            >>> m.config.seed, m.config.margin_mode, m.venues
            (5, 'isolated', ['venue'])
        """
        check_twins()  # once a process: is the compiled order path the Python code's twin?
        scenario = scenario or Scenario()
        if overrides:
            scenario = scenario.replace(**overrides)
        if rng is None:
            rng = scenario.seed
        elif isinstance(rng, int | np.integer) and rng != scenario.seed:
            scenario = scenario.replace(seed=int(rng))  # the resolved scenario names its seed
        super().__init__(rng=rng)
        self.config = scenario
        self.t = 0
        self.top_ups = 0.0
        self.derisk_count = 0
        self.world = World(self, scenario)
        for venue in self.world.venues:
            build_venue_agents(self, venue)
        if self.world.multi:
            build_cross_agents(self)
        agents = list(self.agents)
        for venue in self.world.venues:
            venue.set_kinds(*account_kinds(venue, agents))
            venue.exchange.update_collateral_prices()
            venue.val = venue.val_prev = venue.exchange.revalue()
        self._start_clocks()
        self.shocks: list[Shock] = [make_shock(self, cfg) for cfg in scenario.shocks]
        for shock in self.shocks:
            self.schedule_event(shock.fire, at=shock.cfg.step - 0.5)
        self.active_shocks: list[tuple[int, int]] = []  # (event id, last step it is blamed)
        self.root_causes: dict[int, float] = {}
        self.edge_weights = CauseWeights()  # the cascade graph's edges (venue.attribute)
        self._owner_events: dict[int, tuple[int, int]] = {}  # owner → (event, step)
        self._events_seen = 0
        self.recorder = ModelRecorder(self)
        self.datacollector = FrameCollector(self.recorder.keys, capacity=scenario.steps)
        self.record = np.zeros(len(self.recorder.keys))  # this step's row
        self._agent_rows: list[dict] = []
        self.running = True

    # Mesa's base class keeps its own Scenario object; ``scenario`` is ours (pydantic),
    # also available as ``config``, the name the model uses internally.
    @property
    def scenario(self) -> Scenario:  # type: ignore[override]
        """The validated scenario this model was built from."""
        return self.config

    @scenario.setter
    def scenario(self, value: Any) -> None:
        self._mesa_scenario = value

    def _start_clocks(self) -> None:
        """Poisson clocks: one vectorized draw per step over every agent with a rate
        activates it with p = 1 − exp(−rate); vectorized types decide per (type, venue)."""
        self._actors: list[Trader] = [ag for ag in self.agents if ag.activation_rate > 0]
        rates = np.array([ag.activation_rate for ag in self._actors])
        self._p_active = 1.0 - np.exp(-rates)
        self._groups: list[tuple[type, Venue]] = [
            (cls, venue)
            for venue in self.world.venues
            for cls in VECTOR_TYPES
            if any(type(a) is cls and a.venue is venue for a in self._actors)
        ]
        index = {g: i for i, g in enumerate(self._groups)}
        self._actor_types = np.array(
            [index.get((type(a), a.venue), -1) for a in self._actors], dtype=np.int64
        )
        self._actor_venue = np.array([a.venue.code for a in self._actors], dtype=np.int64)
        self._actor_row = np.zeros(len(self._actors), dtype=np.int64)

    # ----------------------------------------------------------------- step
    def step(self) -> None:
        """One minute (shocks were fired by Mesa events just before); a halted venue's
        agents and risk engine rest while the world moves on."""
        self.t += 1
        self.world.open(self.t)  # news and impact move the value; every venue's index
        self._agents_act()  # Poisson clocks on every venue; orders match as they arrive
        for venue in self.world.venues:
            venue.settle(self.t)  # unwind, funding, mark, cascade rounds, losses booked
        self.world.close(self.t)  # every venue's flow moves the value; transfers settle
        self._collect()
        if self.t >= self.config.steps:
            self.running = False

    def _agents_act(self) -> None:
        """Poisson clocks: one vectorized draw picks who acts; the agent types whose
        decisions are a formula decide for all their active members on a venue in one
        vectorized computation; then every active agent enters its orders in a random
        order. Nobody acts on a halted venue."""
        halted = [v.code for v in self.world.venues if v.halted]
        if len(halted) == len(self.world.venues):
            return
        rng = self.rng
        drawn = np.flatnonzero(rng.random(len(self._actors)) < self._p_active)
        if halted:
            drawn = drawn[~np.isin(self._actor_venue[drawn], halted)]
        order = rng.permutation(drawn)
        actors, kind, row = self._actors, self._actor_types, self._actor_row
        plans: list[tuple] = []
        kinds = self._actor_types[drawn]
        for g, (cls, venue) in enumerate(self._groups):
            sel = drawn[kinds == g]
            row[sel] = np.arange(len(sel))
            plans.append(cls.decide(venue, _gather(actors, sel)) if len(sel) else ())
        # Each actor's type and row gathered in turn order at once: at a million
        # traders a lookup per turn in the 1.1 M-long arrays is a cache miss.
        for agent, t, r in _turns(actors, order, kind[order], row[order]):
            if t < 0:
                agent.act()
            else:
                agent.execute(plans[t], r)

    # ------------------------------------------------------------ contagion
    def blame(self, venue: Venue, account: int, loss: float) -> tuple[dict, dict]:
        """The round-0 causes of a liquidation of ``account`` on ``venue`` that lost
        ``loss`` USD since the last step, as ({event: loss it passed}, {event: edge
        kind}): the active shocks (kind ``shock``) and, in a world of venues, what
        crossed from another venue (:meth:`_cross_causes`)."""
        weights: dict[int, float] = {}
        kinds: dict[int, str] = {}
        active = [eid for eid, until in self.active_shocks if self.t <= until]
        for eid in active:
            weights[eid] = loss / len(active)
            kinds[eid] = "shock"
        if self.world.multi and loss > 0:
            for e, (w, k) in self._cross_causes(venue, account, loss).items():
                weights[e] = weights.get(e, 0.0) + w
                kinds[e] = k
        return weights, kinds

    def _cross_causes(self, venue: Venue, account: int, loss: float) -> dict:
        """Losses that crossed venues: ``owner`` (a liquidation or ADL of the same owner
        on another venue within the attribution window: its hedge was cut), ``treasury``
        (a transfer to the account still in flight), ``index`` (forced flow on another
        venue in this step or the last, in a market the account holds, weighted by
        notional × position: it moved the value and the reference, the spot prices and
        so this perpetual venue's index; ``price`` on a spot venue)."""
        out: dict[int, tuple[float, str]] = {}
        self._scan_owner_events()
        venue.kinds()  # owners of accounts opened since the start padded with −1
        owner = int(venue.owner[account]) if account < len(venue.owner) else -1
        if owner >= 0 and owner in self._owner_events:
            e, step = self._owner_events[owner]
            if self.t - step <= ATTRIBUTION_WINDOW and self._event_venue(e) != venue.code:
                out[e] = (loss, "owner")
        tr = self.world.treasury.inbound(venue.code, account)
        if tr is not None:
            out[tr.event] = (min(tr.amount, loss), "treasury")
        log = self.world.events
        pos = np.abs(venue.exchange.ledger.pos[:, account] * venue.mark)
        # Forced flow elsewhere reaches a perpetual venue through its index (the flow
        # moved the value and the reference, the spot venues' prices with them, and so
        # the index this venue marks by), a spot venue through its reference.
        kind = "index" if venue.code in self.world.rules else "price"
        forced, total = [], 0.0
        kinds, markets = log.column("kind"), log.column("market")
        steps, venues, notional = log.column("step"), log.column("venue"), log.column("notional")
        e = len(log) - 1
        while e >= 0 and steps[e] >= self.t - 1:
            m = markets[e]
            if kinds[e] in _FORCED and venues[e] != venue.code and m >= 0 and pos[m] > 0:
                w = notional[e] * pos[m]
                forced.append((e, w, kind))
                total += w
            e -= 1
        for e, w, kind in forced:
            out[e] = (loss * w / total, kind)
        return out

    def _scan_owner_events(self) -> None:
        """Keep, per owner of accounts on several venues, its latest liquidation or ADL."""
        log = self.world.events
        if self._events_seen == len(log):
            return
        kinds, accts = log.column("kind"), log.column("account")
        venues, steps = log.column("venue"), log.column("step")
        owners = self.world.treasury.accounts
        for e in range(self._events_seen, len(log)):
            if kinds[e] in ("liquidation", "adl"):
                v = self.world.venues[venues[e]]
                v.kinds()
                a = accts[e]
                o = int(v.owner[a]) if 0 <= a < len(v.owner) else -1
                if o in owners:
                    self._owner_events[o] = (e, steps[e])
        self._events_seen = len(log)

    def _event_venue(self, e: int) -> int:
        return self.world.events.column("venue")[e]

    # ------------------------------------------------------------------ data
    def _collect(self) -> None:
        """This step's row of the model frame (:class:`~.collect.ModelRecorder`)."""
        self.recorder.record(self.record)
        self.datacollector.collect(self)
        if self.config.collect_agents:
            self._agent_rows += self.recorder.agent_rows()

    # ---------------------------------------------------------- the venues
    @property
    def venues(self) -> list[str]:
        """The venues' names (``["venue"]`` for a single-venue scenario).

        Examples:
            >>> CrossMarginModel(Scenario.preset("multivenue")).venues[-2:]
            ['binance', 'hyperliquid']
        """
        return [v.name for v in self.world.venues]

    def venue(self, name: str | None = None) -> Venue:
        """A venue by name (default: the home venue, the one the unprefixed columns,
        :attr:`exchange` and :attr:`risk` describe)."""
        if name is None:
            return self.world.home
        if name not in self.world.by_name:
            raise KeyError(f"venue: no venue {name!r} (venues: {', '.join(self.venues)})")
        return self.world.by_name[name]

    # The home venue's state, as single-venue code reads it.
    exchange = property(lambda self: self.world.home.exchange, doc="The home venue's exchange.")
    risk = property(lambda self: self.world.home.risk, doc="The home venue's risk engine.")
    index = property(lambda self: self.world.home.index, doc="The home venue's index.")
    mark = property(lambda self: self.world.home.mark, doc="The home venue's marks.")
    mid = property(lambda self: self.world.home.mid, doc="The home venue's book mids.")
    vol = property(lambda self: self.world.home.vol, doc="EWMA volatility of its marks.")
    val = property(lambda self: self.world.home.val, doc="The home venue's last valuation.")
    spread_bps = property(lambda self: self.world.home.spread_bps, doc="Its quoted spreads.")
    premium_sum = property(lambda self: self.world.home.premium_sum, doc="Funding premium.")
    premium_n = property(lambda self: self.world.home.premium_n, doc="Premium samples.")
    funding_rate = property(lambda self: self.world.home.funding_rate, doc="Last funding.")
    round_marks = property(lambda self: self.world.home.round_marks, doc="Marks per round.")
    leveraged = property(lambda self: self.world.home.leveraged, doc="Leveraged traders.")

    @property
    def halted_until(self) -> int:
        """The home venue's halt: trading is halted up to and including this step."""
        return self.world.home.halted_until

    @halted_until.setter
    def halted_until(self, step: int) -> None:
        self.world.home.halted_until = step

    def predicted_funding(self) -> np.ndarray:
        """Per market, the rate the home venue's next funding payment would have if its
        interval ended now (:meth:`Venue.predicted_funding`). Positive: longs pay shorts.

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=2, agents={"leveraged": {"count": 5}}))
            >>> m.predicted_funding().tolist()  # no premium sampled yet: the interest rate
            [0.0001, 0.0001]
        """
        return self.world.home.predicted_funding()

    # ------------------------------------------------------------- public
    def add_shock(self, shock: ShockConfig | dict[str, Any]) -> None:
        """Schedule one more shock in a running model (e.g. on a copy of it, to branch
        one history into several what-ifs with common random numbers).

        Args:
            shock: a :class:`ShockConfig` or its fields; its step must be after the
                current one and not after the scenario's last.

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=4, agents={"leveraged": {"count": 5}}))
            >>> m.run_for(1)
            >>> m.add_shock({"kind": "index_jump", "step": 3, "size": -0.1})
            >>> m.run_for(3)
            >>> int((m.events["kind"] == "shock").sum())
            1
        """
        cfg = shock if isinstance(shock, ShockConfig) else ShockConfig(**shock)
        if not self.t < cfg.step <= self.config.steps:
            raise ValueError(
                f"step: {cfg.step} is not after the current step {self.t} and at most "
                f"the last step {self.config.steps}"
            )
        s = make_shock(self, cfg)
        self.shocks.append(s)  # the model keeps the callback's object alive
        self.schedule_event(s.fire, at=cfg.step - 0.5)

    def withdraw(self, account: int, amount: float, *, venue: str | None = None) -> None:
        """Take ``amount`` USD of cash out of ``account`` (on ``venue``, default the home
        venue; money out, so the books still reconcile); the account may go below its
        margin and is then liquidated in the next step like any other. Used to make one
        account fail on purpose.

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=2, agents={"leveraged": {"count": 5}}))
            >>> before = float(m.accounts()["equity"].iloc[0])
            >>> m.withdraw(0, 100.0)
            >>> round(before - float(m.accounts()["equity"].iloc[0]), 6)
            100.0
        """
        v = self.venue(venue)
        v.exchange.ledger.deposit(account, -float(amount))
        v.val = v.exchange.revalue()

    @property
    def events(self) -> pd.DataFrame:
        """Every risk-engine action, shock and transfer on every venue, one row each
        (``venue`` names the venue)."""
        return self.world.events.to_frame()

    @property
    def trades(self) -> pd.DataFrame:
        """Every fill and off-book transfer on every venue (``venue`` names it)."""
        parts = []
        for v in self.world.venues:
            df = v.exchange.trades_frame()
            df.insert(0, "venue", pd.Series([v.name] * len(df), dtype="string"))
            parts.append(df)
        return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]

    @property
    def transfers(self) -> pd.DataFrame:
        """Every treasury transfer sent (empty for a single venue): owner, source and
        target venue and account, USD, the step it left and the step it lands."""
        names = self.venues
        rows = [
            {
                "owner": tr.owner,
                "source_venue": names[tr.source[0]],
                "source_account": tr.source[1],
                "target_venue": names[tr.target[0]],
                "target_account": tr.target[1],
                "amount": tr.amount,
                "sent": tr.sent,
                "due": tr.due,
                "event": tr.event,
            }
            for tr in self.world.treasury.history
        ]
        cols = ["owner", "source_venue", "source_account", "target_venue", "target_account"]
        return pd.DataFrame(rows, columns=[*cols, "amount", "sent", "due", "event"])

    def model_frame(self, *, long: bool = False) -> pd.DataFrame:
        """The per-step data: one row per step (wide: the home venue's columns, then
        ``{venue}:…`` for every other venue and ``world:…`` for the world), or with
        ``long=True`` one row per step, venue, market and variable (columns ``t``,
        ``venue``, ``market``, ``variable``, ``value``; ``market`` is ``"all"`` for
        venue-wide series, ``venue`` is empty for the world's), ready for seaborn's
        ``relplot(..., row="variable", hue="market")``. Column meanings: docs/outputs.md.

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=2, agents={"leveraged": {"count": 5}}))
            >>> m.run_for(2)
            >>> f = m.model_frame(long=True)
            >>> list(f.columns), sorted(set(f["market"]))[:2], sorted(set(f["venue"]))
            (['t', 'venue', 'market', 'variable', 'value'], ['BTC', 'ETH'], ['venue'])
        """
        df = self.datacollector.frame()
        df["t"] = df["t"].astype("int64")
        if not long:
            return df
        home = self.world.home.name
        markets = self.config.market_names
        venue, market, variable = [], [], []
        cols = [c for c in df.columns if c != "t"]
        for c in cols:
            where, _, name = c.rpartition(":")
            venue.append("" if where == "world" else where or home)
            head, _, rest = name.partition("_")
            if head in markets and rest:
                market.append(head)
                variable.append(rest)
            else:
                market.append("all")
                variable.append(name)
        n = len(df)
        values = df[cols].to_numpy(float)
        out = pd.DataFrame(
            {
                "t": np.repeat(df["t"].to_numpy(), len(cols)),
                "venue": np.tile(np.array(venue, dtype=object), n),
                "market": np.tile(np.array(market, dtype=object), n),
                "variable": np.tile(np.array(variable, dtype=object), n),
                "value": values.ravel(),
            }
        )
        order = np.lexsort((out["variable"], out["market"], out["venue"], out["t"]))
        out = out.iloc[order].reset_index(drop=True)
        return out.astype(
            {"venue": "string", "market": "string", "variable": "string", "value": "float64"}
        )

    def market_frame(self, *, venue: str | None = None) -> pd.DataFrame:
        """The per-market columns of one venue (default: the home venue) in long
        ("tidy") form, ready for seaborn: one row per step and market, columns ``t``,
        ``market`` and one per quantity (``index``, ``mark``, ``mid``, ``last``,
        ``spread``, ``depth1``, ...).

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=3, agents={"leveraged": {"count": 5}}))
            >>> m.run_for(3)
            >>> f = m.market_frame()
            >>> len(f), list(f.columns[:4])
            (6, ['t', 'market', 'index', 'mark'])
        """
        df = self.model_frame()
        v = self.venue(venue)
        prefix = "" if v is self.world.home else f"{v.name}:"
        parts = []
        for name in self.config.market_names:
            head = f"{prefix}{name}_"
            cols = [c for c in df.columns if c.startswith(head)]
            part = df[["t", *cols]].rename(columns={c: c.removeprefix(head) for c in cols})
            part.insert(1, "market", name)
            parts.append(part)
        return pd.concat(parts, ignore_index=True).sort_values(["t", "market"], ignore_index=True)

    def agent_frame(self) -> pd.DataFrame:
        """Per-agent rows (only with ``collect_agents = true``)."""
        return pd.DataFrame(self._agent_rows)

    def accounts(self) -> pd.DataFrame:
        """One row per account of every venue at the current marks: the venues' books
        as a user (or an outside check) reads them.

        Columns: ``venue``, ``account`` (its number on that venue), ``owner`` (the
        agent that holds it: one owner, one row per venue account; −1 for pools and
        accounts opened from outside the model), ``agent_type`` (:data:`AGENT_KINDS`),
        ``margin_mode``, ``equity`` (USD, negative while under water), ``available``
        (free balance as it is, negative included: cross/portfolio equity − IM −
        open-order margin; isolated, the wallet outside its positions, cash + haircut
        collateral value − deficit − open-order margin), ``maintenance_margin``,
        ``initial_margin``, ``gross_notional``, ``leverage`` (gross / equity; inf at
        equity ≤ 0 with positions), ``bad_debt_booked`` (USD written off for this
        account).

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=2, agents={"leveraged": {"count": 5}}))
            >>> m.run_for(2)
            >>> list(m.accounts().columns)[:4]
            ['venue', 'account', 'owner', 'agent_type']
        """
        return pd.concat([self._accounts(v) for v in self.world.venues], ignore_index=True)

    @staticmethod
    def _accounts(venue: Venue) -> pd.DataFrame:
        ex, led = venue.exchange, venue.exchange.ledger
        val = ex.revalue()
        n = led.n
        iso = led.mode[:n] == ISOLATED
        om = np.zeros(n)
        for a, x in ex.order_margin.items():
            om[a] = x
        wallet = led.free_balance(ex.coll_prices)
        free = np.where(iso, wallet, val.equity - val.im) - om
        lev = np.divide(
            val.gross,
            val.equity,
            out=np.where(val.gross > 0, np.inf, 0.0),
            where=val.equity > 0,
        )
        modes = {v: k for k, v in MARGIN_MODES.items()}
        kind = venue.kinds()
        return pd.DataFrame(
            {
                "venue": pd.Series([venue.name] * n, dtype="string"),
                "account": np.arange(n, dtype=np.int64),
                "owner": venue.owner[:n].astype(np.int64),
                "agent_type": [AGENT_KINDS[k] if k >= 0 else "other" for k in kind[:n]],
                "margin_mode": [modes[int(x)] for x in led.mode[:n]],
                "equity": val.equity,
                "available": free,
                "maintenance_margin": val.mm,
                "initial_margin": val.im,
                "gross_notional": val.gross,
                "leverage": lev,
                "bad_debt_booked": led.bad_debt_booked[:n].copy(),
            }
        )

    def pool_writedown(self) -> float | None:
        """The net write-down of the synthetic-dollar pools' creditors now (USD), over
        every venue with one: (1 − recovery rate) × tokens outstanding; None without
        such a pool. Falls and rises along the way are the ``pool_shortfall`` /
        ``pool_recovery`` events.

        Examples:
            >>> m = CrossMarginModel(Scenario(steps=2, agents={"leveraged": {"count": 5}}))
            >>> m.pool_writedown() is None
            True
        """
        parts = [x for v in self.world.venues if (x := v.pool_writedown()) is not None]
        return sum(parts) if parts else None

    @property
    def cascade_graph(self) -> nx.DiGraph:
        """The DAG of events on every venue: who caused whose loss, how much, and how
        (edge ``kind``: see :func:`~.contagion.build_cascade_graph`)."""
        return build_cascade_graph(self.world.events, self.edge_weights)

    @property
    def exposure_graph(self) -> nx.Graph:
        """Accounts, pools and markets; positions and claims as weighted edges."""
        return build_exposure_graph(self)

    def _column(self, venue: Venue, name: str) -> str:
        """The wide frame's column ``name`` of ``venue``."""
        return name if venue is self.world.home else f"{venue.name}:{name}"

    def _by_venue(self, df: pd.DataFrame) -> dict[str, dict[str, float]]:
        """Per venue: liquidations, accounts liquidated, liquidated and ADL notional, bad
        debt and the insurance fund's change (USD)."""
        log = self.world.events
        kinds = np.array(log.column("kind"), dtype=object)
        notional = np.array(log.column("notional"))
        venue = np.array(log.column("venue"), dtype=np.int64)
        accts = np.array(log.column("account"), dtype=np.int64)
        out = {}
        for v in self.world.venues:
            here = venue == v.code
            fund = df[self._column(v, "insurance_fund")] if len(df) else None
            heads = here & (kinds == "liquidation")
            out[v.name] = {
                "kind": v.kind,
                "liquidations": int(heads.sum()),
                "accounts_liquidated": len(set(accts[heads].tolist())),
                "liquidated_notional": float(
                    notional[here & np.isin(kinds, LIQUIDATION_KINDS)].sum()
                ),
                "adl_notional": float(notional[here & (kinds == "adl")].sum()),
                "bad_debt": float(v.risk.bad_debt),
                "insurance_fund_change": float(fund.iloc[-1] - v.exchange.insurance.start)
                if fund is not None
                else 0.0,
            }
        return out

    def summary(self) -> dict[str, Any]:
        """Headline results of the run (JSON-ready): over every venue (counts, losses,
        pools summed), the home venue's prices and depth, and ``by_venue``."""
        venues = self.world.venues
        df = self.model_frame()
        ev = self.world.events
        kinds = np.array(ev.column("kind"), dtype=object)
        notional = np.array(ev.column("notional"))
        names = self.config.market_names
        cm = cascade_metrics(ev)  # from the events' causes: no graph is built
        first_shock = min((s.cfg.step for s in self.shocks), default=None)

        def last(name: str) -> float:
            return (
                sum(float(df[self._column(v, name)].iloc[-1]) for v in venues) if len(df) else 0.0
            )

        vault_pnl, fund_pnl = last("vault_pnl"), last("fund_pnl")
        fund_start = sum(float(v.exchange.insurance.start) for v in venues)
        fund_path = sum(df[self._column(v, "insurance_fund")] for v in venues) if len(df) else None
        unbooked = (
            df["world:unbooked_negative_equity" if self.world.multi else "unbooked_negative_equity"]
            if len(df)
            else None
        )
        risks = [v.risk for v in venues]
        out: dict[str, Any] = {
            "scenario": self.config.name,
            "seed": int(self._seed) if isinstance(self._seed, int | np.integer) else None,
            "steps": int(self.t),
            "venues": self.venues,
            "n_accounts": int(sum(v.exchange.ledger.n for v in venues)),
            "n_agents": len(self.agents),
            "liquidations": liquidation_count(ev),
            "accounts_liquidated": accounts_liquidated(ev),
            "liquidated_notional": float(notional[np.isin(kinds, LIQUIDATION_KINDS)].sum()),
            "long_share": long_share(ev),
            "bankruptcies": int(sum(r.bankruptcies for r in risks)),
            "backstop_notional": float(notional[kinds == "backstop"].sum()),
            "takeover_notional": float(notional[kinds == "takeover"].sum()),
            "insurance_fund_start": fund_start,
            "insurance_fund_end": float(fund_path.iloc[-1])
            if fund_path is not None
            else fund_start,
            "insurance_fund_min": float(min(fund_path.min(), fund_start))
            if fund_path is not None
            else fund_start,
            "adl_events": int((kinds == "adl").sum()),
            "fund_paid": float(sum(r.fund_paid for r in risks)),
            "adl_charged": float(sum(r.adl_charged for r in risks)),
            "socialized_loss": float(sum(r.socialized_loss for r in risks)),
            "bad_debt": float(sum(r.bad_debt for r in risks)),
            "vault_pnl": vault_pnl,
            "fund_fees": float(sum(v.exchange.insurance.fees_in for v in venues)),
            "fund_pnl": fund_pnl,
            "loss_borne": loss_borne(
                ev, vault_pnl=vault_pnl, fund_pnl=fund_pnl, pool_writedown=self.pool_writedown()
            ),
            "orders_rejected": {
                c.removeprefix("rejected_"): int(sum(df[self._column(v, c)].sum() for v in venues))
                for c in REJECTION_COLUMNS
            },
            "unbooked_negative_equity": float(unbooked.iloc[-1]) if unbooked is not None else 0.0,
            "max_unbooked_negative_equity": float(unbooked.max()) if unbooked is not None else 0.0,
            "state_error": float(sum(v.exchange.state_error() for v in venues)),
            "max_drawdown": {n: max_drawdown(df[f"{n}_mark"].to_numpy()) for n in names},
            "cascade_max_depth": cm["max_depth"],
            "cascade_largest_size": cm["largest_size"],
            "cascade_mean_branching": cm["mean_branching"],
            "resilience_half_life": {
                n: half_life(df[f"{n}_depth1"].to_numpy(), first_shock - 1)
                if first_shock is not None
                else None
                for n in names
            },
            "depth_retained_1h": {
                n: depth_retained(df[f"{n}_depth1"].to_numpy(), first_shock - 1)
                if first_shock is not None
                else None
                for n in names
            },
            "trades": int(sum(v.exchange.n_trades for v in venues)),
            "top_ups": float(self.top_ups),
            "conservation_error": float(sum(v.exchange.conservation_error() for v in venues)),
            "transfer_error": float(self.world.transfer_error()),
            "adl_hedged_share": self.world.adl_hedged_notional / self.world.adl_notional
            if self.world.adl_notional > 0
            else None,
            "by_venue": self._by_venue(df),
        }
        return out
