"""Noise preview: what a planned release would look like, without spending any budget.

For each planned query the preview calibrates the same exact mechanism that
:func:`privacy.release.measure_and_release` would use and reports, per cell, the noise
standard deviation, the 95 % error bound (smallest t with P(|noise| ≤ t) ≥ 0.95, from the
exact discrete distribution) and the expected relative error for a cohort of
``n_customers`` spread evenly over the cells (a planning assumption, stated as such).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from privacy.accounting import validate_delta, zcdp_rho_for_epsilon
from privacy.mechanisms import IntegerMechanism, Mechanism, validate_sensitivity

__all__ = ["NoisePreview", "QueryPlan", "noise_distribution", "preview"]


@dataclass(frozen=True, kw_only=True)
class QueryPlan:
    """A planned query: its number of cells and declared sensitivity (no data)."""

    name: str
    cells: int
    sensitivity: int = 1

    def __post_init__(self) -> None:
        if isinstance(self.cells, bool) or not isinstance(self.cells, int) or self.cells < 1:
            raise ValueError(f"{self.name}.cells: must be a positive integer (got {self.cells!r})")
        validate_sensitivity(self.sensitivity, f"{self.name}.sensitivity")


@dataclass(frozen=True, kw_only=True)
class NoisePreview:
    """Expected accuracy of one planned query."""

    name: str
    cells: int
    mechanism: str
    scale: float
    loss: float
    noise_std: float
    error95: int
    expected_cell_count: float
    relative_error_cell: float
    relative_error_total: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def noise_distribution(mechanism: Mechanism, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Support and pmf of the discrete Gaussian/Laplace at ``scale`` (exact formula, truncated
    where the tail mass is below 1e-15)."""
    width = math.ceil(40.0 * scale) + 10
    k = np.arange(-width, width + 1, dtype=np.float64)
    if mechanism == "gaussian":
        logp = -(k**2) / (2.0 * scale**2)
    else:
        logp = -np.abs(k) / scale
    p = np.exp(logp - logp.max())
    return k, p / p.sum()


def _summary(mechanism: Mechanism, scale: float) -> tuple[float, int, float]:
    if scale > 500:  # the discrete law equals the continuous one to < 1e-6 relative here
        if mechanism == "gaussian":
            return scale, math.ceil(1.959963984540054 * scale), scale * math.sqrt(2 / math.pi)
        return math.sqrt(2.0) * scale, math.ceil(math.log(20.0) * scale), scale
    k, p = noise_distribution(mechanism, scale)
    std = float(math.sqrt(np.sum(p * k**2)))
    mass_within = np.cumsum(p[k >= 0] * np.where(k[k >= 0] == 0, 1.0, 2.0))
    error95 = int(np.searchsorted(mass_within, 0.95))
    return std, error95, float(np.sum(p * np.abs(k)))


def preview(plan: Sequence[QueryPlan], *, n_customers: int, rho: float | None = None,
            epsilon: float | None = None, mechanism: Mechanism = "gaussian",
            delta: float = 1e-8, weights: Sequence[float] | None = None,
            ) -> list[NoisePreview]:
    """Per query: noise std, 95 % error and relative errors. Spends nothing."""
    if isinstance(n_customers, bool) or not isinstance(n_customers, int) or n_customers < 1:
        raise ValueError(f"n_customers: must be a positive integer (got {n_customers!r})")
    if (rho is None) == (epsilon is None):
        raise ValueError("give exactly one of rho or epsilon")
    if mechanism == "gaussian" and rho is None:
        assert epsilon is not None
        rho = zcdp_rho_for_epsilon(epsilon, validate_delta(delta, allow_zero=False))
    total = float(rho if mechanism == "gaussian" else epsilon)  # type: ignore[arg-type]
    w = [1.0] * len(plan) if weights is None else [float(x) for x in weights]
    if len(w) != len(plan) or any(not math.isfinite(x) or x <= 0 for x in w):
        raise ValueError(f"weights: need {len(plan)} finite positive weights")
    out = []
    for q, wi in zip(plan, w, strict=True):
        mech = IntegerMechanism.for_loss(mechanism, total * wi / math.fsum(w),
                                         sensitivity=q.sensitivity, size=q.cells)
        std, err95, mean_abs = _summary(mechanism, mech.scale)
        per_cell = n_customers / q.cells
        out.append(NoisePreview(
            name=q.name, cells=q.cells, mechanism=mechanism, scale=mech.scale, loss=mech.loss,
            noise_std=std, error95=err95, expected_cell_count=per_cell,
            relative_error_cell=mean_abs / per_cell,
            relative_error_total=std * math.sqrt(q.cells) / n_customers))
    return out
