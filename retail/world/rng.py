"""Counter-based uniforms: a draw is a pure function of (customer key, day, slot).

Nature's daily draws are not taken from a stateful stream but hashed (splitmix64) from the
customer's 64-bit key, the day and a slot number. So every customer sees the same draws
whichever subset of customers is simulated and whichever offer is applied: two arms of a
counterfactual share *common random numbers* by construction, and the generator only pays
for the draws it uses (visitors' baskets, not every customer × category every day).
The keys themselves come from seeded ``numpy.random.Generator`` streams (SeedSequence).
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

__all__ = ["customer_keys", "normal", "pair", "rekey", "uniform"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_DAY = np.uint64(0xD1B54A32D192ED03)
_SLOT = np.uint64(0x8CB92BA72F3D8DD7)
_S30, _S27, _S31, _S32 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(32)
_INV32 = 1.0 / 2**32


def _mix(x: np.ndarray) -> np.ndarray:
    x = x + _GOLDEN
    x = (x ^ (x >> _S30)) * _M1
    x = (x ^ (x >> _S27)) * _M2
    return x ^ (x >> _S31)


def customer_keys(rng: np.random.Generator, n: int) -> np.ndarray:
    """Fresh 64-bit keys for ``n`` customers from a seeded Generator."""
    return rng.integers(0, 2**63, size=n, dtype=np.int64).astype(np.uint64)


def rekey(keys: np.ndarray, seed: int) -> np.ndarray:
    """Keys of an independent replicate (e.g. a counterfactual seed)."""
    salt = np.full(1, seed, dtype=np.uint64) * _SLOT + _GOLDEN
    return _mix(keys ^ salt)


def _hash(keys: np.ndarray, day: int, slot: np.ndarray | int) -> np.ndarray:
    counter = (np.full(1, day, dtype=np.uint64) * _DAY
               + np.asarray(slot, dtype=np.uint64) * _SLOT)
    return _mix(keys ^ counter)


def pair(keys: np.ndarray, day: int, slot: np.ndarray | int) -> tuple[np.ndarray, np.ndarray]:
    """Two independent uniforms in (0, 1) per element (32 bits each) from one hash."""
    h = _hash(keys, day, slot)
    lo = (h & np.uint64(0xFFFFFFFF)).astype(np.float64)
    hi = (h >> _S32).astype(np.float64)
    return (lo + 0.5) * _INV32, (hi + 0.5) * _INV32


def uniform(keys: np.ndarray, day: int, slot: np.ndarray | int) -> np.ndarray:
    return pair(keys, day, slot)[0]


def normal(u: np.ndarray) -> np.ndarray:
    """Standard normal deviates from uniforms (inverse CDF)."""
    return ndtri(u)
