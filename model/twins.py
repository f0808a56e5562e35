"""The Python code the compiled order path follows, and whether it is still the code the
compiled files were written from.

Each function of the extension ``model/_book.pyx`` (and the files it includes) follows a
Python twin line by line; ``tests/test_compiled.py`` holds each pair to the same states,
float for float. A researcher who changes a twin (a market maker's quoting rule, say)
must see that change run. So the first model a process builds hashes the source of every
twin and compares it with the hash the compiled files were written against
(``_book.TWINS``). If one differs, it warns, names the functions, and from then on the
process runs the Python twins (the compiled book stays: it is held to
:class:`~.orderbook.PyOrderBook` by its own tests, and a stale build by the warning of
:mod:`.orderbook`). An agent class that overrides a twin runs its own Python code in any
case (``MarketMaker._compiled``, ``NoiseTrader._compiled``).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import warnings

from . import agents, collect, exchange, ledger
from .orderbook import COMPILED

__all__ = ["TWINS", "check", "digests", "order_path"]

TWINS = (
    exchange.Exchange.limit,
    exchange.Exchange._admit,
    exchange.Exchange._admit_spot,
    exchange.Exchange.market_order,
    exchange.Exchange.cancel,
    exchange.Exchange.requote,
    exchange.Exchange._requote_spot,
    exchange.Exchange._release,
    exchange.Exchange._settle_perp,
    ledger.Ledger.trade,
    ledger.Ledger._after_fill,
    ledger.Ledger.margin_state,
    ledger.Ledger._epoch_marks,
    ledger.Ledger.im_after,
    ledger.Ledger._tier_fix,
    ledger.Ledger._tier_fix_rule,
    ledger.Ledger.open_interest,
    # the agents' rules: the methods their classes name (the same names decide which
    # subclasses keep the compiled rule)
    *(getattr(agents.MarketMaker, name) for name in agents._MAKER_RULE),
    *(getattr(agents.LiquidityEntrant, name) for name in agents._ENTRANT_RULE),
    *(getattr(agents.NoiseTrader, name) for name in agents._NOISE_RULE),
    *(getattr(agents.Fundamentalist, name) for name in agents._FUNDAMENTALIST_RULE),
    *(getattr(agents.MomentumTrader, name) for name in agents._MOMENTUM_RULE),
    *(getattr(agents.LeveragedTrader, name) for name in agents._LEVERAGED_RULE),
    agents._room,
    agents._lots,
    collect.account_totals,
)
"""The Python functions the compiled order path follows (each named in the docstring of
its compiled twin)."""


def digests() -> dict[str, str]:
    """The hash of each twin's source, by qualified name (the first 12 hex digits of its
    SHA-256).

    Examples:
        >>> d = digests()
        >>> len(d) == len(TWINS), len(d["MarketMaker._quote_rule"])
        (True, 12)
    """
    return {
        f.__qualname__: hashlib.sha256(inspect.getsource(f).encode()).hexdigest()[:12]
        for f in TWINS
    }


@functools.cache
def check() -> bool:
    """Whether the compiled order path runs: the book is built and every twin is the code
    its compiled files were written from. Run once a process (by the first model built);
    when a twin has changed it warns, names the functions, and switches the process to
    the Python twins.

    Examples:
        >>> check() == COMPILED  # built, and no twin edited since: compiled
        True
    """
    if not COMPILED:
        return False
    from . import _book

    try:
        now = digests()
    except (OSError, TypeError):  # no source to read (a frozen install): none was edited
        return True
    changed = sorted(name for name, h in now.items() if _book.TWINS.get(name) != h)
    if not changed:
        return True
    warnings.warn(
        "crossmargin: the Python code the compiled order path follows has changed ("
        + ", ".join(changed)
        + "); running the Python code instead (the compiled book stays). To compile the "
        "change, edit its twin in model/_*.pxi and update _book.TWINS "
        "(tests/test_compiled.py checks both).",
        stacklevel=2,
    )
    for module in (exchange, ledger, agents, collect):
        module.COMPILED = False
    return False


def order_path() -> str:
    """What runs the orders, for provenance: ``compiled`` (book and order path),
    ``compiled book`` (the order path in Python: a twin changed) or ``python``.

    Examples:
        >>> order_path() == ("compiled" if COMPILED else "python")
        True
    """
    if not COMPILED:
        return "python"
    return "compiled" if check() else "compiled book"
