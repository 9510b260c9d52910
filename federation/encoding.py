"""Public, fixed encodings of a (customer, offer) pair for the response model.

The layout is fixed by public vocabularies only (twin attribute schema, offer kinds, merchant
types), so every owner and the hub encode identically. A design row is

* customer: one-hot of each twin attribute's level code (``twins.schema.SCHEMA``);
* offer: kind one-hot, duration, merchant type one-hot;
* pair terms (the same three the simulation's ``OfferFeatures`` carries): ``depth`` (value as
  a fraction of price), ``relevance`` (share of the customer's spend the offer applies to),
  ``geo`` (``exp(−distance/150 km)`` to the offer's location) and ``fee_burden`` (a
  membership fee over the customer's monthly spend).

The owner computes the pair terms from its raw data (:func:`pair_terms`); the simulation
passes its own ``OfferFeatures`` — that is what lets the learned model drive twins.
Spend is scaled by a public per-merchant-type constant (:data:`SPEND_SCALE`) and clamped, so
one customer's target is bounded whatever their raw spend.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import polars as pl

from retail.offers import KINDS, Offer
from retail.schema import MERCHANT_TYPES, distance_km, region_names
from twins.schema import SCHEMA

__all__ = [
    "CUSTOMER_DIM",
    "FEATURE_DIM",
    "GEO_SCALE_KM",
    "SPEND_CLAMP",
    "SPEND_SCALE",
    "PairTerms",
    "customer_matrix",
    "design_matrix",
    "offer_depth",
    "pair_terms",
    "scale_spend",
]

# Public spend scale per merchant type (SEK in a campaign window ~ one "typical" window).
SPEND_SCALE: dict[str, float] = {
    "grocery": 2000.0, "organic_deli": 1000.0, "pet_shop": 800.0, "apparel": 2500.0,
    "car_brand": 10000.0, "cafe": 400.0, "music": 150.0,
}
SPEND_CLAMP = 8.0  # scaled spend above this is clamped: bounds one customer's target
GEO_SCALE_KM = 150.0
FEE_BURDEN_CAP = 5.0

_MTYPES: tuple[str, ...] = tuple(MERCHANT_TYPES)
_CARDS: tuple[int, ...] = SCHEMA.shape
_OFFSETS: np.ndarray = np.concatenate([[0], np.cumsum(_CARDS)[:-1]]).astype(np.int64)
CUSTOMER_DIM = int(sum(_CARDS))
_OFFER_DIM = len(KINDS) + 1 + len(_MTYPES)
_PAIR_DIM = 4
FEATURE_DIM = CUSTOMER_DIM + _OFFER_DIM + _PAIR_DIM


def customer_matrix(codes: pl.DataFrame) -> np.ndarray:
    """One-hot (float32) of every schema attribute's code; one row per customer."""
    missing = [n for n in SCHEMA.names if n not in codes.columns]
    if missing:
        raise ValueError(f"customer codes: missing attribute columns {missing}")
    n = codes.height
    out = np.zeros((n, CUSTOMER_DIM), dtype=np.float32)
    rows = np.arange(n)
    for j, (name, card) in enumerate(zip(SCHEMA.names, _CARDS, strict=True)):
        c = codes[name].cast(pl.Int64).to_numpy()
        if n and (c.min() < 0 or c.max() >= card):
            raise ValueError(f"customer codes column {name!r}: code outside 0..{card - 1}")
        out[rows, _OFFSETS[j] + c] = 1.0
    return out


def _offer_block(kind: str, days: int, merchant_type: str) -> np.ndarray:
    if merchant_type not in MERCHANT_TYPES:
        raise ValueError(f"merchant_type: unknown {merchant_type!r}; known: {list(_MTYPES)}")
    if kind not in KINDS:
        raise ValueError(f"kind: unknown {kind!r}; known: {KINDS}")
    out = np.zeros(_OFFER_DIM, dtype=np.float32)
    out[KINDS.index(kind)] = 1.0
    out[len(KINDS)] = min(days / 90.0, 4.0)
    out[len(KINDS) + 1 + _MTYPES.index(merchant_type)] = 1.0
    return out


@dataclass(frozen=True, kw_only=True, eq=False)
class PairTerms:
    """Per-row offer terms (float arrays of equal length)."""

    depth: np.ndarray
    relevance: np.ndarray
    geo: np.ndarray
    fee_burden: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.depth)
        for name in ("relevance", "geo", "fee_burden"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"PairTerms.{name}: length {len(getattr(self, name))} != {n}")

    def matrix(self) -> np.ndarray:
        return np.column_stack([
            np.clip(self.depth, 0, 1), np.clip(self.relevance, 0, 1), np.clip(self.geo, 0, 1),
            np.clip(self.fee_burden, 0, FEE_BURDEN_CAP) / FEE_BURDEN_CAP]).astype(np.float32)


def design_matrix(codes: pl.DataFrame, *, kind: str, days: int, merchant_type: str,
                  terms: PairTerms) -> np.ndarray:
    """Model input rows for customers (attribute ``codes``) all offered one offer."""
    if len(terms.depth) != codes.height:
        raise ValueError(f"terms: {len(terms.depth)} rows for {codes.height} customers")
    block = np.broadcast_to(_offer_block(kind, days, merchant_type), (codes.height, _OFFER_DIM))
    return np.hstack([customer_matrix(codes), block, terms.matrix()]).astype(np.float32)


def offer_depth(offer: Offer, mean_price: float) -> float:
    """Value as a fraction of price (the simulation's convention for ``depth``)."""
    if offer.kind in ("discount", "cross_sell", "membership"):
        return offer.pct / 100.0 if offer.pct > 0 else min(1.0, offer.amount / mean_price)
    if offer.kind == "points":
        return min(1.0, offer.earn_rate * offer.point_value)
    return offer.partner_value / (offer.partner_value + 500.0)


def pair_terms(offer: Offer, merchant_type: str, *, region: np.ndarray,
               category_share: np.ndarray, monthly_spend: np.ndarray,
               mean_price: float) -> PairTerms:
    """Owner-side terms for one offer: ``category_share`` is (n, categories) spend shares."""
    cats = MERCHANT_TYPES[merchant_type].categories
    n = len(region)
    if offer.kind in ("discount", "cross_sell") and offer.categories:
        mask = np.array([c in offer.categories for c in cats])
        relevance = category_share[:, mask].sum(axis=1)
    else:
        relevance = np.ones(n)
    if offer.location is None:
        geo = np.ones(n)
    else:
        per_region = np.array([np.exp(-distance_km(r, offer.location) / GEO_SCALE_KM)
                               for r in region_names()])
        geo = per_region[np.asarray(region, dtype=np.int64)]
    fee = (offer.monthly_fee / np.maximum(monthly_spend, 1.0) if offer.kind == "membership"
           else np.zeros(n))
    return PairTerms(depth=np.full(n, offer_depth(offer, mean_price)), relevance=relevance,
                     geo=geo, fee_burden=fee)


def scale_spend(spend: np.ndarray, merchant_type: str,
                scales: Mapping[str, float] = SPEND_SCALE) -> np.ndarray:
    """Spend (SEK) on the model's bounded scale: spend / public scale, clamped to [0, 8]."""
    return np.clip(np.asarray(spend, dtype=np.float32) / scales[merchant_type], 0.0, SPEND_CLAMP)
