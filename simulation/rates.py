"""Latent visit rates from observed purchase frequency (regression to the mean).

A twin's ``frequency`` level is what its owner saw: purchase days per 30 days over the
customer's span (at most a year). For a shopper with few purchases that is a noisy measure
of how often it really shops: among customers seen twice a year, some are unlucky regular
shoppers and some lucky rare ones, and next quarter the group shops like its average latent
rate, not like its observed one (Ehrenberg's NBD model; Morrison & Schmittlein 1988). Taking
the observed frequency as the rate overstates the future of the frequent-looking and
understates that of the rare-looking, most where purchases are rare (apparel: a few a year).

The population prior is a distribution of the daily rate on a fixed grid, fitted to the
twins' own frequency-level counts (a function of the twins only, so post-processing of the
release) by EM for the nonparametric maximum likelihood (Kiefer–Wolfowitz), with Poisson
purchase days over the span; a fixed number of EM steps from a flat start keeps it smooth.
A twin's rate is then drawn from its posterior given its observed count (``frequency ×
span / 30``): with many purchases the posterior sits at the observed rate, with few it moves
toward the population.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = ["RatePrior", "fit_frequency_prior", "latent_rates", "level_probabilities"]

GRID = np.geomspace(2e-4, 0.95, 120)  # daily rates: from once in 14 years to every day
EM_STEPS = 300
_CHUNK = 50_000  # twins per posterior block (grid × chunk floats)


@dataclass(frozen=True, kw_only=True, eq=False)
class RatePrior:
    """P(daily rate = ``grid[i]``) = ``weights[i]``."""

    grid: np.ndarray
    weights: np.ndarray

    def __post_init__(self) -> None:
        if self.grid.shape != self.weights.shape or self.grid.ndim != 1 or not self.grid.size:
            raise ValueError("RatePrior: grid and weights need the same 1-D shape")
        if (self.grid <= 0).any() or (self.weights < 0).any():
            raise ValueError("RatePrior: rates must be > 0 and weights >= 0")
        if not np.isclose(self.weights.sum(), 1.0):
            raise ValueError(f"RatePrior.weights: must sum to 1, got {self.weights.sum()}")

    @property
    def mean_rate(self) -> float:
        return float(self.weights @ self.grid)


def level_probabilities(rates: np.ndarray, edges: tuple[float, ...], span: float
                        ) -> np.ndarray:
    """(rates, levels): P(frequency level | daily rate), Poisson purchase days over ``span``
    binned per 30 days at ``edges``; a level's largest count is ``ceil(edge·span/30) − 1``."""
    top = np.ceil(np.asarray(edges) * span / 30.0) - 1.0
    cdf = np.where(top >= 0, special.pdtr(np.maximum(top, 0.0)[None, :],
                                          np.asarray(rates)[:, None] * span), 0.0)
    ones = np.ones((len(rates), 1))
    return np.diff(np.concatenate([0 * ones, cdf, ones], axis=1), axis=1)


@functools.lru_cache(maxsize=256)
def _fit(counts: tuple[int, ...], edges: tuple[float, ...], span: float) -> RatePrior:
    like = level_probabilities(GRID, edges, span)
    share = np.asarray(counts, dtype=float) / max(sum(counts), 1)
    w = np.full(GRID.size, 1.0 / GRID.size)
    for _ in range(EM_STEPS):
        w = w * (like @ (share / np.maximum(w @ like, 1e-300)))
    return RatePrior(grid=GRID.copy(), weights=w / w.sum())


def fit_frequency_prior(level_counts: np.ndarray, edges: tuple[float, ...],
                        span_days: float = 365.0) -> RatePrior:
    """The prior of daily rates whose Poisson purchase days over ``span_days``, binned per 30
    days at ``edges`` (the public frequency bins), reproduce ``level_counts`` (twins per
    frequency level). Deterministic and cached by its arguments."""
    counts = np.asarray(level_counts)
    if counts.shape != (len(edges) + 1,) or counts.min() < 0:
        raise ValueError(f"level_counts: need {len(edges) + 1} non-negative counts, got "
                         f"{counts.tolist()}")
    return _fit(tuple(int(c) for c in counts), tuple(float(e) for e in edges),
                float(span_days))


def latent_rates(per_30: np.ndarray, span_days: np.ndarray, prior: RatePrior,
                 rng: np.random.Generator) -> np.ndarray:
    """Daily rates drawn from each twin's posterior given ``per_30`` purchase days per 30
    days observed over ``span_days`` (see the module doc), spread within a grid step."""
    span = np.broadcast_to(np.asarray(span_days, dtype=float), np.shape(per_30))
    k = np.asarray(per_30, dtype=float) * span / 30.0
    u = rng.random(k.size)
    g = np.empty(k.size, dtype=np.int64)
    log_w = np.log(np.maximum(prior.weights, 1e-300))[:, None]
    for lo in range(0, k.size, _CHUNK):
        sl = slice(lo, lo + _CHUNK)
        mu = prior.grid[:, None] * span[None, sl]
        logp = log_w + k[None, sl] * np.log(mu) - mu
        post = np.exp(logp - logp.max(axis=0))
        cum = np.cumsum(post, axis=0)
        g[sl] = (cum < (u[sl] * cum[-1])[None, :]).sum(axis=0)
    g = np.minimum(g, prior.grid.size - 1)
    half = 0.5 * float(np.log(prior.grid[1] / prior.grid[0])) if prior.grid.size > 1 else 0.0
    return prior.grid[g] * np.exp(rng.uniform(-half, half, k.size))
