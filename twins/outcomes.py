"""Owner side: past campaign outcomes by kind of customer, as pre-noise tables.

For each campaign the owner counts exposures in cells of (arm x redeemed x chosen
attributes) and sums clamped spend in integer cents per cell. The release carries DP
versions of these, so the hub learns response by kind of customer and offer.

Sensitivity (privacy unit: one customer). Contribution bounding keeps ONE exposure row per
customer per campaign (the first in file order) and clamps spend to ``[0, clamp]``; adding
or removing a customer then changes one campaign's count table by 1 in one cell (L1 = L2 = 1)
and its spend table by at most ``clamp_cents`` in one cell (L1 = L2 = clamp_cents). A
customer exposed to several campaigns touches each campaign's tables once: releases of
different campaigns compose.
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

__all__ = ["DEFAULT_RESPONSE_ATTRIBUTES", "OutcomeTable", "campaign_outcomes"]

# Attributes that drive response in the behaviour model: how often, how price-sensitive.
DEFAULT_RESPONSE_ATTRIBUTES: tuple[str, ...] = ("frequency", "promo_share", "tier")


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

    def __post_init__(self) -> None:
        size = int(np.prod(self.shape))
        for name in ("counts", "spend_cents"):
            arr = getattr(self, name)
            if arr.shape != (size,) or arr.dtype != np.int64:
                raise ValueError(f"OutcomeTable.{name} of {self.campaign_id!r}: need int64 "
                                 f"shape {(size,)}, got {arr.dtype} {arr.shape}")
        if self.clamp_cents <= 0:
            raise ValueError(f"OutcomeTable.clamp_cents: must be > 0, got {self.clamp_cents}")

    @property
    def sensitivity(self) -> dict[str, dict[str, int]]:
        """Declared sensitivities under add/remove one customer (see module docstring)."""
        return {"counts": {"l1": 1, "l2": 1},
                "spend_cents": {"l1": self.clamp_cents, "l2": self.clamp_cents}}


def _cells(attributes: Sequence[str], domain: Domain) -> pl.Expr:
    arm = pl.col("arm").cast(pl.String).cast(pl.Enum(list(ARMS))).to_physical()
    cell = arm.cast(pl.Int64) * 2 + pl.col("redeemed").cast(pl.Int64)
    for name in attributes:
        cell = cell * domain[name].cardinality + pl.col(name).cast(pl.Int64)
    return cell.alias("cell")


def campaign_outcomes(merchant_tables: Any, feature_table: pl.DataFrame, *,
                      attributes: Sequence[str] = DEFAULT_RESPONSE_ATTRIBUTES,
                      spend_clamp_sek: float = 5_000.0, domain: Domain = SCHEMA
                      ) -> dict[str, OutcomeTable]:
    """Per campaign: exposure counts and clamped spend (cents) per (arm, redeemed, attributes).

    Only customers in ``feature_table`` (the consenting ones) are counted. Every campaign of
    the merchant's campaign list gets a table, also one without exposures (all zeros).
    """
    if not spend_clamp_sek > 0:
        raise ValueError(f"spend_clamp_sek: must be > 0, got {spend_clamp_sek}")
    for name in attributes:
        if name not in feature_table.columns:
            raise ValueError(f"feature_table: missing attribute column {name!r}")
    clamp_cents = round(spend_clamp_sek * 100)
    shape = (len(ARMS), 2, *(domain[n].cardinality for n in attributes))
    cells = (
        tables_of(merchant_tables, "exposures")
        .unique(subset=["campaign_id", "customer_id"], keep="first", maintain_order=True)
        .join(feature_table.lazy().select("customer_id", *attributes), on="customer_id",
              how="inner")
        .with_columns(_cells(attributes, domain),
                      (pl.col("spend").fill_null(0.0).clip(0.0, spend_clamp_sek) * 100)
                      .round().cast(pl.Int64).alias("cents"))
        .group_by("campaign_id", "cell")
        .agg(pl.len().cast(pl.Int64).alias("n"), pl.col("cents").sum())
        .collect()
    )
    ids = tables_of(merchant_tables, "campaigns").select("campaign_id").collect()
    out: dict[str, OutcomeTable] = {}
    size = int(np.prod(shape))
    for cid in ids["campaign_id"].to_list():
        part = cells.filter(pl.col("campaign_id") == cid)
        counts = np.zeros(size, dtype=np.int64)
        cents = np.zeros(size, dtype=np.int64)
        idx = part["cell"].to_numpy()
        counts[idx] = part["n"].to_numpy()
        cents[idx] = part["cents"].to_numpy()
        out[cid] = OutcomeTable(campaign_id=cid, attributes=tuple(attributes), shape=shape,
                                counts=counts, spend_cents=cents, clamp_cents=clamp_cents)
    return out
