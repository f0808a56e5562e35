"""The exchange: one order book per market, the ledger, fees, pools and settlement.

Agents and the risk engine reach the books only through the exchange, so every fill
is settled on both sides in the ledger the moment it happens, fees go to the
exchange's fee pool, and the resting orders of each account are known (so a
liquidation can cancel them). Perpetual positions trade on the perp books; collateral
tokens trade against USD cash on their own spot books.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from model.events import EventLog
from model.ledger import Ledger, Valuation
from model.markets import CROSS, Collateral, Market
from model.orderbook import GTC, IOC, OrderBook
from model.pools import BackstopVault, InsuranceFund, PoolNetwork, SyntheticDollarPool


@dataclass(frozen=True)
class FeeSchedule:
    """Maker and taker fee rates on notional (negative maker fee = rebate)."""

    maker: float = 0.0002
    taker: float = 0.0005


class Exchange:
    """Books, ledger, pools and the settlement of every fill.

    Args:
        markets: Perpetual markets (one book each).
        collaterals: Collateral assets (one spot book each, against USD cash).
        fees: Maker/taker fees.
        insurance_fund: Initial insurance-fund balance (USD).
        vault_capital: Initial capital of the backstop vault (USD); 0 = no vault.
        vault_max_leverage: Leverage cap of the vault's own account.
        synthetic_dollar: A synthetic-dollar pool whose token is collateral index
            ``synthetic_dollar_index``; its NAV prices that collateral when the price
            source is ``pool_nav``.
    """

    def __init__(
        self,
        markets: Sequence[Market],
        collaterals: Sequence[Collateral] = (),
        *,
        fees: FeeSchedule | None = None,
        insurance_fund: float = 0.0,
        vault_capital: float = 0.0,
        vault_max_leverage: float = 5.0,
        synthetic_dollar: SyntheticDollarPool | None = None,
        synthetic_dollar_index: int | None = None,
        capacity: int = 1024,
    ) -> None:
        self.markets = tuple(markets)
        self.collaterals = tuple(collaterals)
        self.fees = fees or FeeSchedule()
        self.ledger = Ledger(self.markets, self.collaterals, capacity=capacity)
        self.books = [OrderBook() for _ in self.markets]
        self.spot_books = [OrderBook() for _ in self.collaterals]
        self.insurance = InsuranceFund(insurance_fund)
        self.fee_pool = 0.0
        self.seeded = insurance_fund  # external money put into pools (not accounts)
        self.vault: BackstopVault | None = None
        self.vault_max_leverage = vault_max_leverage
        if vault_capital > 0:
            acct = self.ledger.open_account(vault_capital, mode=CROSS)
            self.vault = BackstopVault(account=acct)
            self.vault.deposit(-1, vault_capital, vault_capital)
        self.usdx = synthetic_dollar
        self.usdx_index = synthetic_dollar_index
        if synthetic_dollar is not None:
            self.seeded += synthetic_dollar.reserves
        self.network = PoolNetwork(["usdx", "usdx_holders"])
        self.events = EventLog()
        self.marks = np.array([np.nan] * len(self.markets))
        self.index = np.array([np.nan] * len(self.markets))
        self.coll_index = np.ones(len(self.collaterals))
        self.coll_prices = np.ones(len(self.collaterals))
        self.pool_recovery = {"usdx": 1.0}
        self.step = 0
        self._resting: dict[int, set[tuple[int, int]]] = {}
        self._trade_cols: dict[str, list] = {
            c: [] for c in ("step", "market", "price", "qty", "maker", "taker", "side", "forced")
        }
        self.forced = False  # set by the risk engine while it trades for a liquidation
        self.volume = np.zeros(len(self.markets))  # USD traded (reset by the model each step)

    # --------------------------------------------------------------- orders
    def limit(
        self, account: int, m: int, side: int, price: int, qty: int, *, tif: int = GTC
    ) -> int:
        """Limit order on perp book ``m`` (price in ticks, qty in lots); return lots filled."""
        book = self.books[m]
        filled = book.limit(side, price, qty, account, tif=tif)
        if book.fills:
            self._settle_perp(m, book.fills)
        if tif == GTC and book.last_id in book:
            self._resting.setdefault(account, set()).add((m, book.last_id))
        return filled

    def market_order(
        self, account: int, m: int, side: int, qty: int, *, limit: int | None = None
    ) -> int:
        """Market order (or IOC limited at ``limit`` ticks) on perp book ``m``; return lots filled."""
        book = self.books[m]
        if limit is None:
            filled = book.market(side, qty, account)
        else:
            filled = book.limit(side, limit, qty, account, tif=IOC) if limit > 0 else 0
        if book.fills:
            self._settle_perp(m, book.fills)
        return filled

    def cancel(self, account: int, m: int, oid: int) -> int:
        """Cancel one resting order of ``account`` on perp book ``m``; return lots cancelled."""
        s = self._resting.get(account)
        if s is not None:
            s.discard((m, oid))
        return self.books[m].cancel(oid)

    def cancel_all(self, account: int) -> int:
        """Cancel every resting order of ``account`` (perp and spot); return how many were live."""
        live = 0
        for m, oid in self._resting.pop(account, ()):
            book = self.books[m] if m >= 0 else self.spot_books[-m - 1]
            live += book.cancel(oid) > 0
        return live

    def spot_limit(
        self, account: int, c: int, side: int, price: int, qty: int, *, tif: int = GTC
    ) -> int:
        """Limit order on collateral ``c``'s spot book; return lots filled."""
        book = self.spot_books[c]
        filled = book.limit(side, price, qty, account, tif=tif)
        if book.fills:
            self._settle_spot(c, book.fills)
        if tif == GTC and book.last_id in book:
            self._resting.setdefault(account, set()).add((-c - 1, book.last_id))
        return filled

    def spot_cancel(self, account: int, c: int, oid: int) -> int:
        """Cancel one resting order of ``account`` on collateral ``c``'s spot book."""
        s = self._resting.get(account)
        if s is not None:
            s.discard((-c - 1, oid))
        return self.spot_books[c].cancel(oid)

    def spot_market(self, account: int, c: int, side: int, qty: int) -> int:
        """Market order on collateral ``c``'s spot book; return lots filled."""
        book = self.spot_books[c]
        filled = book.market(side, qty, account)
        if book.fills:
            self._settle_spot(c, book.fills)
        return filled

    # ----------------------------------------------------------- settlement
    def _settle_perp(self, m: int, fills: list) -> None:
        trade = self.ledger.trade
        tick = self.markets[m].tick
        lot = self.markets[m].lot
        maker_rate, taker_rate = self.fees.maker, self.fees.taker
        forced = self.forced
        cols = self._trade_cols
        for _moid, maker, _toid, taker, ticks, qty, side in fills:
            price = ticks * tick
            notional = qty * lot * price
            maker_fee = maker_rate * notional
            taker_fee = 0.0 if forced else taker_rate * notional
            trade(maker, m, -side * qty, price, maker_fee)
            trade(taker, m, side * qty, price, taker_fee)
            self.fee_pool += maker_fee + taker_fee
            cols["step"].append(self.step)
            cols["market"].append(m)
            cols["price"].append(price)
            cols["qty"].append(qty)
            cols["maker"].append(maker)
            cols["taker"].append(taker)
            cols["side"].append(side)
            cols["forced"].append(forced)
            self.volume[m] += notional
        fills.clear()

    def _settle_spot(self, c: int, fills: list) -> None:
        spec = self.collaterals[c]
        move = self.ledger.move_collateral
        for _moid, maker, _toid, taker, ticks, qty, side in fills:
            units = qty * spec.lot
            price = ticks * spec.tick
            if side == 1:  # taker buys the token from the maker
                move(maker, taker, c, units, price)
            else:
                move(taker, maker, c, units, price)
        fills.clear()

    def transfer_position(self, src: int, dst: int, m: int, qty: int, price: float) -> None:
        """Move ``qty`` lots (signed, from ``src``'s point of view: the amount ``src``
        gives up) of market ``m`` from ``src`` to ``dst`` at ``price``, both sides settled.

        Used for backstop takeovers and ADL, which happen off the book.
        """
        self.ledger.trade(src, m, -qty, price)
        self.ledger.trade(dst, m, qty, price)
        cols = self._trade_cols
        cols["step"].append(self.step)
        cols["market"].append(m)
        cols["price"].append(price)
        cols["qty"].append(abs(qty))
        cols["maker"].append(dst)
        cols["taker"].append(src)
        cols["side"].append(-1 if qty > 0 else 1)
        cols["forced"].append(True)

    # ------------------------------------------------------------- valuation
    def revalue(self) -> Valuation:
        """Revalue every account at the current marks and collateral prices."""
        return self.ledger.revalue(self.marks, self.coll_prices)

    def account_margin(self, account: int) -> tuple[float, float, float]:
        """(equity, MM, IM) of one account at the current marks."""
        return self.ledger.account_margin(account, self.marks, self.coll_prices)

    def vault_nav(self) -> float:
        """The backstop vault's NAV (its account's equity), 0 without a vault."""
        if self.vault is None:
            return 0.0
        return self.account_margin(self.vault.account)[0]

    def clear_pools(self) -> dict[str, float]:
        """Clear the pool network (Eisenberg–Noe) and reprice pool-backed collateral.

        The synthetic-dollar pool owes its token holders face value (1 USD a token); its
        assets are its reserves and its stake in the vault, worth that share of the
        vault's NAV (vault shares are equity: limited liability, never below 0).
        Returns the recovery rate of the pool's liabilities (1 when solvent).
        """
        if self.usdx is None:
            return self.pool_recovery
        nav = max(self.vault_nav(), 0.0)
        vault = self.vault
        usdx = self.usdx
        stake = 0.0
        if vault is not None and vault.total_shares > 0 and usdx.vault_shares > 0:
            stake = nav * usdx.vault_shares / vault.total_shares
        net = self.network
        net.set_debt("usdx", "usdx_holders", usdx.supply)
        _, recovery = net.clear({"usdx": usdx.reserves + stake})
        rec = float(recovery[net.index["usdx"]])
        self.pool_recovery = {"usdx": rec}
        return self.pool_recovery

    def update_collateral_prices(self) -> np.ndarray:
        """Price each collateral by its source: index, own spot book (mid, else last) or pool NAV."""
        for c, spec in enumerate(self.collaterals):
            if spec.price_source == "index":
                self.coll_prices[c] = self.coll_index[c]
            elif spec.price_source == "book":
                book = self.spot_books[c]
                mid = book.mid
                ref = mid if mid is not None else book.last_price
                if ref is not None:
                    self.coll_prices[c] = ref * spec.tick
            else:
                self.coll_prices[c] = (
                    self.pool_recovery.get("usdx", 1.0) if c == self.usdx_index else 1.0
                )
        return self.coll_prices

    # ----------------------------------------------------------- accounting
    def money(self) -> float:
        """All USD in the system: accounts, insurance fund, fee pool, pool reserves."""
        reserves = self.usdx.reserves if self.usdx is not None else 0.0
        return self.ledger.money() + self.insurance.balance + self.fee_pool + reserves

    def external(self) -> float:
        """All USD ever put in from outside (deposits and pool seeds, net of withdrawals)."""
        return self.ledger.deposits + self.seeded

    def conservation_error(self) -> float:
        """``money() − external()``: zero up to float rounding when the books balance."""
        return self.money() - self.external()

    def trades_frame(self) -> pd.DataFrame:
        """Every fill and off-book transfer as a DataFrame."""
        df = pd.DataFrame(self._trade_cols)
        return df.astype(
            {
                "step": "int64",
                "market": "int64",
                "price": "float64",
                "qty": "int64",
                "maker": "int64",
                "taker": "int64",
                "side": "int64",
                "forced": "bool",
            }
        )

    @property
    def n_trades(self) -> int:
        """Number of trades recorded so far."""
        return len(self._trade_cols["step"])
