"""Replay an order stream from CSV through one order book (``crossmargin replay``).

CSV header ``op,side,price,qty,id``; ``op`` is ``limit``, ``market`` or ``cancel``;
``side`` is ``buy`` or ``sell`` (empty for cancel); ``price`` integer ticks (empty for
market and cancel); ``qty`` integer lots (empty for cancel); ``id`` integer for limit
and cancel (optional for market). Every order is its own owner, so there is no
self-trade prevention, and a fill is one match between the incoming order and one
resting order.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

from ..model.orderbook import BUY, SELL, OrderBook, OrderError

__all__ = ["ReplayError", "parse", "replay"]

HEADER = ["op", "side", "price", "qty", "id"]
_SIDES = {"buy": BUY, "sell": SELL}


class ReplayError(ValueError):
    """A malformed row; the message names the line."""


MAX_TICK = 2**62 - 2
"""The book's price range: prices at or above 2**62 ticks meet its empty-side sentinel."""
MAX_INT = 2**63 - 1


def _int(value: str, field: str, line: int, *, positive: bool = False, top: int = MAX_INT) -> int:
    try:
        v = int(value)
    except ValueError:
        raise ReplayError(f"line {line}: {field}: not an integer: {value[:40]!r}") from None
    if positive and v <= 0:
        raise ReplayError(f"line {line}: {field}: must be > 0, got {v}")
    if not -MAX_INT <= v <= top:
        raise ReplayError(f"line {line}: {field}: must be at most {top}, got {v}")
    return v


def parse(path: Path) -> tuple[list[tuple[int, int, int, int, int | None]], list[int]]:
    """Read and validate the stream: ``(op, side, price, qty, id)`` with op 0/1/2 =
    limit/market/cancel, and the file line of each. Raises :class:`ReplayError`
    naming the first bad line.

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "orders.csv"
        >>> _ = path.write_text("op,side,price,qty,id\\nlimit,buy,100,5,1\\nmarket,sell,,2,\\n")
        >>> parse(path)
        ([(0, 1, 100, 5, 1), (1, -1, 0, 2, None)], [2, 3])
    """
    events: list[tuple[int, int, int, int, int | None]] = []
    lines: list[int] = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != HEADER:
            raise ReplayError(f"line 1: header must be {','.join(HEADER)}, got {header!r}")
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 5:
                raise ReplayError(f"line {line}: expected 5 fields, got {len(row)}")
            op, side, price, qty, oid = (c.strip() for c in row)
            lines.append(line)
            if op == "limit":
                if side not in _SIDES:
                    raise ReplayError(f"line {line}: side: must be buy or sell, got {side!r}")
                if not oid:
                    raise ReplayError(f"line {line}: id: required for limit")
                events.append(
                    (
                        0,
                        _SIDES[side],
                        _int(price, "price", line, positive=True, top=MAX_TICK),
                        _int(qty, "qty", line, positive=True),
                        _int(oid, "id", line),
                    )
                )
            elif op == "market":
                if side not in _SIDES:
                    raise ReplayError(f"line {line}: side: must be buy or sell, got {side!r}")
                if price:
                    raise ReplayError(f"line {line}: price: must be empty for market")
                events.append(
                    (
                        1,
                        _SIDES[side],
                        0,
                        _int(qty, "qty", line, positive=True),
                        _int(oid, "id", line) if oid else None,
                    )
                )
            elif op == "cancel":
                if side or price or qty:
                    raise ReplayError(f"line {line}: cancel takes only an id")
                if not oid:
                    raise ReplayError(f"line {line}: id: required for cancel")
                events.append((2, 0, 0, 0, _int(oid, "id", line)))
            else:
                raise ReplayError(f"line {line}: op: must be limit, market or cancel, got {op!r}")
    return events, lines


def replay(path: Path) -> dict:
    """Replay the file; return the summary printed by ``crossmargin replay``.

    Examples:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "orders.csv"
        >>> rows = ["limit,buy,100,5,1", "limit,sell,101,3,2", "market,sell,,2,", "cancel,,,,1"]
        >>> _ = path.write_text("\\n".join(["op,side,price,qty,id", *rows]))
        >>> r = replay(path)
        >>> r["fills"], r["traded_qty"], r["best_bid"], r["best_ask"], r["resting_orders"]
        (1, 2, None, 101, 1)
    """
    try:
        events, lines = parse(path)
    except UnicodeDecodeError as exc:
        raise ReplayError(f"not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise ReplayError(f"not a CSV file: {exc}") from None
    book = OrderBook(stp=False)
    limit, market, cancel = book.limit, book.market, book.cancel
    t0 = time.perf_counter()
    k = 0
    try:
        for k, (op, side, price, qty, oid) in enumerate(events):  # noqa: B007 (k names the line on error)
            if op == 0:
                limit(side, price, qty, oid, oid=oid)
            elif op == 2:
                cancel(oid)
            else:
                market(side, qty, -1 if oid is None else oid, oid=oid)
    except OrderError as exc:
        raise ReplayError(f"line {lines[k]}: {exc}") from None
    seconds = time.perf_counter() - t0
    return {
        "events": len(events),
        "fills": len(book.fills),
        "traded_qty": sum(f[5] for f in book.fills),
        "best_bid": book.best_bid,
        "best_ask": book.best_ask,
        "bid_qty": book.total_qty(BUY),
        "ask_qty": book.total_qty(SELL),
        "resting_orders": book.n_orders,
        "noop_cancels": book.noop_cancels,
        "seconds": seconds,
        "events_per_s": len(events) / seconds if seconds > 0 else None,
    }
