"""The world: the fundamental value of each asset, the venues that trade it, the
rules by which perpetual venues make their index, and the transfers between venues.

* **News** (:class:`~.index.IndexProcess`): a correlated jump-diffusion with GARCH
  volatility that no trade moves: what the world learns.
* **Value**: in a world of venues the latent (efficient) price of each asset is the
  news times the impact of the aggregate signed flow of every venue, forced flow
  included (:class:`~.impact.Propagator`): forced selling moves value. Informed
  traders anchor on it; every venue's prices come from its own trades.
* **Reference and indexes**: spot makers quote around a reference that public news
  moves at once and every trade's flow moves by the same propagator (quote revision
  from order flow, Kyle 1985; the informed's flow included, so it closes the gap to the
  value they trade on); a perpetual venue's index is its rule over its constituent
  spot venues' prices (:class:`~.oracle.IndexRule`).
* **Transfers** (:class:`~.treasury.Treasury`): owners' collateral between venues.

A scenario without venues is a world of one perpetual venue whose index is the news
itself (as every scenario before worlds of venues existed): no impact, no transfers,
and the same random draws in the same order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .events import EventLog, VenueEvents
from .impact import Propagator
from .index import IndexProcess, check_range
from .oracle import IndexRule
from .scenario import Scenario
from .treasury import Treasury
from .venue import Venue

if TYPE_CHECKING:
    from .model import CrossMarginModel

__all__ = ["World"]


def _column_nanmedian(a: np.ndarray) -> np.ndarray:
    """The median of each column of ``a`` ignoring NaN (NaN where a column has none):
    the same numbers as ``np.nanmedian(a, axis=0)``, the mean of the two middle values
    for an even count, without its masked-array path (~1 ms a call on a 3 × k array)."""
    s = np.sort(a, axis=0)  # NaN last
    n = a.shape[0] - np.isnan(a).sum(axis=0)
    hi = n // 2
    lo = np.where(n % 2 == 1, hi, np.maximum(hi - 1, 0))
    cols = np.arange(a.shape[1])
    return (s[lo, cols] + s[hi.clip(max=a.shape[0] - 1), cols]) / 2


class World:
    """The venues of a model and what links them.

    Args:
        model: The model (its random stream and clock).
        scenario: The resolved scenario (a world of venues, or one venue).
    """

    def __init__(self, model: CrossMarginModel, scenario: Scenario) -> None:
        # The news gets its own stream, drawn first, so that runs that differ only in
        # policy (margin mode, mark rule, ...) see the same path.
        self.news = IndexProcess(scenario, np.random.default_rng(int(model.rng.integers(2**63))))
        self.config = scenario
        self.multi = bool(scenario.venues)
        names = scenario.venue_names
        self.events = EventLog(names)
        kinds = [v.kind for v in scenario.venues] or ["perp"]
        self.venues: list[Venue] = [
            Venue(
                model,
                scenario.venue_scenario(name),
                name=name,
                code=code,
                kind=kind,
                prices=self.news.published,
                events=VenueEvents(self.events, code),
            )
            for code, (name, kind) in enumerate(zip(names, kinds, strict=True))
        ]
        self.by_name = {v.name: v for v in self.venues}
        self.home = self.by_name[scenario.home_venue]
        self.spot = [v for v in self.venues if v.kind == "spot"]
        self.perp = [v for v in self.venues if v.kind == "perp"]
        self.value = self.news.published.copy()  # the latent price
        # The consolidated price spot makers quote around (a world of venues).
        self.reference = self.news.published.copy()
        k = len(scenario.markets)
        self.flow = np.zeros(k)  # last step's aggregate signed flow, USD
        self.adl_notional = 0.0  # ADL notional so far (position-closing ADL events)
        self.adl_hedged_notional = 0.0  # ... of it on accounts hedged on another venue
        self._adl_seen = 0
        self.impact: Propagator | None = None
        self.learning: Propagator | None = None
        self.rules: dict[int, IndexRule] = {}
        self.constituents: dict[int, list[int]] = {}
        if self.multi:
            imp = scenario.impact
            sigma = np.array([m.volatility for m in scenario.markets])
            volume = imp.daily_volume * np.array([m.liquidity for m in scenario.markets])
            kernel = {
                "y": imp.y,
                "permanent": imp.permanent,
                "tau0": imp.tau0,
                "window": imp.window,
                "cross": imp.cross,
            }
            corr = scenario.correlation_matrix()
            # The value: moved by the flow of everyone but the informed.
            self.impact = Propagator(sigma, volume, corr, **kernel)
            # The reference makers quote around: what every trade, the informed's
            # included, tells them (quote revision from order flow, as in Kyle 1985).
            self.learning = Propagator(sigma, volume, corr, **kernel)
            for cfg, v in zip(scenario.venues, self.venues, strict=True):
                if v.kind != "perp":
                    continue
                rule = scenario.index_rule(cfg)
                self.constituents[v.code] = [self.by_name[c].code for c in rule.constituents]
                self.rules[v.code] = IndexRule(
                    rule.rule,
                    list(rule.constituents.values()),
                    k,
                    cap=rule.cap,
                    exclude=rule.exclude,
                    readmit=rule.readmit,
                    readmit_steps=rule.readmit_steps,
                    stale_steps=rule.stale_steps,
                )
        self.treasury = (
            Treasury(
                self.venues,
                scenario.transfers,
                np.random.default_rng(int(model.rng.integers(2**63))),
            )
            if self.multi
            else Treasury(self.venues, scenario.transfers, np.random.default_rng(0))
        )

    # ------------------------------------------------------------------ step
    def open(self, t: int) -> None:
        """The start of a minute: the news moves, the value with it, and every venue
        sees its index (a single venue: the news, with ``index_venue_weight`` of its own
        mark in the basket, as Hyperliquid's oracle includes Hyperliquid)."""
        for v in self.venues:
            v.open(t)
        news = self.news.step()
        if not self.multi:
            w = self.config.index_venue_weight
            home = self.home
            if w > 0:
                home.set_index(np.exp((1 - w) * np.log(news) + w * np.log(home.mark)))
            else:
                home.set_index(news.copy())
            home.anchor = home.index
            return
        self.value = news * np.exp(self.impact.log_impact)
        self.reference = news * np.exp(self.learning.log_impact)
        # Forced flow alone can take the value (and the reference spot makers quote
        # around) where no book can quote: the same stop as for the news.
        n = self.news
        check_range(self.value, n.ticks, n.names, t, what="value")
        check_range(self.reference, n.ticks, n.names, t, what="reference price")
        for v in self.spot:
            v.set_index(self.reference)
            v.anchor = self.value
        for v in self.perp:
            if v.index_frozen.any():
                fresh = self._oracle(v)
                v.set_index(np.where(v.index_frozen, v.index, fresh))
            else:
                v.set_index(self._oracle(v))
            v.anchor = v.index

    def _oracle(self, v: Venue) -> np.ndarray:
        """A perpetual venue's index: its rule over its constituents' mids (the last
        trade where a book has no mid, NaN where it has neither)."""
        prices = np.array([self.venues[c].quote() for c in self.constituents[v.code]])
        return self.rules[v.code](prices, prev=v.index)

    def close(self, t: int) -> None:
        """The end of a minute: the aggregate signed flow of every venue moves the value
        (felt from the next minute on), and the treasuries' transfers settle (a venue
        they touched is valued again, so the step's record reads its books as they are)."""
        if not self.multi:
            return
        flow = np.zeros(len(self.value))
        informed = np.zeros(len(self.value))
        for v in self.venues:
            flow += v.exchange.flow
            informed += v.exchange.informed_flow
        self.flow = flow + informed
        self.impact.absorb(flow)
        self.learning.absorb(flow + informed)
        self._count_hedged_adl()
        self.treasury.settle(t)
        for code in self.treasury.touched:  # the step ends on books valued as they are
            venue = self.venues[code]
            venue.val = venue.exchange.revalue()

    def _count_hedged_adl(self) -> None:
        """ADL notional this step, and the part of it that closed positions hedged on
        another venue (the deleveraged account's owner held the opposite position in
        the same market there: on 10 October 2025 the accounts Hyperliquid
        auto-deleveraged had a median leverage of 0.18×)."""
        log = self.events
        kinds, accts, markets = log.column("kind"), log.column("account"), log.column("market")
        venues, notional = log.column("venue"), log.column("notional")
        legs = self.treasury.accounts
        for e in range(self._adl_seen, len(log)):
            if kinds[e] != "adl" or markets[e] < 0 or notional[e] <= 0:
                continue
            v = self.venues[venues[e]]
            v.kinds()
            a, m = accts[e], markets[e]
            self.adl_notional += notional[e]
            owner = int(v.owner[a]) if 0 <= a < len(v.owner) else -1
            mine = v.exchange.ledger.pos[m, a]
            for code, other in legs.get(owner, ()):
                if code == v.code:
                    continue
                theirs = self.venues[code].exchange.ledger.pos[m, other]
                if theirs * mine < 0 or (mine == 0 and theirs != 0):
                    self.adl_hedged_notional += notional[e]
                    break
        self._adl_seen = len(log)

    # ------------------------------------------------------------- reading
    def dislocation(self) -> np.ndarray:
        """Per market, the largest absolute log gap between a venue's mark and the
        median of the venues' marks (0 with one venue)."""
        marks = np.array([v.mark for v in self.venues])
        med = np.median(marks, axis=0)
        return np.abs(np.log(marks / med)).max(axis=0)

    def spot_gap(self) -> np.ndarray:
        """Per market, the largest absolute log gap between a spot venue's mid and the
        median of the spot venues' mids (NaN without two spot venues with a mid)."""
        if len(self.spot) < 2:
            return np.full(len(self.value), np.nan)
        mids = np.array([v.quote() for v in self.spot])
        # fmax skips NaN as nanmax does, and leaves NaN without a warning where no
        # spot venue has a mid (every book of that market empty).
        return np.fmax.reduce(np.abs(np.log(mids / _column_nanmedian(mids))), axis=0)

    def in_flight(self) -> float:
        """USD on its way between venues."""
        return self.treasury.in_flight

    def state_error(self) -> float:
        """The world's books from state: Σ over venues of (equity at mark of every
        account, negative included, − its collateral tokens' value + fee pool + pool
        reserves − booked bad debt) + what is in flight − the money that came in from
        outside the world (deposits and pool seeds; transfers between venues cancel):
        zero when nothing was lost or made anywhere, between venues included."""
        total = self.in_flight()
        for v in self.venues:
            ex = v.exchange
            val = ex.revalue()
            reserves = ex.usdx.reserves if ex.usdx is not None else 0.0
            coll = float(ex.ledger.collateral_value(ex.coll_prices).sum())
            total += float(val.equity.sum()) - coll + ex.fee_pool + reserves - ex.bad_debt
            total -= ex.ledger.deposits + ex.seeded
        return total

    def transfer_error(self) -> float:
        """Σ over venues of the net transfers their books counted in, plus what is in
        flight: zero when nothing was lost or made between venues."""
        return sum(v.exchange.transfers_net for v in self.venues) + self.in_flight()
