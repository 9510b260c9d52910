"""What crosses the boundary, as values: owner descriptions, round requests, model updates.

Light on purpose (no torch, no raw data): the Flower handlers, the hub and the CLI import it.
:func:`describe_owner` computes an owner's public description from its folder without
loading transactions: merchant metadata, a count of consenting customers reduced to a coarse
public size bucket, and the ledger's pseudonym and period.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from federation.settings import RoundSettings
from privacy.budget import PrivacyBudget
from retail.merchant import read_merchant_info

__all__ = ["SIZE_BUCKETS", "ModelUpdate", "OwnerDescription", "TrainingRequest",
           "describe_owner", "size_bucket"]

# Public size buckets (customers) and each one's size weight (≈ proportional to customers);
# RoundSettings.weighting turns it into the owner's FedAvg weight (settings.averaging_weight).
SIZE_BUCKETS: tuple[tuple[str, int, float], ...] = (
    ("xs", 0, 1.0), ("s", 1_000, 2.0), ("m", 5_000, 4.0), ("l", 20_000, 8.0),
    ("xl", 100_000, 16.0),
)


def size_bucket(n_customers: int) -> str:
    """The public bucket for a customer count (coarse, fixed edges)."""
    name = SIZE_BUCKETS[0][0]
    for bucket, lower, _ in SIZE_BUCKETS:
        if n_customers >= lower:
            name = bucket
    return name


@dataclass(frozen=True, kw_only=True)
class OwnerDescription:
    """What an owner says about itself. Public metadata only."""

    pseudonym: str
    merchant_type: str
    regions: tuple[str, ...]
    size_bucket: str
    period: str

    @property
    def averaging_weight(self) -> float:
        """The bucket's public size weight; ``RoundSettings.weighting`` maps it for FedAvg."""
        return next(w for name, _, w in SIZE_BUCKETS if name == self.size_bucket)


@dataclass(frozen=True, kw_only=True)
class TrainingRequest:
    """The hub's request for one round: the global weights and the run's public settings."""

    run_id: str
    round_no: int
    weights: dict[str, np.ndarray]
    settings: RoundSettings

    def __post_init__(self) -> None:
        if self.round_no < 1 or self.round_no > self.settings.rounds:
            raise ValueError(f"TrainingRequest.round_no: {self.round_no} outside "
                             f"1..{self.settings.rounds}")


@dataclass(frozen=True, kw_only=True)
class ModelUpdate:
    """What a training round returns: DP weights (or a refusal) plus public accounting."""

    owner: str  # pseudonym
    run_id: str
    round_no: int
    took_part: bool
    weights: dict[str, np.ndarray] | None = field(default=None, repr=False)
    round_epsilon: float = 0.0
    spent_epsilon: float = 0.0
    digest: str = ""
    reason: str = ""

    def __post_init__(self) -> None:
        if self.took_part != (self.weights is not None):
            raise ValueError("ModelUpdate.weights: present exactly when took_part is true")


def describe_owner(folder: str | Path, budget: PrivacyBudget) -> OwnerDescription:
    """The owner's public description (reads ``merchant.json`` and counts consents only)."""
    info = read_merchant_info(folder)
    n = (pl.scan_parquet(Path(folder) / "customers.parquet")
         .filter(pl.col("consent_analytics")).select(pl.len()).collect().item())
    return OwnerDescription(pseudonym=budget.ledger.pseudonym, merchant_type=info.merchant_type,
                            regions=info.regions, size_bucket=size_bucket(int(n)),
                            period=budget.ledger.head().period)
