"""The privacy unit and contribution bounding: what makes a declared sensitivity true.

Privacy unit: **one customer of one owner** (all of that customer's rows). Neighbouring data
sets differ by adding or removing one customer. Each aggregate below returns its pre-noise
integer vector *with* the sensitivity that removing one customer can cause:

=====================  ===========================================  =====================
aggregate              bounding                                     sensitivity (L1 = L2)
=====================  ===========================================  =====================
``histogram``          one feature row per customer (checked)       1
``clamped_sum_cents``  per-customer total in cents clamped to       max(|lower|, |upper|)
                       [lower, upper]
``capped_row_count``   at most ``max_rows`` rows per customer       max_rows
=====================  ===========================================  =====================

Amounts are integer cents; every step that could leave int64 is checked first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

__all__ = [
    "CUSTOMER",
    "BoundedAggregate",
    "PrivacyUnit",
    "cap_rows_per_customer",
    "capped_row_count",
    "clamped_sum_cents",
    "histogram",
    "marginal_histogram",
    "require_one_row_per_customer",
    "to_cents",
]

_INT64_MAX: Final = int(np.iinfo(np.int64).max)
# Float magnitude below which an int64 sum is certainly exact (float error ≪ 2**61 margin).
_SAFE_FLOAT: Final = float(2**62)


@dataclass(frozen=True, kw_only=True)
class PrivacyUnit:
    """Who is protected: neighbouring data sets differ by all rows of one ``unit``."""

    unit: str
    scope: str
    description: str

    def __post_init__(self) -> None:
        for name in ("unit", "scope", "description"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name}: must be a non-empty string (got {value!r})")

    def label(self) -> str:
        return f"{self.unit}@{self.scope}"


CUSTOMER: Final = PrivacyUnit(
    unit="customer", scope="owner",
    description="one customer of one data owner: all of that customer's rows (add/remove)")


@dataclass(frozen=True, kw_only=True)
class BoundedAggregate:
    """A pre-noise int64 vector and the L1/L2 change one customer can cause."""

    counts: np.ndarray
    sensitivity_l1: int
    sensitivity_l2: int

    def __post_init__(self) -> None:
        if not isinstance(self.counts, np.ndarray) or self.counts.dtype != np.int64 \
                or self.counts.ndim != 1:
            raise ValueError(f"counts: must be a 1-D int64 numpy array (got {self.counts!r})")
        for name in ("sensitivity_l1", "sensitivity_l2"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: must be a positive integer (got {value!r})")


def _ids(customer_ids: np.ndarray) -> np.ndarray:
    arr = np.asarray(customer_ids)
    if arr.ndim != 1:
        raise ValueError(f"customer_ids: must be 1-D (got shape {arr.shape})")
    return arr


def to_cents(amounts: np.ndarray, *, name: str = "amount") -> np.ndarray:
    """Currency amounts → int64 cents (rounded half away from zero), refusing NaN/inf/overflow."""
    arr = np.asarray(amounts, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name}: row {i} is {arr[i]!r}; amounts must be finite")
    cents = np.round(arr * 100.0)
    too_big = np.abs(cents) >= _SAFE_FLOAT
    if too_big.any():
        i = int(np.flatnonzero(too_big)[0])
        raise OverflowError(f"{name}: row {i} = {arr[i]!r} does not fit int64 cents")
    return cents.astype(np.int64)


def require_one_row_per_customer(customer_ids: np.ndarray) -> None:
    """Raise ``ValueError`` naming a repeated customer (the histogram's sensitivity needs it)."""
    ids = _ids(customer_ids)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        dup = uniq[np.flatnonzero(counts > 1)[0]]
        raise ValueError(f"customer_ids: customer {dup!r} has more than one feature row; "
                         "build one row per customer before measuring")


def histogram(codes: np.ndarray, n_levels: int, *,
              customer_ids: np.ndarray | None = None) -> BoundedAggregate:
    """Counts of ``codes`` in ``0..n_levels-1``; one row per customer ⇒ sensitivity 1."""
    arr = np.asarray(codes)
    if customer_ids is not None:
        if len(_ids(customer_ids)) != len(arr):
            raise ValueError("customer_ids: length differs from codes")
        require_one_row_per_customer(customer_ids)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ValueError(f"codes: must be a 1-D integer array (got {arr.dtype}, {arr.shape})")
    if arr.size and (arr.min() < 0 or arr.max() >= n_levels):
        i = int(np.flatnonzero((arr < 0) | (arr >= n_levels))[0])
        raise ValueError(f"codes: row {i} = {arr[i]} is outside the public levels 0..{n_levels-1}")
    counts = np.bincount(arr.astype(np.int64), minlength=n_levels).astype(np.int64)
    return BoundedAggregate(counts=counts, sensitivity_l1=1, sensitivity_l2=1)


def marginal_histogram(columns: list[np.ndarray], sizes: list[int], *,
                       customer_ids: np.ndarray | None = None) -> BoundedAggregate:
    """Joint counts over several coded columns (C order of ``sizes``); sensitivity 1."""
    if len(columns) != len(sizes) or not columns:
        raise ValueError("columns/sizes: need one size per column, at least one column")
    for j, (col, size) in enumerate(zip(columns, sizes, strict=True)):
        c = np.asarray(col)
        if c.size and (c.min() < 0 or c.max() >= size):
            raise ValueError(f"columns[{j}]: codes outside 0..{size - 1}")
    flat = np.ravel_multi_index([np.asarray(c, dtype=np.int64) for c in columns], sizes)
    return histogram(np.asarray(flat, dtype=np.int64), math.prod(sizes),
                     customer_ids=customer_ids)


def _clamped_group_sums(customer_ids: np.ndarray, cents: np.ndarray, lower: int,
                        upper: int) -> np.ndarray:
    """Per-customer int64 totals clamped to [lower, upper], exact even for huge totals.

    int64 addition wraps modulo 2**64, so a segment sum is exact whenever the true total
    fits. A float sum tells which totals might not: those are ≥ 2**62 in magnitude (the float
    error is far smaller), so their sign is certain and they clamp to the bound on that side.
    """
    if cents.size == 0:
        return np.zeros(0, dtype=np.int64)
    _, inverse = np.unique(_ids(customer_ids), return_inverse=True)
    approx = np.bincount(inverse, weights=cents.astype(np.float64))
    order = np.argsort(inverse, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(inverse[order]) != 0])
    totals = np.clip(np.add.reduceat(cents[order], starts), lower, upper)
    huge = np.abs(approx) >= _SAFE_FLOAT
    totals[huge] = np.where(approx[huge] > 0, upper, lower)
    return totals


def clamped_sum_cents(customer_ids: np.ndarray, cents: np.ndarray, *, lower: int,
                      upper: int) -> BoundedAggregate:
    """Σ over customers of (their total cents clamped to [lower, upper]).

    Removing a customer removes one clamped total, so sensitivity = max(|lower|, |upper|).
    """
    if not (isinstance(lower, int) and isinstance(upper, int)) or lower > upper:
        raise ValueError(f"lower/upper: integer cents with lower ≤ upper (got {lower}, {upper})")
    bound = max(abs(lower), abs(upper))
    if bound == 0 or bound > _INT64_MAX:
        raise ValueError(f"lower/upper: max(|lower|, |upper|) must be in 1..2**63-1 (got {bound})")
    arr = np.asarray(cents)
    if arr.dtype != np.int64 or len(arr) != len(_ids(customer_ids)):
        raise ValueError("cents: must be int64 (use to_cents) with one value per row")
    totals = _clamped_group_sums(customer_ids, arr, lower, upper)
    if len(totals) * bound > _INT64_MAX:
        raise OverflowError(f"clamped_sum_cents: {len(totals)} customers × {bound} cents "
                            "could overflow int64; lower the clamp bound")
    total = int(totals.sum())
    return BoundedAggregate(counts=np.array([total], dtype=np.int64),
                            sensitivity_l1=bound, sensitivity_l2=bound)


def cap_rows_per_customer(customer_ids: np.ndarray, max_rows: int) -> np.ndarray:
    """Boolean mask keeping each customer's first ``max_rows`` rows (in the given order)."""
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows: must be a positive integer (got {max_rows!r})")
    ids = _ids(customer_ids)
    if ids.size == 0:
        return np.zeros(0, dtype=bool)
    _, inverse = np.unique(ids, return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    sorted_inv = inverse[order]
    starts = np.flatnonzero(np.r_[True, np.diff(sorted_inv) != 0])
    run_start = np.repeat(starts, np.diff(np.r_[starts, ids.size]))
    rank = np.arange(ids.size) - run_start
    keep = np.empty(ids.size, dtype=bool)
    keep[order] = rank < max_rows
    return keep


def capped_row_count(customer_ids: np.ndarray, max_rows: int) -> BoundedAggregate:
    """Number of rows after capping each customer at ``max_rows``: sensitivity ``max_rows``."""
    kept = int(cap_rows_per_customer(customer_ids, max_rows).sum())
    return BoundedAggregate(counts=np.array([kept], dtype=np.int64),
                            sensitivity_l1=max_rows, sensitivity_l2=max_rows)
