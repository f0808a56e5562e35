"""Shared pools: insurance fund, backstop vault, synthetic-dollar pool, and clearing.

A pool is a balance sheet several accounts share. When a pool's losses exceed its
equity, its creditors are written down by the Eisenberg–Noe clearing computation on
the liabilities network (Eisenberg & Noe 2001, "Systemic Risk in Financial Systems",
Management Science 47(2)): proportional sharing among creditors, limited liability,
absolute priority of debt over equity. A token that is a claim on a pool (a
synthetic dollar, a vault share) is then worth its recovery rate, and that value
flows back into the equity of every account that posts the token as collateral.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "BackstopVault",
    "InsuranceFund",
    "PoolNetwork",
    "SyntheticDollarPool",
    "clearing_vector",
]


def clearing_vector(
    liabilities: np.ndarray, external_assets: np.ndarray, *, tol: float = 1e-12
) -> np.ndarray:
    """The Eisenberg–Noe greatest clearing payment vector.

    ``liabilities[i, j]`` is what node i owes node j; ``external_assets[i]`` is what
    node i holds outside the network. The clearing vector p solves
    ``p = min(p̄, e + Πᵀ p)`` with ``p̄ = Σ_j L_ij`` and ``Π_ij = L_ij / p̄_i``; of all
    solutions it is the greatest. Computed by the fictitious default algorithm
    (Eisenberg & Noe 2001, §3): start with no defaults, solve the linear system for
    the defaulting set, add the nodes that the solution leaves short, repeat; at most
    n rounds. Falls back to the monotone fixed-point iteration from p̄ (which also
    converges to the greatest solution) when a round's system is singular.

    Raises:
        ValueError: shapes disagree, or an entry is negative or not finite.

    Examples:
        >>> clearing_vector(np.array([[0.0, 10.0], [5.0, 0.0]]), np.array([2.0, 1.0]))
        array([7., 5.])
        >>> clearing_vector(np.array([[0.0, 10.0], [0.0, 0.0]]), np.array([4.0, 0.0]))  # pays 4 of 10
        array([4., 0.])
    """
    L = np.asarray(liabilities, dtype=np.float64)
    e = np.asarray(external_assets, dtype=np.float64)
    if L.ndim != 2 or L.shape[0] != L.shape[1]:
        raise ValueError(f"liabilities: must be a square matrix, got shape {L.shape}")
    n = L.shape[0]
    if e.shape != (n,):
        raise ValueError(f"external_assets: must have length {n}, got shape {e.shape}")
    if not (np.isfinite(L).all() and np.isfinite(e).all()):
        raise ValueError("liabilities: entries must be finite")
    if (L < 0).any():
        raise ValueError("liabilities: entries must be >= 0")
    if (e < 0).any():
        raise ValueError("external_assets: entries must be >= 0")
    pbar = L.sum(axis=1)
    Pi = np.divide(L, pbar[:, None], out=np.zeros_like(L), where=pbar[:, None] > 0)
    PiT = Pi.T
    default = np.zeros(n, dtype=bool)
    p = pbar.copy()
    for _ in range(n + 1):
        d = np.flatnonzero(default)
        s = np.flatnonzero(~default)
        p = pbar.copy()
        if len(d):
            A = np.eye(len(d)) - PiT[np.ix_(d, d)]
            b = e[d] + PiT[np.ix_(d, s)] @ pbar[s]
            try:
                p[d] = np.linalg.solve(A, b)
            except np.linalg.LinAlgError:
                return _picard(pbar, e, PiT, tol)
        value = e + PiT @ p
        new_default = value < pbar - tol * np.maximum(1.0, pbar)
        if (new_default == default).all():
            break
        default |= new_default
    p = np.clip(p, 0.0, pbar)
    if not np.all(np.abs(np.minimum(pbar, e + PiT @ p) - p) <= 1e-9 * np.maximum(1.0, pbar)):
        return _picard(pbar, e, PiT, tol)
    return p


def _picard(pbar: np.ndarray, e: np.ndarray, PiT: np.ndarray, tol: float) -> np.ndarray:
    """Monotone iteration p ← min(p̄, e + Πᵀp) from p̄: decreases to the greatest fixed point."""
    p = pbar.copy()
    for _ in range(100_000):
        nxt = np.minimum(pbar, e + PiT @ p)
        if np.abs(nxt - p).max(initial=0.0) <= tol * max(1.0, float(pbar.max(initial=0.0))):
            return nxt
        p = nxt
    return p


class InsuranceFund:
    """The exchange's insurance fund: takes liquidation fees, pays bankrupt shortfalls
    and warehouses the positions it takes over.

    Binance, Bybit, OKX and BitMEX run a fund of this kind. It is an account in the
    ledger (its cash is :attr:`balance`; positions it took over are valued at mark
    like anyone's), so it can carry a position at the bankruptcy price and work it
    back into the book. It counts as exhausted when its free equity (equity − the
    maintenance margin of what it holds) is at or below ``floor``; it never pays out
    more than its free equity above the floor.

    Args:
        account: Its ledger account.
        ledger: The exchange's ledger.
        start: Initial balance (USD), for the reports.
        floor: Equity below which the fund no longer pays or takes over (USD).
    """

    def __init__(self, account: int, ledger, start: float, *, floor: float = 0.0) -> None:
        if start < 0:
            raise ValueError(f"insurance_fund: must be >= 0, got {start}")
        if floor < 0:
            raise ValueError(f"liquidation.insurance_floor: must be >= 0, got {floor}")
        self.account = account
        self.ledger = ledger
        self.start = start
        self.low = start
        self.floor = floor
        self.fees_in = 0.0
        self.paid_out = 0.0

    @property
    def balance(self) -> float:
        """The fund's cash (USD); its equity also counts the positions it holds."""
        return float(self.ledger.cash[self.account])

    def receive(self, amount: float) -> None:
        """Credit a liquidation fee or surplus."""
        self.ledger.cash[self.account] += amount
        self.ledger.touch()
        self.fees_in += amount

    def pay(self, amount: float, equity: float) -> float:
        """Pay up to ``amount`` out of ``equity`` (the fund's free equity) above its
        floor; return what was paid."""
        paid = min(max(amount, 0.0), max(equity - self.floor, 0.0))
        self.ledger.cash[self.account] -= paid
        self.ledger.touch()
        self.paid_out += paid
        return paid


@dataclass
class BackstopVault:
    """A backstop liquidity vault whose depositors share its profit and loss.

    Modelled on Hyperliquid's HLP: the vault trades through its own margin account
    (``account`` in the ledger) and takes over positions the book cannot absorb;
    depositors hold shares, and the vault's NAV (the account's equity) is split pro
    rata. A share is a claim on the pool and can be posted as collateral.
    """

    account: int
    shares: dict[int, float] = field(default_factory=dict)
    total_shares: float = 0.0

    def deposit(self, holder: int, amount: float, nav: float) -> float:
        """Mint shares for ``amount`` USD at the current ``nav``; return the shares minted.

        The caller moves the cash into the vault's account.
        """
        price = nav / self.total_shares if self.total_shares > 0 and nav > 0 else 1.0
        minted = amount / price
        self.shares[holder] = self.shares.get(holder, 0.0) + minted
        self.total_shares += minted
        return minted

    def share_price(self, nav: float) -> float:
        """NAV per share (limited liability: never below 0)."""
        if self.total_shares <= 0:
            return 1.0
        return max(nav, 0.0) / self.total_shares


@dataclass
class SyntheticDollarPool:
    """A synthetic dollar (like USDe or UST): tokens redeemable against the pool's assets.

    The pool holds USD ``reserves`` and, optionally, a stake of ``vault_shares`` in
    the backstop vault (a claim on another pool). Its tokens are posted as collateral
    on the exchange; with price source ``pool_nav`` a token is worth the pool's
    recovery rate (assets / supply, at most 1), so a loss in the vault reaches every
    account holding the token.
    """

    supply: float
    reserves: float
    vault_shares: float = 0.0

    def __post_init__(self) -> None:
        if self.supply < 0 or self.reserves < 0 or self.vault_shares < 0:
            raise ValueError("synthetic_dollar: supply, reserves and vault_shares must be >= 0")


class PoolNetwork:
    """The liabilities network between shared pools, cleared by Eisenberg–Noe.

    Nodes are named pools plus one node per group of external creditors (token
    holders, depositors). ``add_debt(debtor, creditor, amount)`` records a claim;
    :meth:`clear` takes the pools' external assets and returns the payments and the
    recovery rate (payment / face value) of every debtor.
    """

    def __init__(self, nodes: list[str]) -> None:
        self.nodes = list(nodes)
        self.index = {name: k for k, name in enumerate(self.nodes)}
        self.liabilities = np.zeros((len(nodes), len(nodes)))

    def set_debt(self, debtor: str, creditor: str, amount: float) -> None:
        """Set what ``debtor`` owes ``creditor`` (USD face value)."""
        self.liabilities[self.index[debtor], self.index[creditor]] = amount

    def clear(self, external: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """(payments, recovery) given each node's external assets (missing names: 0)."""
        e = np.zeros(len(self.nodes))
        for name, value in external.items():
            e[self.index[name]] = max(value, 0.0)
        p = clearing_vector(self.liabilities, e)
        owed = self.liabilities.sum(axis=1)
        recovery = np.divide(p, owed, out=np.ones_like(p), where=owed > 0)
        return p, recovery
