"""The event log: one record per risk-engine action, with the events that caused it.

Kinds (``EVENT_KINDS``): ``shock`` (an exogenous shock), ``liquidation`` (an account
enters the waterfall: its resting orders are cancelled; notional and loss are the
waterfall's totals; the other events of the waterfall name it as their cause),
``partial`` and ``full`` (forced IOC orders into
the book), ``backstop`` (the vault took over positions), ``takeover`` (the insurance
fund took over positions), ``insurance`` (the fund paid a shortfall), ``adl`` (a
profitable opposite position was auto-deleveraged: with a market and notional when a
position was closed, without when the account was charged part of a shortfall),
``socialized`` (a profitable account's pro-rata share of a shortfall),
``collateral_sale`` (a bankrupt account's collateral tokens sold on their book),
``bad_debt`` (what nobody could pay, written off), ``pool_shortfall`` (a pool's
creditors written down further by clearing: ``loss`` is the fall of the recovery rate
times the supply, ``price`` the new rate), ``pool_recovery`` (the recovery rate rose
again: ``loss`` is the negative write-up, so that the ``loss`` of both kinds sums to the
net write-down along the path), ``pool_derisk`` (a pool acted under its own risk rule:
the vault cut back to its leverage cap, the fund down to what it can carry or what it
held too long; ``qty`` and ``notional`` are what it closed in the book, ADL events it
caused name it), ``transfer`` (a treasury sent collateral to an account of its owner on
this venue: ``account`` receives it, ``qty`` is the sending account (on another venue),
``notional`` the USD and ``price`` the settlement delay in minutes; liquidations of an
account still waiting for it name it as a cause).

``venue`` is the venue an event happened on (a name in frames; a code in the log).

``side`` is +1 when the position the waterfall liquidates was long, −1 when short, and
0 for events that close no position. For ``adl`` events, which name the counterparty,
it is the side of the liquidated position (the counterparty's closed position is the
opposite), so longs' share of liquidated notional is
``notional[side == 1].sum() / notional[side != 0].sum()`` over :data:`LIQUIDATION_KINDS`.
"""

from __future__ import annotations

import pandas as pd

EVENT_KINDS = (
    "shock",
    "liquidation",
    "partial",
    "full",
    "backstop",
    "takeover",
    "insurance",
    "adl",
    "socialized",
    "collateral_sale",
    "bad_debt",
    "pool_shortfall",
    "pool_recovery",
    "pool_derisk",
    "transfer",
)
LIQUIDATION_KINDS = ("partial", "full", "backstop", "takeover", "adl")
"""Kinds that close positions (their notional is liquidated notional)."""
__all__ = ["EVENT_KINDS", "LIQUIDATION_KINDS", "EventLog", "VenueEvents"]


class EventLog:
    """Columnar, append-only event records; ids are row numbers."""

    COLUMNS = (
        "step",
        "round",
        "venue",
        "kind",
        "account",
        "market",
        "qty",
        "notional",
        "price",
        "loss",
        "side",
        "causes",
    )

    def __init__(self, venues: list[str] | None = None) -> None:
        self._cols: dict[str, list] = {c: [] for c in self.COLUMNS}
        self.venues = list(venues or ["venue"])  # venue code -> name

    def __len__(self) -> int:
        return len(self._cols["step"])

    def add(
        self,
        kind: str,
        *,
        step: int,
        round: int,
        account: int = -1,
        market: int = -1,
        qty: float = 0.0,
        notional: float = 0.0,
        price: float = float("nan"),
        loss: float = 0.0,
        side: int = 0,
        causes: tuple[int, ...] = (),
        venue: int = 0,
    ) -> int:
        """Append one event; return its id (``side``: see the module docstring;
        ``venue``: the code of the venue it happened on, an index of :attr:`venues`)."""
        cols = self._cols
        eid = len(cols["step"])
        cols["step"].append(step)
        cols["round"].append(round)
        cols["venue"].append(venue)
        cols["kind"].append(kind)
        cols["account"].append(account)
        cols["market"].append(market)
        cols["qty"].append(float(qty))
        cols["notional"].append(float(notional))
        cols["price"].append(float(price))
        cols["loss"].append(float(loss))
        cols["side"].append(int(side))
        cols["causes"].append(tuple(map(int, causes)))
        return eid

    def update(self, eid: int, **fields: float) -> None:
        """Overwrite numeric fields of an event (used to fill in a waterfall's totals)."""
        for name, value in fields.items():
            self._cols[name][eid] = float(value)

    def column(self, name: str) -> list:
        """One column as a list (shared, do not modify)."""
        return self._cols[name]

    def __getitem__(self, name: str) -> list:
        """One column by name, as from a DataFrame (see :mod:`model.measures`)."""
        return self._cols[name]

    def __contains__(self, name: str) -> bool:
        """Whether the log has a column ``name``, as a DataFrame answers ``in``."""
        return name in self._cols

    def row(self, eid: int) -> dict:
        """One event as a dict."""
        return {c: self._cols[c][eid] for c in self.COLUMNS}

    def since(self, start: int) -> range:
        """Ids of the events added from ``start`` on."""
        return range(start, len(self))

    def to_frame(self) -> pd.DataFrame:
        """All events as a DataFrame (``causes`` as a space-separated string of ids;
        ``venue`` as the venue's name)."""
        data = dict(self._cols)
        data["causes"] = [" ".join(map(str, c)) for c in data["causes"]]
        data["venue"] = [self.venues[v] for v in data["venue"]]
        df = pd.DataFrame(data, columns=list(self.COLUMNS))
        df.insert(0, "id", range(len(df)))
        return df.astype(
            {
                "id": "int64",
                "step": "int64",
                "round": "int64",
                "venue": "string",
                "kind": "string",
                "account": "int64",
                "market": "int64",
                "side": "int8",
                "causes": "string",
            }
        )


class VenueEvents:
    """One venue's view of a shared :class:`EventLog`: what it adds is marked with its
    venue; everything else (ids, columns, updates) is the shared log's, so event ids are
    unique across venues and a cascade graph can link events of different venues.

    Examples:
        >>> log = EventLog(["spot", "perp"])
        >>> ev = VenueEvents(log, 1)
        >>> ev.add("shock", step=1, round=0)
        0
        >>> log.to_frame()["venue"].tolist()
        ['perp']
    """

    def __init__(self, log: EventLog, code: int) -> None:
        self.log = log
        self.code = code

    def add(self, kind: str, **fields) -> int:
        """:meth:`EventLog.add` on this venue."""
        fields.setdefault("venue", self.code)
        return self.log.add(kind, **fields)

    def __len__(self) -> int:
        return len(self.log)

    def column(self, name: str) -> list:
        return self.log.column(name)

    def __getitem__(self, name: str) -> list:
        return self.log[name]

    def __contains__(self, name: str) -> bool:
        return name in self.log

    def update(self, eid: int, **fields: float) -> None:
        self.log.update(eid, **fields)

    def row(self, eid: int) -> dict:
        return self.log.row(eid)

    def since(self, start: int) -> range:
        return self.log.since(start)

    def to_frame(self) -> pd.DataFrame:
        return self.log.to_frame()
