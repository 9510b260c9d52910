"""Statistical tests of the exact samplers with a fixed false-alarm rate (p < 1e-6 rejects).

The real OpenDP sampler at the calibrated scale must pass a χ² goodness-of-fit test against
the exact discrete Gaussian/Laplace pmf; a mutant drawing at 0.9 × the scale must fail it.
One vector call of 50k draws each keeps the file fast; the power against the mutant is
overwhelming at that size (its variance is 19 % smaller).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from privacy.mechanisms import IntegerMechanism
from privacy.preview import noise_distribution

ALPHA = 1e-6
N = 50_000


def _chi2_pvalue(samples: np.ndarray, mechanism: str, scale: float) -> float:
    support, pmf = noise_distribution(mechanism, scale)
    lim = int(4 * scale) if mechanism == "gaussian" else int(6 * scale)
    inner = (support >= -lim) & (support <= lim)
    expected = np.concatenate([[pmf[support < -lim].sum()], pmf[inner],
                               [pmf[support > lim].sum()]]) * samples.size
    clipped = np.clip(samples, -lim - 1, lim + 1) + lim + 1
    observed = np.bincount(clipped, minlength=2 * lim + 3)
    keep = expected >= 5  # χ² needs enough expected mass per bin; merge the rest
    obs = np.append(observed[keep], observed[~keep].sum())
    exp = np.append(expected[keep], expected[~keep].sum())
    if exp[-1] < 5:
        obs, exp = obs[:-1], exp[:-1]
        obs[-1] += observed[~keep].sum()
        exp[-1] += expected[~keep].sum()
    return float(stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


@pytest.mark.parametrize(("mechanism", "loss"), [("gaussian", 0.02), ("laplace", 0.25)])
def test_real_sampler_passes_and_mutant_fails(mechanism: str, loss: float):
    mech = IntegerMechanism.for_loss(mechanism, loss, sensitivity=1, size=N)
    real = mech(np.zeros(N, dtype=np.int64))
    assert _chi2_pvalue(real, mechanism, mech.scale) > ALPHA
    mutant = IntegerMechanism(mechanism=mechanism, scale=0.9 * mech.scale, sensitivity=1,
                              size=N)(np.zeros(N, dtype=np.int64))
    assert _chi2_pvalue(mutant, mechanism, mech.scale) < ALPHA


def test_noise_is_added_to_the_counts_and_is_integer():
    mech = IntegerMechanism.for_loss("gaussian", 0.5, sensitivity=1, size=5)
    counts = np.array([10**12, 0, -5, 7, 2**40], dtype=np.int64)
    noisy = mech(counts)
    assert noisy.dtype == np.int64 and noisy.shape == (5,)
    assert np.all(np.abs(noisy - counts) < 60 * mech.scale)


def test_counts_at_the_int64_edge_are_refused():
    mech = IntegerMechanism.for_loss("gaussian", 0.5, sensitivity=1, size=1)
    with pytest.raises(OverflowError, match="int64"):
        mech(np.array([np.iinfo(np.int64).max - 3], dtype=np.int64))


def test_wrong_shape_or_dtype_refused():
    mech = IntegerMechanism.for_loss("laplace", 0.5, sensitivity=1, size=3)
    with pytest.raises(ValueError, match="length 3"):
        mech(np.zeros(4, dtype=np.int64))
    with pytest.raises(ValueError, match="integer"):
        mech(np.zeros(3, dtype=np.float64))
