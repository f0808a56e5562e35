"""Building the agents of a model: each venue's own populations (from its scenario) and,
in a world of venues, the agents that hold accounts on several venues.

On a spot venue every trading agent starts with cash and, per market, units worth a
share of its capital (deposited from outside: :meth:`~.exchange.Exchange.deposit_units`),
so that it can sell as well as buy; leveraged traders trade perpetual venues only.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from .agents import (
    CarryDesk,
    Fundamentalist,
    LeveragedTrader,
    LiquidityEntrant,
    MarketMaker,
    MomentumTrader,
    NoiseTrader,
    PegArbitrageur,
    PegKeeper,
    Trader,
)
from .collect import AGENT_KINDS
from .crossvenue import Arbitrageur, HedgedTrader
from .markets import MARGIN_MODES

if TYPE_CHECKING:
    from .model import CrossMarginModel
    from .scenario import Scenario
    from .venue import Venue

__all__ = ["KIND_OF", "build_cross_agents", "build_venue_agents", "portfolios"]

KIND_OF = {
    MarketMaker: 0,
    LiquidityEntrant: 0,  # a market maker that enters when spreads pay
    NoiseTrader: 1,
    Fundamentalist: 2,
    MomentumTrader: 3,
    LeveragedTrader: 4,
    CarryDesk: 5,
    PegKeeper: 6,
    PegArbitrageur: 9,
    Arbitrageur: AGENT_KINDS.index("arbitrageur"),
    HedgedTrader: AGENT_KINDS.index("hedged"),
}
"""Agent type → its :data:`~.collect.AGENT_KINDS` index (``agent_type`` of accounts)."""

SPOT_STOCK = 0.5
"""On a spot venue an agent starts with units worth this share of its capital (split
evenly over the markets), besides its cash."""


def _stock(
    venue: Venue, account: int, capital: float, *, per_market: float | None = None
) -> list[int]:
    """Deposit a spot agent's starting units (USD ``per_market`` in each market, else
    :data:`SPOT_STOCK` of its capital split over the markets); return the lots."""
    ex = venue.exchange
    k = len(ex.markets)
    usd = SPOT_STOCK * capital / k if per_market is None else per_market
    lots = []
    for m, mk in enumerate(ex.markets):
        price = float(venue.index[m])
        n = int(usd / (mk.lot * price))
        if n > 0:
            ex.deposit_units(account, m, n, price)
        lots.append(n)
    return lots


def maker_stock(cfg) -> float:
    """USD of units a spot maker holds per market: its inventory limit."""
    return cfg.inventory_limit * cfg.capital


def build_venue_agents(model: CrossMarginModel, venue: Venue) -> None:
    """The agents of one venue, in the order every run has built them (their accounts
    and random draws depend on it)."""
    sc, spot = venue.config, venue.kind == "spot"
    a = sc.agents
    led = venue.exchange.ledger
    mode = MARGIN_MODES[sc.margin_mode]

    def account(capital: float) -> int:
        return led.open_account(capital)

    for _ in range(a.market_makers.count):
        acct = account(a.market_makers.capital)
        maker = MarketMaker(model, acct, a.market_makers.capital, a.market_makers, venue=venue)
        if spot:
            # A spot maker holds in each market the inventory its limit lets it sell, so
            # that its asks never run dry before its limit does.
            maker.base_inventory = _stock(venue, acct, 0.0, per_market=maker_stock(a.market_makers))
    for _ in range(a.noise.count):
        acct = account(a.noise.capital)
        NoiseTrader(model, acct, a.noise.capital, a.noise, venue=venue)
        if spot:
            _stock(venue, acct, a.noise.capital)
    for _ in range(a.fundamentalists.count):
        cfg = a.fundamentalists
        acct = account(cfg.capital)
        Fundamentalist(model, acct, cfg.capital, cfg=cfg, venue=venue)
        if spot:
            _stock(venue, acct, cfg.capital)
            # They trade on the value (Kyle 1985): their flow reveals it, it does not
            # move it, or the value would run ahead of the trades that chase it.
            venue.exchange.informed.add(acct)
    for _ in range(a.momentum.count):
        cfg = a.momentum
        acct = account(cfg.capital)
        MomentumTrader(model, acct, cfg.capital, cfg=cfg, venue=venue)
        if spot:
            _stock(venue, acct, cfg.capital)
    if not spot:
        _build_leveraged(model, venue, mode)
    if sc.collateral is not None:
        c = sc.collateral
        keeper_tokens = 4 * c.book_depth / c.peg
        acct = led.open_account(8 * c.book_depth, collateral={0: keeper_tokens})
        keeper = PegKeeper(model, acct, 8 * c.book_depth, c, venue=venue)
        keeper.start_tokens = keeper_tokens
        venue.peg_keeper = keeper
        if c.arbitrage_capital > 0:
            acct = led.open_account(c.arbitrage_capital)
            PegArbitrageur(model, acct, c.arbitrage_capital, c, venue=venue)
    for _ in range(a.entrants.count):  # last, so the others' accounts never move
        acct = led.open_account(a.entrants.capital)
        entrant = LiquidityEntrant(model, acct, a.entrants.capital, a.entrants, venue=venue)
        if spot:
            entrant.base_inventory = _stock(venue, acct, 0.0, per_market=maker_stock(a.entrants))


def _build_leveraged(model: CrossMarginModel, venue: Venue, mode: int) -> None:
    """The leveraged traders, their state as arrays (:class:`~.agents.LeveragedTraders`),
    and their initial positions opened against a basis desk at the index price; every
    draw and every position for all traders at once."""
    sc, rng = venue.config, model.rng
    cfg = sc.agents.leveraged
    led = venue.exchange.ledger
    n = cfg.count
    k = len(sc.markets)
    if n == 0:
        return
    capital = cfg.capital_median * rng.lognormal(0.0, cfg.capital_sigma, n)
    # Heavy right tail: below the median lognormal-ish, above it Pareto(α).
    u = rng.random(n)
    lev = np.where(
        u < 0.5,
        cfg.leverage_median * np.exp(rng.normal(0, 0.5, n).clip(-2, 0)),
        cfg.leverage_median * (1 - (u - 0.5) * 2) ** (-1 / cfg.leverage_tail),
    )
    lev = np.clip(lev, 1.0, cfg.max_leverage)
    # Nobody can target more than the exchange allows on tier 0 of its markets.
    caps = np.array([sc.effective_tiers(m)[0].max_leverage for m in sc.markets])
    price = venue.index
    token_share = cfg.collateral_share if sc.collateral is not None else 0.0
    peg = sc.collateral.peg if sc.collateral is not None else 1.0
    cash = capital * (1 - token_share)
    units = capital * token_share / peg
    coll = {0: units} if sc.collateral is not None else None
    ids = led.open_accounts(cash, mode=mode, iso_leverage=lev, collateral=coll)
    weights = portfolios(rng, cfg, n, sc)
    # Within each market's tier-0 leverage and the account's own initial margin
    # (binding for portfolio margin, whose IM is a stress-scenario loss).
    cap = np.where(weights != 0, caps[:, None], np.inf).min(axis=0)
    lev = np.minimum(lev, np.minimum(0.9 * cap, 0.9 / led.im_rates(weights, mode)))
    led.iso_leverage[ids] = lev  # isolated margin allocated at the capped leverage
    rows = venue.leveraged.add(ids, capital, lev, cfg.reserve_share * capital, weights)
    for j in range(n):
        LeveragedTrader(model, int(ids[j]), float(capital[j]), cfg, row=int(rows[j]), venue=venue)
    # Open the initial positions against a basis desk at the index price.
    haircut = sc.collateral.haircut if sc.collateral is not None else 1.0
    eq = capital * (1 - token_share + token_share * haircut)
    pos = np.trunc(weights * (lev * eq) / (led.lot * price)[:, None])
    desk_lots = pos.sum(axis=1)
    net_notional = float(np.abs(desk_lots * led.lot * price).sum())
    # The leverage cap binds the desk too.
    desk_lev = min(sc.agents.carry_leverage, 0.9 * (sc.leverage_cap or math.inf))
    desk_cap = max(net_notional / desk_lev, 1.0)
    desk = led.open_account(desk_cap)
    venue.carry_desk = CarryDesk(model, desk, desk_cap, venue=venue)
    for m in range(k):
        led.open_positions(ids, m, pos[m], float(price[m]))
        if desk_lots[m]:
            led.trade(desk, m, -int(desk_lots[m]), float(price[m]))


def portfolios(rng: np.random.Generator, cfg, n: int, sc: Scenario) -> np.ndarray:
    """Signed weights (Σ|w| = 1 per trader), shape (markets, traders), over
    ``markets_per_trader`` markets each.

    ``naive``: markets at random, each long with probability ``long_bias``.
    ``correlation_aware``: after a random first market, each next one is the market
    least correlated with those chosen (a negatively correlated one is taken in the
    same direction, a highly correlated one as a hedge in the opposite direction),
    weights inverse to volatility: the diversification lever of cross margin. The
    rest of the portfolio follows from the first market, so it is built once per
    market and the traders draw only their first market and its side.

    Examples:
        >>> from crossmargin.model.scenario import Scenario
        >>> sc = Scenario()
        >>> w = portfolios(np.random.default_rng(0), sc.agents.leveraged, 3, sc)
        >>> w.shape, np.abs(w).sum(axis=0).tolist()
        ((2, 3), [1.0, 1.0, 1.0])
    """
    k = len(sc.markets)
    per = min(cfg.markets_per_trader, k)
    if cfg.portfolio == "naive" or per == 1:
        chosen = np.argsort(rng.random((n, k)), axis=1)[:, :per]
        sign = np.where(rng.random((n, per)) < cfg.long_bias, 1.0, -1.0)
        w = np.zeros((n, k))
        np.put_along_axis(w, chosen, sign, axis=1)
        return (w / per).T
    corr = sc.correlation_matrix()
    vol = np.array([m.volatility for m in sc.markets])
    template = np.zeros((k, k))  # row: the first market; a long first position
    for first in range(k):
        w = template[first]
        w[first] = 1.0
        chosen = [first]
        while len(chosen) < per:
            rest = [m for m in range(k) if m not in chosen]
            score = [corr[m, chosen].mean() for m in rest]
            m = rest[int(np.argmin(np.abs(score)))]
            w[m] = -1.0 if float(np.mean(score)) > 0.5 else 1.0
            chosen.append(m)
        w[chosen] = w[chosen] / vol[chosen]
        template[first] = w / np.abs(w).sum()
    first = rng.integers(k, size=n)
    sign = np.where(rng.random(n) < cfg.long_bias, 1.0, -1.0)
    return (template[first] * sign[:, None]).T


def build_cross_agents(model: CrossMarginModel) -> None:
    """Arbitrageurs (an account on every venue, units on every spot venue) and hedged
    traders (an account on each of two perpetual venues, long on one and short the
    same on the other, opened against a desk on each venue at its index); every
    account registered with the owner's treasury."""
    world = model.world
    cfg = world.config.cross
    venues = [v for v in world.venues if not cfg.venues or v.name in cfg.venues]
    treasury = world.treasury
    for _ in range(cfg.arbitrageurs):
        accts = [v.exchange.ledger.open_account(cfg.arbitrage_capital) for v in venues]
        arb = Arbitrageur(model, venues, accts, cfg.arbitrage_capital, cfg, owner=-1)
        arb.owner = arb.unique_id
        for v, a in zip(venues, accts, strict=True):
            treasury.register(arb.unique_id, v.code, a)
            v.extra_kinds[a] = (KIND_OF[Arbitrageur], arb.unique_id)
            if v.kind == "spot":
                for m, n in enumerate(_stock(v, a, cfg.arbitrage_capital)):
                    arb.base[(v.code, m)] = n
                    treasury.register_stock(arb.unique_id, v.code, m, n)
    perps = [v for v in venues if v.kind == "perp"]
    if cfg.hedged == 0 or len(perps) < 2:
        return
    rng = model.rng
    n = cfg.hedged
    k = len(world.config.markets)
    capital = cfg.hedged_capital * rng.lognormal(0.0, 0.8, n)
    market = rng.integers(k, size=n)
    pair = np.array([rng.choice(len(perps), size=2, replace=False) for _ in range(n)])
    lots: dict[int, np.ndarray] = {v.code: np.zeros(k, dtype=np.int64) for v in perps}
    for j in range(n):
        long_v, short_v = perps[pair[j, 0]], perps[pair[j, 1]]
        m = int(market[j])
        price = float(np.sqrt(long_v.index[m] * short_v.index[m]))
        q = int(cfg.hedged_leverage * capital[j] / (long_v.exchange.markets[m].lot * price))
        legs = []
        for v, sign in ((long_v, 1), (short_v, -1)):
            a = v.exchange.ledger.open_account(float(capital[j]))
            legs.append((v, a))
            if q:
                v.exchange.ledger.trade(a, m, sign * q, float(v.index[m]))
                lots[v.code][m] += sign * q
        h = HedgedTrader(model, legs, float(capital[j]), owner=-1)
        h.owner = h.unique_id
        for v, a in legs:
            treasury.register(h.unique_id, v.code, a)
            v.extra_kinds[a] = (KIND_OF[HedgedTrader], h.unique_id)
    # The other side of the hedged legs: a desk per venue, hedged off-venue (passive).
    for v in perps:
        net = lots[v.code]
        notional = float(np.abs(net * v.exchange.ledger.lot * v.index).sum())
        if not notional:
            continue
        cap = max(notional / v.config.agents.carry_leverage, 1.0)
        desk = v.exchange.ledger.open_account(cap)
        CarryDesk(model, desk, cap, venue=v)
        for m in np.flatnonzero(net):
            v.exchange.ledger.trade(desk, int(m), -int(net[m]), float(v.index[m]))


def account_kinds(venue: Venue, agents: list[Trader]) -> tuple[np.ndarray, np.ndarray]:
    """Agent kind and owner per account of ``venue`` (−1 for accounts no agent owns)."""
    n = venue.exchange.ledger.n
    kind = np.full(n, -1, dtype=np.int64)
    owner = np.full(n, -1, dtype=np.int64)
    for ag in agents:
        if (
            ag.venue is venue
            and type(ag) in KIND_OF
            and not isinstance(ag, Arbitrageur | HedgedTrader)
        ):
            kind[ag.account] = KIND_OF[type(ag)]
            owner[ag.account] = ag.unique_id
    for a, (k, o) in venue.extra_kinds.items():
        kind[a], owner[a] = k, o
    if venue.exchange.custody >= 0:
        kind[venue.exchange.custody] = AGENT_KINDS.index("custody")
    return kind, owner
