"""Latent visit rates from observed frequency: the Gamma-mixture prior and the posterior."""

from __future__ import annotations

import numpy as np
import pytest

from simulation.rates import RatePrior, fit_frequency_prior, latent_rates
from twins.schema import SCHEMA

EDGES = tuple(SCHEMA["frequency"].edges)  # type: ignore[arg-type]
SPAN = 365.0


def _population(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Latent daily rates from a known two-component mixture, a year of Poisson purchase
    days each, and their observed frequency (per 30 days) and level."""
    rng = np.random.default_rng(seed)
    group = rng.choice(3, size=n, p=[0.4, 0.5, 0.1])  # rare, regular and daily shoppers
    lam = np.choose(group, [rng.gamma(0.8, 1 / 200.0, n), rng.gamma(4.0, 1 / 40.0, n),
                            rng.gamma(40.0, 1 / 60.0, n)])
    k = rng.poisson(lam * SPAN)
    per30 = k / SPAN * 30.0
    return lam, per30, np.searchsorted(np.array(EDGES), per30, side="right")


def test_the_prior_reproduces_the_level_counts_and_the_posterior_the_latent_rates() -> None:
    lam, per30, level = _population(60_000, seed=3)
    counts = np.bincount(level, minlength=len(EDGES) + 1)
    prior = fit_frequency_prior(counts, EDGES)
    assert prior is fit_frequency_prior(counts, EDGES)  # deterministic (and cached)
    assert prior.mean_rate == pytest.approx(lam.mean(), rel=0.1)
    draws = latent_rates(per30, np.full(per30.size, SPAN), prior, np.random.default_rng(4))
    for lv in np.unique(level):
        sel = level == lv
        if sel.sum() < 1000:
            continue
        # the twins' rates per level match the customers' latent rates, not their observed
        # ones: the rare-looking are shrunk up, the frequent-looking down
        assert draws[sel].mean() == pytest.approx(lam[sel].mean(), rel=0.08), lv
    rare = level == 0
    assert per30[rare].mean() / 30 < 0.8 * lam[rare].mean()  # what taking it as is misses


def test_many_purchases_speak_for_themselves() -> None:
    _, per30, level = _population(60_000, seed=5)
    prior = fit_frequency_prior(np.bincount(level, minlength=len(EDGES) + 1), EDGES)
    per30 = np.full(20_000, 20.0)  # 20 purchase days a month, all year
    draws = latent_rates(per30, np.full(per30.size, SPAN), prior, np.random.default_rng(1))
    assert draws.mean() * 30 == pytest.approx(20.0, rel=0.03)
    # the same frequency seen over four weeks only says less
    short = latent_rates(per30, np.full(per30.size, 28.0), prior, np.random.default_rng(1))
    assert abs(short.mean() * 30 - 20.0) > abs(draws.mean() * 30 - 20.0)


def test_bad_priors_and_counts_are_refused() -> None:
    with pytest.raises(ValueError, match="rates must be > 0"):
        RatePrior(grid=np.array([-1.0, 1.0]), weights=np.array([0.5, 0.5]))
    with pytest.raises(ValueError, match="sum to 1"):
        RatePrior(grid=np.array([0.1, 1.0]), weights=np.array([0.5, 0.6]))
    with pytest.raises(ValueError, match="level_counts"):
        fit_frequency_prior(np.array([1, 2, 3]), EDGES)
