"""Contagion graphs (networkx): the cascade DAG of events and the exposure network.

The cascade graph has one node per event (ids as in ``events.parquet``) and a root
``"market"`` for liquidations no shock or earlier liquidation explains. An edge
``a → b`` means event a caused event b; its ``weight`` is the loss (USD) a passed to b.
Liquidations of round k > 0 hang off the forced orders of round k − 1 that moved the
prices of what the account held; the events of one waterfall hang off its
``liquidation`` head.
"""

from __future__ import annotations

import itertools
from array import array
from bisect import bisect_left
from collections.abc import Callable
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np

from .collect import AGENT_KINDS
from .events import EventLog
from .measures import mean_offspring

if TYPE_CHECKING:
    from .model import CrossMarginModel

ROOT = "market"
__all__ = [
    "EDGE_KINDS",
    "ROOT",
    "CauseWeights",
    "account_of",
    "build_cascade_graph",
    "build_exposure_graph",
    "cascade_metrics",
    "cascades",
    "liquidation_tree",
]


EDGE_KINDS = ("waterfall", "shock", "price", "collateral", "index", "owner", "treasury", "root")
"""How a loss passed along an edge of the cascade graph: ``waterfall`` (a liquidation
head to the events of its waterfall), ``shock``, ``price`` (forced flow moved the price
of what the account held: on the same venue, or on another venue through the value
every venue's prices follow), ``collateral`` (a pool's write-down repriced collateral),
``index`` (forced flow on a venue that is one of this venue's index constituents),
``owner`` (the same owner's account on another venue was liquidated or deleveraged: its
hedge was cut), ``treasury`` (a transfer to the account was still in flight), ``root``
(from the market root)."""
_KIND_CODE = {k: i for i, k in enumerate(EDGE_KINDS)}


class CauseWeights:
    """The loss (USD) each cause passed to an event and the edge's kind
    (:data:`EDGE_KINDS`), kept per event in flat arrays: 17 bytes an edge where a dict
    keyed by (cause, event) holds about 250. The edges are many: a liquidation of round
    k hangs off every forced order of round k − 1 in a market the account holds, so a
    round's edges grow with the product of its liquidations and the forced orders
    before them.

    Recording an event's causes again adds to (and overrides) what was recorded for it,
    as assigning the keys of a dict would.

    Examples:
        >>> w = CauseWeights()
        >>> w.record(7, {3: 2.5, 1: 4.0}, {3: "price", 1: "shock"})
        >>> w.get(3, 7), w.get(1, 7), w.get(2, 7), len(w)
        ((2.5, 'price'), (4.0, 'shock'), None, 2)
    """

    __slots__ = ("_cause", "_kind", "_slot", "_weight")

    def __init__(self) -> None:
        self._slot: dict[int, tuple[int, int]] = {}  # event -> (first edge, edges)
        self._cause = array("q")  # sorted within an event
        self._weight = array("d")
        self._kind = bytearray()

    def __len__(self) -> int:
        return sum(n for _, n in self._slot.values())

    def record(self, event: int, weights: dict[int, float], kinds: dict[int, str]) -> None:
        """Keep the loss each cause in ``weights`` passed to ``event`` and its edge kind
        (``kinds``, default ``price``)."""
        if event in self._slot:  # merge with what was recorded: the new values win
            old = self.causes_of(event)
            weights = {**{c: w for c, w, _ in old}, **weights}
            kinds = {**{c: k for c, _, k in old}, **kinds}
        causes = sorted(weights)
        self._slot[event] = (len(self._cause), len(causes))
        self._cause.extend(causes)
        self._weight.extend(weights[c] for c in causes)
        self._kind.extend(_KIND_CODE[kinds.get(c, "price")] for c in causes)

    def record_sorted(
        self, event: int, causes: np.ndarray, weights: np.ndarray, kinds: np.ndarray
    ) -> None:
        """:meth:`record` from arrays: ``causes`` (int64, ascending, no repeats), the
        loss each passed (float64) and its edge kind's index in :data:`EDGE_KINDS`
        (uint8). The same edges as ``record`` with dicts, copied as blocks.

        Examples:
            >>> w = CauseWeights()
            >>> w.record_sorted(
            ...     7, np.array([1, 3]), np.array([4.0, 2.5]), np.array([2, 1], np.uint8)
            ... )
            >>> w.causes_of(7)
            [(1, 4.0, 'price'), (3, 2.5, 'shock')]
        """
        if event in self._slot:  # a merge: as record does
            self.record(
                event,
                dict(zip(causes.tolist(), weights.tolist(), strict=True)),
                {c: EDGE_KINDS[k] for c, k in zip(causes.tolist(), kinds.tolist(), strict=True)},
            )
            return
        self._slot[event] = (len(self._cause), len(causes))
        self._cause.frombytes(np.ascontiguousarray(causes, dtype=np.int64).tobytes())
        self._weight.frombytes(np.ascontiguousarray(weights, dtype=np.float64).tobytes())
        self._kind.extend(np.ascontiguousarray(kinds, dtype=np.uint8).tobytes())

    def get(self, cause: int, event: int) -> tuple[float, str] | None:
        """(loss, kind) of the edge ``cause → event``, or None if none was recorded."""
        slot = self._slot.get(event)
        if slot is None:
            return None
        lo, hi = slot[0], slot[0] + slot[1]
        i = bisect_left(self._cause, cause, lo, hi)
        if i < hi and self._cause[i] == cause:
            return self._weight[i], EDGE_KINDS[self._kind[i]]
        return None

    def causes_of(self, event: int) -> list[tuple[int, float, str]]:
        """The recorded (cause, loss, kind) of ``event``, by cause id."""
        first, n = self._slot.get(event, (0, 0))
        return [
            (self._cause[i], self._weight[i], EDGE_KINDS[self._kind[i]])
            for i in range(first, first + n)
        ]


def build_cascade_graph(
    events: EventLog,
    edge_weights: CauseWeights | dict[tuple[int, int], float],
    edge_kinds: dict[tuple[int, int], str] | None = None,
) -> nx.DiGraph:
    """The DAG of events with loss-weighted edges; nodes carry their ``venue`` (name)
    and edges their ``kind`` (:data:`EDGE_KINDS`). ``edge_weights`` is the model's
    :class:`CauseWeights` or a dict keyed by (cause, event) with ``edge_kinds`` beside
    it; an edge without a recorded weight carries the event's loss, kind
    ``waterfall``.

    Examples:
        >>> log = EventLog(["a", "b"])
        >>> s = log.add("shock", step=1, round=0)
        >>> h = log.add("liquidation", step=1, round=0, account=3, causes=(s,), venue=1)
        >>> g = build_cascade_graph(log, {(s, h): 5.0}, {(s, h): "shock"})
        >>> g.nodes[h]["venue"], g.edges[s, h]["kind"], g.edges[s, h]["weight"]
        ('b', 'shock', 5.0)
    """
    if isinstance(edge_weights, CauseWeights):
        edge = edge_weights.get
    else:
        kinds = edge_kinds or {}

        def edge(c: int, e: int) -> tuple[float, str] | None:
            w = edge_weights.get((c, e))
            return None if w is None else (w, kinds.get((c, e), "price"))

    names = events.venues
    g = nx.DiGraph()
    g.add_node(
        ROOT, kind="root", step=0, round=0, account=-1, market=-1, notional=0.0, loss=0.0, venue=""
    )
    cols = {c: events.column(c) for c in events.COLUMNS}
    for e in range(len(events)):
        kind = cols["kind"][e]
        g.add_node(
            e,
            kind=kind,
            step=int(cols["step"][e]),
            round=int(cols["round"][e]),
            account=int(cols["account"][e]),
            market=int(cols["market"][e]),
            notional=float(cols["notional"][e]),
            loss=float(cols["loss"][e]),
            venue=names[cols["venue"][e]],
        )
        causes = cols["causes"][e]
        if causes:
            for c in causes:
                w, k = edge(c, e) or (cols["loss"][e], "waterfall")
                g.add_edge(c, e, weight=float(w), kind=k)
        elif kind not in ("shock", "transfer"):
            g.add_edge(ROOT, e, weight=float(cols["loss"][e]), kind="root")
    return g


def account_of(g: nx.DiGraph | EventLog, node: int) -> tuple[str, int]:
    """The account an event of the cascade graph belongs to, as (venue, number):
    account numbers repeat across a world's venues, so a number alone is not an account
    (a graph built by hand without venues: its own venue, "").

    Examples:
        >>> log = EventLog(["a", "b"])
        >>> h1 = log.add("liquidation", step=1, round=0, account=3, venue=0)
        >>> h2 = log.add("liquidation", step=1, round=0, account=3, venue=1)
        >>> g = build_cascade_graph(log, {})
        >>> account_of(g, h1), len({account_of(g, h) for h in (h1, h2)})
        (('a', 3), 2)
    """
    if isinstance(g, EventLog):
        return g.venues[g.column("venue")[node]], g.column("account")[node]
    n = g.nodes[node]
    return n.get("venue", ""), n["account"]


def _shape(g: nx.DiGraph | EventLog) -> tuple[Callable, Callable]:
    """(predecessors of a node, kind of a node) of a cascade graph, or of the event log
    it is built from: the graph's edges are the events' causes, so its shape can be
    read without building it (a run of a million traders has tens of millions of cause
    edges)."""
    if isinstance(g, EventLog):
        return g.column("causes").__getitem__, g.column("kind").__getitem__
    nodes = g.nodes
    return g.predecessors, lambda n: nodes[n]["kind"]


def _heads(g: nx.DiGraph | EventLog) -> list:
    """The liquidation heads (``liquidation`` events) of a cascade graph or event log."""
    if isinstance(g, EventLog):
        return [e for e, k in enumerate(g.column("kind")) if k == "liquidation"]
    return [n for n, d in g.nodes(data=True) if d["kind"] == "liquidation"]


def _parents(h: int, preds: Callable, kind_of: Callable) -> set[int]:
    """The liquidation heads whose waterfalls (or, across venues, whose liquidation of
    the same owner) caused head ``h``."""
    ps: set[int] = set()
    for c in preds(h):
        kind = kind_of(c)
        if kind in ("partial", "full", "adl"):
            ps.update(p for p in preds(c) if kind_of(p) == "liquidation")
        elif kind == "liquidation":  # across venues: the same owner's liquidation
            ps.add(c)
    return ps


def liquidation_tree(g: nx.DiGraph | EventLog) -> tuple[dict[int, set[int]], dict[int, int]]:
    """Project the cascade graph (or the event log it is built from) onto liquidation
    heads.

    Returns ``parents`` (head → the heads whose waterfalls caused it) and
    ``generation`` (0 for liquidations set off by a shock or the market directly).

    Examples:
        >>> log = EventLog(["venue"])
        >>> h1 = log.add("liquidation", step=1, round=0, account=1)
        >>> f = log.add("full", step=1, round=0, account=1, causes=(h1,))
        >>> h2 = log.add("liquidation", step=1, round=1, account=2, causes=(f,))
        >>> liquidation_tree(log) == liquidation_tree(build_cascade_graph(log, {}))
        True
        >>> liquidation_tree(log)
        ({0: set(), 2: {0}}, {0: 0, 2: 1})
    """
    heads, (preds, kind_of) = _heads(g), _shape(g)
    parents = {h: _parents(h, preds, kind_of) for h in heads}
    generation: dict[int, int] = {}
    for h in sorted(heads, key=int):  # causes always have smaller ids (also as GraphML strings)
        generation[h] = 1 + max((generation[p] for p in parents[h]), default=-1)
    return parents, generation


def cascades(
    g: nx.DiGraph | EventLog, parents: dict[int, set[int]] | None = None
) -> list[set[int]]:
    """The cascades of a run: sets of liquidation heads linked by causation (an account
    liquidated by the forced flow of an earlier one) or set off by the same shock
    (``g``: the cascade graph or the event log it is built from).

    Examples:
        >>> log = EventLog(["venue"])
        >>> s = log.add("shock", step=1, round=0)
        >>> h1 = log.add("liquidation", step=1, round=0, account=1, causes=(s,))
        >>> f = log.add("full", step=1, round=0, account=1, causes=(h1,))
        >>> h2 = log.add("liquidation", step=1, round=1, account=2, causes=(f,))
        >>> h3 = log.add("liquidation", step=2, round=0, account=3)
        >>> sorted(sorted(c) for c in cascades(log)) == [[h1, h2], [h3]]
        True
    """
    if parents is None:
        parents, _ = liquidation_tree(g)
    preds, kind_of = _shape(g)
    u = nx.Graph()
    for h, ps in parents.items():
        u.add_node(h)
        u.add_edges_from((h, p) for p in ps)
        for c in preds(h):
            if kind_of(c) == "shock":
                u.add_edge(h, ("shock", c))
    return [{n for n in comp if not isinstance(n, tuple)} for comp in nx.connected_components(u)]


def cascade_metrics(g: nx.DiGraph | EventLog) -> dict[str, float]:
    """Depth (generations in the longest chain), the largest cascade (distinct
    accounts), the branching ratio (:func:`model.measures.branching_ratio`) and
    liquidations per generation, of the cascade graph or of the event log it is built
    from (the same numbers, without building the graph).

    The same numbers as :func:`liquidation_tree` and :func:`cascades` give, read in one
    pass that keeps neither the parent sets nor the component graph (their links grow
    like the cascade edges: with the square of the traders): generations in id order,
    the cascades by union–find over the heads and the shocks they hang off, and the
    branching ratio from its counts (:func:`model.measures.mean_offspring`).

    Examples:
        >>> log = EventLog(["venue"])
        >>> s = log.add("shock", step=1, round=0)
        >>> h1 = log.add("liquidation", step=1, round=0, account=1, causes=(s,))
        >>> f = log.add("full", step=1, round=0, account=1, causes=(h1,))
        >>> h2 = log.add("liquidation", step=1, round=1, account=2, causes=(f,))
        >>> h3 = log.add("liquidation", step=2, round=0, account=3)
        >>> cascade_metrics(log)
        {'max_depth': 2, 'largest_size': 2, 'mean_branching': 0.3333333333333333, 'generations': [2, 1]}
    """
    heads, (preds, kind_of) = _heads(g), _shape(g)
    if not heads:
        return {"max_depth": 0, "largest_size": 0, "mean_branching": 0.0, "generations": []}
    index = {h: i for i, h in enumerate(heads)}
    root = list(range(len(heads)))

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    def join(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            root[max(a, b)] = min(a, b)

    generation: dict[int, int] = {}
    shock_head: dict[int, int] = {}  # a shock -> the first head it set off
    links = 0
    for h in sorted(heads, key=int):  # causes always have smaller ids
        ps = _parents(h, preds, kind_of)
        links += len(ps)
        generation[h] = 1 + max((generation[p] for p in ps), default=-1)
        for p in ps:
            join(index[h], index[p])
        for c in preds(h):
            if kind_of(c) == "shock":
                join(index[h], shock_head.setdefault(c, index[h]))
    accounts: dict[int, set] = {}
    for h, i in index.items():
        accounts.setdefault(find(i), set()).add(account_of(g, h))
    return {
        "max_depth": int(max(generation.values()) + 1),
        "largest_size": int(max(len(a) for a in accounts.values())),
        "mean_branching": mean_offspring(links, len(heads)),
        "generations": [int(x) for x in np.bincount(list(generation.values()))],
    }


def build_exposure_graph(model: CrossMarginModel) -> nx.Graph:
    """Accounts, markets and pools as nodes; positions and claims as weighted edges.

    Account–market edges carry the signed notional (``notional``) and its size
    (``weight``): the overlapping-portfolio bipartite graph of Caccioli et al. (2014).
    Pool edges carry claims: token holders → the synthetic-dollar pool, the pool → the
    backstop vault (its stake), the vault and the insurance fund → markets through the
    positions they took over (the fund also backs every market with its equity). In a
    world of venues every node is prefixed with its venue (``binance:account:12``) and
    the accounts of one owner on different venues are joined by ``owner`` edges.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=10, shocks=[]))
        >>> g = build_exposure_graph(m)
        >>> sorted(n for n in g if not n.startswith("account:"))
        ['market:ALT', 'market:BTC', 'market:ETH', 'market:SOL', 'pool:insurance', 'pool:vault']
        >>> sorted({kind for _, _, kind in g.edges(data="kind")})
        ['backs', 'position']
    """
    g = nx.Graph()
    multi = len(model.world.venues) > 1
    owners: dict[int, list[str]] = {}
    for venue in model.world.venues:
        _venue_exposure(g, venue, f"{venue.name}:" if multi else "", owners)
    for nodes in owners.values():
        for a, b in itertools.pairwise(nodes):
            g.add_edge(a, b, weight=0.0, notional=0.0, kind="owner")
    return g


def _venue_exposure(g: nx.Graph, venue, pre: str, owners: dict[int, list[str]]) -> None:
    ex = venue.exchange
    led = ex.ledger
    val = venue.val
    for m, mk in enumerate(ex.markets):
        g.add_node(f"{pre}market:{mk.name}", kind="market", price=float(venue.mark[m]))
    fund_acct = ex.insurance.account
    g.add_node(f"{pre}pool:insurance", kind="pool", balance=float(val.equity[fund_acct]))
    agent_type = {
        ag.account: type(ag).__name__
        for ag in venue.model.agents
        if hasattr(ag, "account") and ag.venue is venue
    }
    kinds = venue.kinds()
    vault_acct = ex.vault.account if ex.vault is not None else -1
    if ex.vault is not None:
        g.add_node(f"{pre}pool:vault", kind="pool", balance=float(ex.vault_nav()))
    n = led.n
    active = np.flatnonzero((led.pos[:, :n] != 0).any(axis=0) | (led.coll[:, :n] > 0).any(axis=0))
    for a in active:
        a = int(a)
        pools = {vault_acct: f"{pre}pool:vault", fund_acct: f"{pre}pool:insurance"}
        name = pools.get(a, f"{pre}account:{a}")
        if a not in pools:
            g.add_node(
                name,
                kind="account",
                agent=agent_type.get(a) or (AGENT_KINDS[kinds[a]] if kinds[a] >= 0 else "other"),
                equity=float(val.equity[a]),
                mm=float(val.mm[a]),
                mode=int(led.mode[a]),
            )
            owner = int(venue.owner[a])
            if pre and a in venue.extra_kinds:
                owners.setdefault(owner, []).append(name)
        for m in np.flatnonzero(led.pos[:, a]):
            notional = float(val.notional[m, a])
            g.add_edge(
                name,
                f"{pre}market:{ex.markets[m].name}",
                weight=abs(notional),
                notional=notional,
                kind="position",
            )
    if ex.usdx is not None:
        g.add_node(f"{pre}pool:usdx", kind="pool", balance=float(ex.usdx.reserves))
        for a in np.flatnonzero(led.coll[0, :n] > 0):
            name = f"{pre}account:{int(a)}"
            if name in g:
                value = float(led.coll[0, a] * ex.coll_prices[0])
                g.add_edge(name, f"{pre}pool:usdx", weight=value, notional=value, kind="claim")
        if ex.vault is not None and ex.usdx.vault_shares > 0:
            stake = ex.usdx.vault_shares * ex.vault.share_price(ex.vault_nav())
            g.add_edge(
                f"{pre}pool:usdx", f"{pre}pool:vault", weight=stake, notional=stake, kind="claim"
            )
    for mk in ex.markets:
        share = max(float(val.equity[fund_acct]), 0.0) / len(ex.markets)
        g.add_edge(
            f"{pre}pool:insurance",
            f"{pre}market:{mk.name}",
            weight=share,
            notional=share,
            kind="backs",
        )
