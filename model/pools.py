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


@dataclass
class InsuranceFund:
    """The exchange's insurance fund: takes liquidation fees, pays bankrupt shortfalls.

    It never pays more than it holds (so it never goes negative); what it cannot pay
    goes on down the waterfall (ADL or socialized loss). Binance, Bybit, OKX and
    dYdX all run a fund of this kind.
    """

    balance: float = 0.0
    start: float = field(init=False)
    low: float = field(init=False)
    fees_in: float = 0.0
    paid_out: float = 0.0

    def __post_init__(self) -> None:
        if self.balance < 0:
            raise ValueError(f"insurance_fund: must be >= 0, got {self.balance}")
        self.start = self.balance
        self.low = self.balance

    def receive(self, amount: float) -> None:
        """Credit a liquidation fee or surplus."""
        self.balance += amount
        self.fees_in += amount

    def pay(self, amount: float) -> float:
        """Pay up to ``amount``; return what was paid."""
        paid = min(max(amount, 0.0), self.balance)
        self.balance -= paid
        self.paid_out += paid
        self.low = min(self.low, self.balance)
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
