"""The measurement workload: which marginals an owner releases, and their pre-noise counts.

Sensitivity (privacy unit: one customer of one owner). The feature table holds exactly one
row per consenting customer, so adding or removing a customer changes each marginal's count
vector by 1 in exactly one cell: L1 = L2 = 1 per marginal. A workload of marginals with
zCDP budgets ``rho_i`` composes to ``sum(rho_i)``; the Gaussian scale for marginal ``i`` is
``sigma_i = 1 / sqrt(2 * rho_i)`` (noise itself is drawn by the privacy package).

Budget split. Each marginal's weight is its share of ρ. 2-way marginals carry the
correlations the synthesiser needs and imply every 1-way marginal, so the default gives
them most of the budget (see ``benchmarks/fidelity_method.py`` for the measured trade-off).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import polars as pl

from twins.schema import SCHEMA, Domain

__all__ = [
    "MARGINAL_SENSITIVITY",
    "Measurement",
    "Workload",
    "default_workload",
    "marginal_counts",
    "workload_counts",
]

# Per-marginal sensitivity of a count vector under add/remove-one-customer.
MARGINAL_SENSITIVITY: dict[str, int] = {"l1": 1, "l2": 1}


@dataclass(frozen=True, kw_only=True)
class Workload:
    """Marginals (cliques of attribute names) to measure, with their share of the budget."""

    cliques: tuple[tuple[str, ...], ...]
    weights: tuple[float, ...]
    constants: Mapping[str, int]

    def __post_init__(self) -> None:
        if not self.cliques:
            raise ValueError("Workload.cliques: empty")
        if len(self.weights) != len(self.cliques):
            raise ValueError(f"Workload.weights: {len(self.weights)} weights for "
                             f"{len(self.cliques)} cliques")
        if any(not (w > 0) for w in self.weights):
            raise ValueError(f"Workload.weights: must be positive, got {self.weights}")
        for c in self.cliques:
            if len(set(c)) != len(c) or not c:
                raise ValueError(f"Workload.cliques: bad clique {c!r}")
            fixed = set(c) & set(self.constants)
            if fixed:
                raise ValueError(f"Workload.cliques: {c!r} measures public constants {fixed}")

    def rho_split(self, rho: float) -> tuple[float, ...]:
        """Each marginal's zCDP share of a total ``rho`` (they sum to ``rho``)."""
        if not (rho > 0):
            raise ValueError(f"rho: must be positive, got {rho}")
        total = sum(self.weights)
        return tuple(rho * w / total for w in self.weights)


@dataclass(frozen=True, kw_only=True)
class Measurement:
    """One noisy marginal as released: flattened C-order counts over ``clique`` and the
    variance of the noise added to each cell."""

    clique: tuple[str, ...]
    values: np.ndarray
    variance: float

    def __post_init__(self) -> None:
        if not (self.variance >= 0):
            raise ValueError(f"Measurement.variance: must be >= 0, got {self.variance}")
        if np.asarray(self.values).ndim != 1:
            raise ValueError(f"Measurement.values of {self.clique}: must be a flat vector")


def default_workload(domain: Domain = SCHEMA, *, constants: Mapping[str, int] | None = None,
                     pairs: Sequence[tuple[str, str]] | str = "all",
                     one_way_weight: float = 0.25) -> Workload:
    """All 1-way marginals plus the given 2-way marginals (default: all pairs).

    Attributes in ``constants`` (public structural constants of the merchant type) are not
    measured. A 2-way marginal has weight 1; a 1-way marginal ``one_way_weight``.
    """
    constants = dict(constants or {})
    free = [n for n in domain.names if n not in constants]
    if pairs == "all":
        chosen = list(itertools.combinations(free, 2))
    else:
        chosen = [tuple(p) for p in pairs]  # type: ignore[misc]
    ones = [(n,) for n in free] if one_way_weight > 0 else []
    cliques = tuple(ones) + tuple(chosen)  # type: ignore[arg-type]
    weights = (one_way_weight,) * len(ones) + (1.0,) * len(chosen)
    return Workload(cliques=cliques, weights=weights, constants=constants)


def marginal_counts(table: pl.DataFrame, domain: Domain, clique: Sequence[str]) -> np.ndarray:
    """Pre-noise integer counts of one marginal, flattened in C order (first name slowest)."""
    shape = [domain[n].cardinality for n in clique]
    idx = np.zeros(table.height, dtype=np.int64)
    for name, card in zip(clique, shape, strict=True):
        col = table[name].to_numpy().astype(np.int64)
        if col.size and (col.min() < 0 or col.max() >= card):
            raise ValueError(f"feature table column {name!r}: code outside 0..{card - 1}")
        idx = idx * card + col
    return np.bincount(idx, minlength=int(np.prod(shape))).astype(np.int64)


def workload_counts(table: pl.DataFrame, domain: Domain, workload: Workload) -> list[np.ndarray]:
    """Pre-noise count vectors for every marginal of the workload (sensitivity: L2 = 1 each)."""
    return [marginal_counts(table, domain, c) for c in workload.cliques]
