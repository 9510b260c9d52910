"""Owner-side training data: consenting customers' features joined to their campaign logs.

Runs only inside a :class:`~federation.node.DataOwner`. Each logged exposure (a customer in
a randomised campaign, treatment or control) becomes a design row (customer attributes ×
offer features) with its arm, redemption and scaled spend. Customers are split into train and
held-out by a fixed public hash of their id, so every run holds out the same customers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from federation.encoding import FEATURE_DIM, design_matrix, pair_terms, scale_spend
from federation.training import Examples
from retail.load import load_merchant
from retail.merchant import Merchant, MerchantInfo
from retail.offers import Offer
from retail.schema import MERCHANT_TYPES

__all__ = [
    "HOLDOUT_SALT",
    "ExamplePool",
    "OwnerData",
    "customer_codes",
    "is_holdout",
    "load_owner_data",
    "spend_profile",
]

HOLDOUT_SALT = "twinsim/federation/holdout/v1"
HOLDOUT_FRACTION = 0.2
FEATURE_WINDOW_DAYS = 365  # the twins' feature window (twins.features default)


def is_holdout(customer_ids: pl.Series, fraction: float = HOLDOUT_FRACTION) -> np.ndarray:
    """Public deterministic split: sha256(salt + id) below ``fraction`` of the hash space."""
    cut = int(fraction * 2**32)
    return np.fromiter(
        (int.from_bytes(hashlib.sha256(f"{HOLDOUT_SALT}/{c}".encode()).digest()[:4], "big")
         < cut for c in customer_ids), dtype=bool, count=len(customer_ids))


def customer_codes(merchant: Merchant) -> pl.DataFrame:
    """``customer_id`` plus every twin attribute code, one row per consenting customer."""
    from twins.features import features  # owner-side feature builder

    return features(merchant, merchant.info.merchant_type, merchant.info.period_end)


def spend_profile(merchant: Merchant, customer_ids: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """Per customer (in ``customer_ids`` order): category spend shares and monthly spend."""
    cats = MERCHANT_TYPES[merchant.info.merchant_type].categories
    end = merchant.info.period_end
    start = end - dt.timedelta(days=FEATURE_WINDOW_DAYS - 1)
    tx = merchant.transactions.filter(pl.col("timestamp").dt.date().is_between(start, end))
    wide = (tx.group_by("customer_id", pl.col("category").cast(pl.String))
            .agg(pl.col("amount").sum())
            .pivot(on="category", index="customer_id", values="amount"))
    frame = pl.DataFrame({"customer_id": customer_ids}).join(wide, on="customer_id", how="left")
    amounts = np.column_stack([frame[c].fill_null(0.0).to_numpy() if c in frame.columns
                               else np.zeros(frame.height) for c in cats]).astype(np.float64)
    total = amounts.sum(axis=1)
    shares = amounts / np.maximum(total, 1e-9)[:, None]
    return shares, total / (FEATURE_WINDOW_DAYS / 30.0)


@dataclass(frozen=True, kw_only=True)
class ExamplePool:
    """All exposures of a set of customers, sorted by customer, with group boundaries."""

    x: np.ndarray
    treated: np.ndarray
    redeemed: np.ndarray
    spend: np.ndarray
    starts: np.ndarray
    counts: np.ndarray

    @property
    def n_customers(self) -> int:
        return len(self.starts)

    def one_per_customer(self, rng: np.random.Generator) -> Examples:
        """One exposure per customer, uniformly: the round's examples (customer-level DP)."""
        pick = self.starts + np.floor(rng.random(len(self.starts)) * self.counts).astype(np.int64)
        return Examples(x=self.x[pick], treated=self.treated[pick],
                        redeemed=self.redeemed[pick], spend=self.spend[pick])

    def all_rows(self) -> Examples:
        return Examples(x=self.x, treated=self.treated, redeemed=self.redeemed, spend=self.spend)


@dataclass(frozen=True, kw_only=True)
class OwnerData:
    info: MerchantInfo
    n_customers: int  # consenting customers with features
    train: ExamplePool
    holdout: ExamplePool
    holdout_ids: pl.Series  # customer id per holdout row (stays at the owner)
    holdout_campaigns: pl.Series  # campaign id per holdout row
    holdout_codes: pl.DataFrame  # attribute codes of every held-out consenting customer
    holdout_profile: tuple[np.ndarray, np.ndarray]  # their spend shares and monthly spend
    mean_price: float

    def holdout_design(self, offer: Offer) -> np.ndarray:
        """Design rows of every held-out customer (``holdout_codes`` order) for ``offer``."""
        mt = self.info.merchant_type
        shares, monthly = self.holdout_profile
        terms = pair_terms(offer, mt, region=self.holdout_codes["region"].to_numpy(),
                           category_share=shares, monthly_spend=monthly,
                           mean_price=self.mean_price)
        return design_matrix(self.holdout_codes, kind=offer.kind, days=offer.days,
                             merchant_type=mt, terms=terms)


def _offers(merchant: Merchant) -> dict[str, Offer]:
    mt = merchant.info.merchant_type
    return {cid: Offer.from_json(text, merchant_type=mt)
            for cid, text in merchant.campaigns.select("campaign_id", "offer").iter_rows()}


def _design(rows: pl.DataFrame, codes: pl.DataFrame, offers: dict[str, Offer],
            merchant: Merchant, mean_price: float) -> np.ndarray:
    mt = merchant.info.merchant_type
    joined = rows.join(codes, on="customer_id", how="left", maintain_order="left")
    shares, monthly = spend_profile(merchant, rows["customer_id"])
    x = np.empty((rows.height, FEATURE_DIM), dtype=np.float32)
    camp = rows["campaign_id"].to_numpy()
    for cid in np.unique(camp):
        idx = np.flatnonzero(camp == cid)
        part = joined[idx]
        offer = offers[str(cid)]
        terms = pair_terms(offer, mt, region=part["region"].to_numpy(),
                           category_share=shares[idx], monthly_spend=monthly[idx],
                           mean_price=mean_price)
        x[idx] = design_matrix(part, kind=offer.kind, days=offer.days, merchant_type=mt,
                               terms=terms)
    return x


def _pool(rows: pl.DataFrame, codes: pl.DataFrame, offers: dict[str, Offer],
          merchant: Merchant, mean_price: float) -> ExamplePool:
    rows = rows.sort("customer_id", "campaign_id")
    ids = rows["customer_id"].to_numpy()
    change = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]]) if len(ids) else np.zeros(0, int)
    return ExamplePool(
        x=_design(rows, codes, offers, merchant, mean_price),
        treated=(rows["arm"].cast(pl.String) == "treatment").to_numpy().astype(np.float32),
        redeemed=rows["redeemed"].to_numpy().astype(np.float32),
        spend=scale_spend(rows["spend"].to_numpy(), merchant.info.merchant_type),
        starts=change.astype(np.int64), counts=np.diff(np.r_[change, len(ids)]).astype(np.int64))


def load_owner_data(folder: str | Path) -> OwnerData:
    """Load, validate and encode one merchant folder's consenting campaign logs."""
    merchant = load_merchant(folder)
    consenting = merchant.customers.filter(pl.col("consent_analytics"))["customer_id"]
    codes = customer_codes(merchant).filter(pl.col("customer_id").is_in(consenting.implode()))
    expo = merchant.exposures.filter(pl.col("customer_id").is_in(codes["customer_id"].implode()))
    held = pl.Series(is_holdout(expo["customer_id"]))
    offers = _offers(merchant)
    mean = merchant.transactions["unit_price"].mean()
    mean_price = float(mean) if isinstance(mean, int | float) and mean > 0 else 1.0
    holdout_rows = expo.filter(held).sort("customer_id", "campaign_id")
    held_codes = codes.filter(pl.Series(is_holdout(codes["customer_id"]))).sort("customer_id")
    return OwnerData(
        info=merchant.info, n_customers=codes.height,
        train=_pool(expo.filter(~held), codes, offers, merchant, mean_price),
        holdout=_pool(holdout_rows, codes, offers, merchant, mean_price),
        holdout_ids=holdout_rows["customer_id"],
        holdout_campaigns=holdout_rows["campaign_id"], holdout_codes=held_codes,
        holdout_profile=spend_profile(merchant, held_codes["customer_id"]),
        mean_price=mean_price)
