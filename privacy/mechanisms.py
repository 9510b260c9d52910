"""Exact noise mechanisms on integer vectors, built from OpenDP 0.16.

Every measurement here is an OpenDP measurement (the exact discrete Gaussian or discrete
Laplace sampler, Canonne–Kamath–Steinke), declared together with its sensitivity:

* ``gaussian``: input metric L2 over int64 vectors, output ρ-zCDP; ρ = ``meas.map(Δ₂)``.
* ``laplace``:  input metric L1 over int64 vectors, output pure ε-DP; ε = ``meas.map(Δ₁)``.

Sensitivities are integers (counts, integer cents). Several queries released together are
measured *separately*, each charged its own ρ_i (or ε_i) at its own sensitivity; zCDP adds
ρ's exactly, so this is the same as one joint measurement with L2 = sqrt(Σ Δ_i²) at equal
scales, and it lets each query keep an integer sensitivity.

Both directions: :func:`calibrate_scale` (loss → scale, OpenDP's ``binary_search_param``)
and :func:`loss_for_scale` (scale → loss, OpenDP's ``map``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import opendp.prelude as dp

__all__ = [
    "INT64_MAX",
    "IntegerMechanism",
    "Mechanism",
    "calibrate_scale",
    "check_int64_room",
    "loss_for_scale",
    "validate_sensitivity",
]

dp.enable_features("contrib")

Mechanism = Literal["gaussian", "laplace"]
INT64_MAX = int(np.iinfo(np.int64).max)


def validate_sensitivity(sensitivity: int, name: str = "sensitivity") -> int:
    """A sensitivity is a positive integer (counts, cents) that fits int64."""
    if isinstance(sensitivity, bool) or not isinstance(sensitivity, (int, np.integer)):
        raise ValueError(f"{name}: must be a positive integer (got {sensitivity!r}); "
                         "express amounts in integer cents")
    if not 0 < int(sensitivity) <= INT64_MAX:
        raise ValueError(f"{name}: must be a positive integer ≤ 2**63-1 (got {sensitivity!r})")
    return int(sensitivity)


def _validate_scale(scale: float) -> float:
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not (
            math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale: must be a finite number > 0 (got {scale!r})")
    return float(scale)


def _make(mechanism: Mechanism, size: int, scale: float) -> dp.Measurement:
    domain = dp.vector_domain(dp.atom_domain(T="i64"), size=size)
    if mechanism == "gaussian":
        return dp.m.make_gaussian(domain, dp.l2_distance(T="i64"), scale=scale)
    if mechanism == "laplace":
        return dp.m.make_laplace(domain, dp.l1_distance(T="i64"), scale=scale)
    raise ValueError(f"mechanism: must be 'gaussian' or 'laplace' (got {mechanism!r})")


def loss_for_scale(mechanism: Mechanism, scale: float, sensitivity: int) -> float:
    """ρ (gaussian) or ε (laplace) of one release at ``scale`` — OpenDP's own privacy map."""
    return float(_make(mechanism, 1, _validate_scale(scale)).map(validate_sensitivity(sensitivity)))


def calibrate_scale(mechanism: Mechanism, loss: float, sensitivity: int) -> float:
    """Smallest scale whose OpenDP privacy map at ``sensitivity`` is ≤ ``loss`` (ρ or ε)."""
    if isinstance(loss, bool) or not isinstance(loss, (int, float)) or not (
            math.isfinite(loss) and loss > 0):
        name = "rho" if mechanism == "gaussian" else "epsilon"
        raise ValueError(f"{name}: must be a finite number > 0 (got {loss!r})")
    return _search_scale(mechanism, float(loss), validate_sensitivity(sensitivity))


@lru_cache(maxsize=1024)
def _search_scale(mechanism: Mechanism, loss: float, sensitivity: int) -> float:
    # Pure and deterministic, and the search costs ~100 ms: repeated plans reuse it.
    return float(dp.binary_search_param(lambda s: _make(mechanism, 1, s), d_in=sensitivity,
                                        d_out=loss, T=float))


def check_int64_room(counts: np.ndarray, scale: float, name: str) -> None:
    """Refuse vectors so close to the int64 edge that noise could overflow (OpenDP saturates)."""
    if counts.size == 0:
        return
    headroom = int(60 * scale) + 1  # P(|noise| > 60 σ) is far below 1e-700
    top = max(abs(int(counts.max())), abs(int(counts.min())))
    if top > INT64_MAX - headroom:
        raise OverflowError(f"{name}: a count of magnitude {top} leaves no int64 room for noise "
                            f"of scale {scale}; lower the clamp bounds")


@dataclass(frozen=True, kw_only=True)
class IntegerMechanism:
    """An exact OpenDP measurement on int64 vectors of ``size``, with its sensitivity.

    ``loss`` is what OpenDP's privacy map says for a neighbour at ``sensitivity``:
    ρ for ``gaussian`` (zCDP), ε for ``laplace`` (pure DP).
    """

    mechanism: Mechanism
    scale: float
    sensitivity: int
    size: int

    def __post_init__(self) -> None:
        if self.mechanism not in ("gaussian", "laplace"):
            raise ValueError(f"mechanism: must be 'gaussian' or 'laplace' "
                             f"(got {self.mechanism!r})")
        _validate_scale(self.scale)
        validate_sensitivity(self.sensitivity)
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"size: must be a positive integer (got {self.size!r})")

    @classmethod
    def for_loss(cls, mechanism: Mechanism, loss: float, *, sensitivity: int,
                 size: int) -> IntegerMechanism:
        """Calibrate the scale so that the privacy loss is at most ``loss``."""
        return cls(mechanism=mechanism, scale=calibrate_scale(mechanism, loss, sensitivity),
                   sensitivity=sensitivity, size=size)

    @property
    def loss(self) -> float:
        return loss_for_scale(self.mechanism, self.scale, self.sensitivity)

    def __call__(self, counts: np.ndarray) -> np.ndarray:
        """Noisy copy of an int64 vector, drawn by OpenDP's exact sampler."""
        arr = np.asarray(counts)
        if arr.ndim != 1 or arr.size != self.size or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(f"counts: must be a 1-D integer vector of length {self.size} "
                             f"(got dtype {arr.dtype}, shape {arr.shape})")
        arr = arr.astype(np.int64)
        check_int64_room(arr, self.scale, "counts")
        out = _make(self.mechanism, self.size, self.scale)(arr.tolist())
        return np.asarray(out, dtype=np.int64)
