"""Owner side: past campaign outcomes by kind of customer, as pre-noise tables.

For each campaign the owner counts exposures in cells of (arm x redeemed x chosen
attributes) and sums, per cell, clamped window spend and clamped discount cost (what the
offer gave away) in integer cents. The release carries DP versions of (marginals of) these,
so the hub learns response by kind of customer and offer, and what takers cost.

Sensitivity (privacy unit: one customer). Contribution bounding keeps ONE exposure row per
customer per campaign (the first in file order) and clamps spend to ``[0, clamp]`` and
discount cost to ``[0, cost_clamp]``; adding or removing a customer then changes one
campaign's count table by 1 in one cell (L1 = L2 = 1), its spend table by at most
``clamp_cents`` and its cost table by at most ``cost_clamp_cents``, each in one cell. Any
marginal of a table (summing cells) keeps these sensitivities. A customer exposed to several
campaigns touches each campaign's tables once: releases of different campaigns compose.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from retail.schema import ARMS
from twins.features import tables_of
from twins.schema import SCHEMA, Domain

__all__ = [
    "DEFAULT_RESPONSE_ATTRIBUTES",
    "SPEND_CLAMP_BY_TYPE",
    "SPEND_CLAMP_SEK",
    "OutcomeTable",
    "campaign_outcomes",
    "spend_clamp",
]

# Attributes that drive response in the behaviour model: how often, how price-sensitive.
DEFAULT_RESPONSE_ATTRIBUTES: tuple[str, ...] = ("frequency", "promo_share", "tier")
SPEND_CLAMP_SEK = 5_000.0  # default clamp of a customer's window spend in released sums
# per merchant type (public constants near the top percentile of a month's spend at that
# kind of shop: a lower clamp means less noise for the same privacy loss)
SPEND_CLAMP_BY_TYPE: dict[str, float] = {"grocery": 2_500.0, "organic_deli": 2_000.0,
                                         "pet_shop": 2_500.0, "cafe": 1_200.0,
                                         "apparel": 5_000.0, "car_brand": 10_000.0,
                                         "music": 1_000.0}


def spend_clamp(merchant_type: str) -> float:
    """The clamp (SEK) of one customer's campaign-window spend at this merchant type."""
    return SPEND_CLAMP_BY_TYPE.get(merchant_type, SPEND_CLAMP_SEK)


@dataclass(frozen=True, kw_only=True)
class OutcomeTable:
    """Pre-noise outcome tables of one campaign, flattened in C order over ``shape``
    = (arm, redeemed, *attribute cardinalities)."""

    campaign_id: str
    attributes: tuple[str, ...]
    shape: tuple[int, ...]
    counts: np.ndarray
    spend_cents: np.ndarray
    clamp_cents: int
    cost_cents: np.ndarray | None = None
    cost_clamp_cents: int = 0

    def __post_init__(self) -> None:
        size = int(np.prod(self.shape))
        for name in ("counts", "spend_cents", "cost_cents"):
            arr = getattr(self, name)
            if arr is None and name == "cost_cents":
                continue
            if arr.shape != (size,) or arr.dtype != np.int64:
                raise ValueError(f"OutcomeTable.{name} of {self.campaign_id!r}: need int64 "
                                 f"shape {(size,)}, got {arr.dtype} {arr.shape}")
        if self.clamp_cents <= 0:
            raise ValueError(f"OutcomeTable.clamp_cents: must be > 0, got {self.clamp_cents}")
        if self.cost_cents is not None and self.cost_clamp_cents <= 0:
            raise ValueError("OutcomeTable.cost_clamp_cents: must be > 0 with cost_cents, got "
                             f"{self.cost_clamp_cents}")

    @property
    def sensitivity(self) -> dict[str, dict[str, int]]:
        """Declared sensitivities under add/remove one customer (see module docstring)."""
        return {"counts": {"l1": 1, "l2": 1},
                "spend_cents": {"l1": self.clamp_cents, "l2": self.clamp_cents},
                "cost_cents": {"l1": self.cost_clamp_cents, "l2": self.cost_clamp_cents}}

    def arm_difference(self, values: np.ndarray) -> np.ndarray:
        """One cell: the treated arm's total of ``values`` minus the control arm's. A
        customer is in one arm, so it moves the cell by at most what it moves one cell of
        ``values`` (the sensitivity of ``values``)."""
        per_arm = values.reshape(self.shape[0], -1).sum(axis=1)
        return np.array([per_arm[0] - per_arm[1]], dtype=np.int64)

    def marginal(self, values: np.ndarray, keep: Sequence[str]) -> tuple[tuple[str, ...],
                                                                         np.ndarray]:
        """``values`` (a flattened table of this shape) summed over every axis not in
        ``keep`` (``arm`` and ``redeemed`` name the first two axes); sensitivity unchanged."""
        names = ("arm", "redeemed", *self.attributes)
        unknown = sorted(set(keep) - set(names))
        if unknown:
            raise ValueError(f"OutcomeTable.marginal: unknown axes {unknown}; known {names}")
        drop = tuple(i for i, n in enumerate(names) if n not in keep)
        out = values.reshape(self.shape).sum(axis=drop)
        kept = tuple(n for n in names if n in keep)
        return kept, np.ascontiguousarray(out, dtype=np.int64).reshape(-1)


def _cells(attributes: Sequence[str], domain: Domain) -> pl.Expr:
    arm = pl.col("arm").cast(pl.String).cast(pl.Enum(list(ARMS))).to_physical()
    cell = arm.cast(pl.Int64) * 2 + pl.col("redeemed").cast(pl.Int64)
    for name in attributes:
        cell = cell * domain[name].cardinality + pl.col(name).cast(pl.Int64)
    return cell.alias("cell")


def campaign_outcomes(merchant_tables: Any, feature_table: pl.DataFrame, *,
                      attributes: Sequence[str] = DEFAULT_RESPONSE_ATTRIBUTES,
                      spend_clamp_sek: float = SPEND_CLAMP_SEK, cost_clamp_sek: float = 1_500.0,
                      domain: Domain = SCHEMA) -> dict[str, OutcomeTable]:
    """Per campaign: exposure counts, clamped spend and clamped discount cost (cents) per
    (arm, redeemed, attributes).

    Only customers in ``feature_table`` (the consenting ones) are counted. Every campaign of
    the merchant's campaign list gets a table, also one without exposures (all zeros).
    """
    if not spend_clamp_sek > 0:
        raise ValueError(f"spend_clamp_sek: must be > 0, got {spend_clamp_sek}")
    for name in attributes:
        if name not in feature_table.columns:
            raise ValueError(f"feature_table: missing attribute column {name!r}")
    if not cost_clamp_sek > 0:
        raise ValueError(f"cost_clamp_sek: must be > 0, got {cost_clamp_sek}")
    clamp_cents = round(spend_clamp_sek * 100)
    cost_clamp = round(cost_clamp_sek * 100)
    shape = (len(ARMS), 2, *(domain[n].cardinality for n in attributes))
    cells = (
        tables_of(merchant_tables, "exposures")
        .unique(subset=["campaign_id", "customer_id"], keep="first", maintain_order=True)
        .join(feature_table.lazy().select("customer_id", *attributes), on="customer_id",
              how="inner")
        .with_columns(_cells(attributes, domain),
                      (pl.col("spend").fill_null(0.0).clip(0.0, spend_clamp_sek) * 100)
                      .round().cast(pl.Int64).alias("cents"),
                      (pl.col("discount_cost").fill_null(0.0).clip(0.0, cost_clamp_sek) * 100)
                      .round().cast(pl.Int64).alias("cost"))
        .group_by("campaign_id", "cell")
        .agg(pl.len().cast(pl.Int64).alias("n"), pl.col("cents").sum(), pl.col("cost").sum())
        .collect()
    )
    ids = tables_of(merchant_tables, "campaigns").select("campaign_id").collect()
    out: dict[str, OutcomeTable] = {}
    size = int(np.prod(shape))
    for cid in ids["campaign_id"].to_list():
        part = cells.filter(pl.col("campaign_id") == cid)
        counts = np.zeros(size, dtype=np.int64)
        cents = np.zeros(size, dtype=np.int64)
        cost = np.zeros(size, dtype=np.int64)
        idx = part["cell"].to_numpy()
        counts[idx] = part["n"].to_numpy()
        cents[idx] = part["cents"].to_numpy()
        cost[idx] = part["cost"].to_numpy()
        out[cid] = OutcomeTable(campaign_id=cid, attributes=tuple(attributes), shape=shape,
                                counts=counts, spend_cents=cents, clamp_cents=clamp_cents,
                                cost_cents=cost, cost_clamp_cents=cost_clamp)
    return out
