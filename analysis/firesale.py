"""Overlapping-portfolio contagion: the static fire-sale stress test of Caccioli,
Shrestha, Moore & Farmer (2014), "Stability analysis of financial contagion due to
overlapping portfolios", J. Banking & Finance 46:233–245.

N institutions hold M assets; institution i holds ``mu`` randomly chosen assets in
equal shares, with leverage λ = assets / equity. One asset is shocked; an institution
whose losses exceed its equity fails and liquidates all its holdings; the price of
asset j falls with the fraction x_j of it that has been liquidated,
p_j = exp(−α x_j) (α fixed by a market-depth assumption). Failures repeat until no
new institution fails. Contagion ("a global cascade") is when more than a
``threshold`` share of institutions fail. The paper's findings reproduced in
``crossmargin validate``: no contagion below a leverage threshold, and, above it, a
window of instability in diversification (few assets per institution: isolated
failures; many: losses spread so thin nobody fails; in between: systemic cascades).

The same dynamics run on any run's exposure graph (:func:`from_exposure_graph`).
"""

from __future__ import annotations

import networkx as nx
import numpy as np

__all__ = ["contagion_probability", "fire_sale", "from_exposure_graph", "random_holdings"]


def random_holdings(n_banks: int, n_assets: int, mu: float, rng: np.random.Generator) -> np.ndarray:
    """Holdings matrix Q (banks × assets, each bank's row sums to 1): each bank holds
    ``mu`` distinct assets (Poisson-distributed around mu, at least one) equally.

    Examples:
        >>> Q = random_holdings(4, 6, 2.0, np.random.default_rng(0))
        >>> Q.sum(axis=1), (Q > 0).sum(axis=1)
        (array([1., 1., 1., 1.]), array([2, 6, 2, 1]))
    """
    Q = np.zeros((n_banks, n_assets))
    for i in range(n_banks):
        k = int(np.clip(rng.poisson(mu), 1, n_assets))
        Q[i, rng.choice(n_assets, size=k, replace=False)] = 1.0 / k
    return Q


def fire_sale(
    holdings: np.ndarray,
    equity: np.ndarray,
    *,
    alpha: float,
    shocked_asset: int,
    shock: float = 1.0,
    max_rounds: int = 10_000,
) -> tuple[np.ndarray, np.ndarray]:
    """Run the cascade. ``holdings[i, j]`` is bank i's asset value in asset j at price 1;
    ``equity[i]`` its capital. Asset ``shocked_asset`` is devalued by ``shock`` (1 = to
    zero, as in the paper's initial shock). Returns (failed mask, final prices).

    Examples:
        >>> holdings, equity = np.array([[1.0, 0.0], [0.5, 0.5]]), np.array([0.5, 0.4])
        >>> failed, prices = fire_sale(holdings, equity, alpha=1.0536, shocked_asset=0, shock=0.1)
        >>> failed, prices.round(3)  # a 10% loss: both banks stand
        (array([False, False]), array([0.9, 1. ]))
        >>> failed, prices = fire_sale(holdings, equity, alpha=1.0536, shocked_asset=0, shock=0.6)
        >>> failed, prices.round(3)  # bank 0 fails (0.6 > 0.5); its sale sinks bank 1 (0.3 < 0.4)
        (array([ True,  True]), array([0.139, 0.349]))
    """
    Q = np.asarray(holdings, dtype=float)
    n, m = Q.shape
    supply = Q.sum(axis=0)
    prices = np.ones(m)
    prices[shocked_asset] *= 1.0 - shock
    failed = np.zeros(n, dtype=bool)
    for _ in range(max_rounds):
        loss = Q @ (1.0 - prices)
        new = (loss > equity) & ~failed
        if not new.any():
            break
        failed |= new
        sold = Q[failed].sum(axis=0)
        frac = np.divide(sold, supply, out=np.zeros(m), where=supply > 0)
        impact = np.exp(-alpha * frac)
        prices = np.minimum(
            prices, impact * np.where(np.arange(m) == shocked_asset, 1.0 - shock, 1.0)
        )
    return failed, prices


def contagion_probability(
    *,
    leverage: float,
    mu: float,
    n_banks: int = 200,
    n_assets: int = 200,
    alpha: float = 1.0536,
    trials: int = 50,
    threshold: float = 0.05,
    seed: int = 0,
) -> tuple[float, float]:
    """Probability of a global cascade (> ``threshold`` of banks fail) and the mean
    fraction failed, over ``trials`` random networks, each bank with leverage λ
    (equity = assets / λ). α = 1.0536 makes the liquidation of 10% of an asset lower
    its price by 10% (exp(−0.1 α) = 0.9), the calibration of Caccioli et al. (2014).

    Examples:
        >>> p, failed = contagion_probability(leverage=20, mu=2, n_banks=50, n_assets=50, trials=5)
        >>> float(p), round(float(failed), 3)
        (1.0, 0.916)
    """
    rng = np.random.default_rng(seed)
    hits = 0
    frac = 0.0
    for _ in range(trials):
        Q = random_holdings(n_banks, n_assets, mu, rng)
        equity = Q.sum(axis=1) / leverage
        failed, _ = fire_sale(Q, equity, alpha=alpha, shocked_asset=int(rng.integers(n_assets)))
        share = failed.mean()
        hits += share > threshold
        frac += share
    return hits / trials, frac / trials


def from_exposure_graph(g: nx.Graph) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """(holders, markets, holdings matrix in USD of gross exposure, equity) from a run's
    ``exposure.graphml``, so that the fire-sale stress test can be run on it.

    Examples:
        >>> from crossmargin.model import CrossMarginModel, Scenario
        >>> crash = {"shocks.0.step": 30, "shocks.0.size": -0.3, "agents.leveraged.count": 100}
        >>> m = CrossMarginModel(Scenario.preset("baseline").replace(steps=60, **crash))
        >>> m.run_for(60)
        >>> accounts, markets, holdings, equity = from_exposure_graph(m.exposure_graph)
        >>> markets, holdings.shape == (len(accounts), len(markets)), equity.shape == (len(accounts),)
        (['market:BTC', 'market:ETH', 'market:SOL', 'market:ALT'], True, True)
    """
    holders = [n for n, d in g.nodes(data=True) if d.get("kind") == "account"]
    markets = [n for n, d in g.nodes(data=True) if d.get("kind") == "market"]
    hi = {n: k for k, n in enumerate(holders)}
    mi = {n: k for k, n in enumerate(markets)}
    Q = np.zeros((len(holders), len(markets)))
    for u, v, e in g.edges(data=True):
        if e.get("kind") != "position":
            continue
        a, m = (u, v) if u in hi else (v, u)
        if a in hi and m in mi:
            Q[hi[a], mi[m]] = float(e["weight"])
    equity = np.array([max(float(g.nodes[a].get("equity", 0.0)), 0.0) for a in holders])
    return holders, markets, Q, equity
