"""A tiny synthetic merchant folder with a planted uplift, for tests, docs and smoke runs.

Not nature (that is ``retail.world``, which federation may not import): a deliberately simple
generator. Customers have category affinities; a year of transactions follows them; three
randomised campaigns are logged (treatment/control). Treated customers redeem and spend more
in proportion to how much of their spend the offer's categories cover, so a model that learns
uplift must rank customers by affinity × depth.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl

from retail.merchant import Merchant, MerchantInfo, table_schema, write_merchant
from retail.schema import MERCHANT_TYPES

__all__ = ["DEMO_OFFERS", "write_demo_merchant"]

DEMO_OFFERS: dict[str, tuple[dict[str, object], ...]] = {
    "grocery": ({"name": "Meat 25%", "kind": "discount", "pct": 25, "categories": ["meat"]},
                {"name": "Pet food 20%", "kind": "discount", "pct": 20,
                 "categories": ["pet_food"]},
                {"name": "All 5%", "kind": "discount", "pct": 5}),
    "organic_deli": ({"name": "Cheese 25%", "kind": "discount", "pct": 25,
                      "categories": ["cheese"]},
                     {"name": "Meat 20%", "kind": "discount", "pct": 20, "categories": ["meat"]},
                     {"name": "All 5%", "kind": "discount", "pct": 5}),
    "cafe": ({"name": "Pastry 25%", "kind": "discount", "pct": 25, "categories": ["pastries"]},
             {"name": "Coffee 20%", "kind": "discount", "pct": 20, "categories": ["coffee"]},
             {"name": "All 5%", "kind": "discount", "pct": 5}),
}
_START = dt.date(2025, 1, 1)
_END = dt.date(2025, 12, 31)


def _customers(rng: np.random.Generator, ids: list[str], regions: tuple[str, ...]) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame({
        "customer_id": ids,
        "region": rng.choice(list(regions), n).tolist(),
        "signup_date": [_START - dt.timedelta(days=int(d)) for d in rng.integers(0, 2000, n)],
        "consent_analytics": (rng.random(n) < 0.95).tolist(),
        "consent_partner": (rng.random(n) < 0.5).tolist(),
    }, schema=table_schema("customers", "grocery"))


def _transactions(rng: np.random.Generator, ids: list[str], aff: np.ndarray,
                  cats: tuple[str, ...], mtype: str) -> pl.DataFrame:
    n_tx = rng.poisson(25, len(ids)) + 2
    cust = np.repeat(np.arange(len(ids)), n_tx)
    m = len(cust)
    cat = np.array([rng.choice(len(cats), p=aff[c]) for c in cust])
    qty = rng.integers(1, 4, m)
    price = np.round(rng.uniform(20, 120, m), 2)
    secs = rng.integers(0, 364 * 86400, m)
    return pl.DataFrame({
        "transaction_id": np.arange(1, m + 1), "customer_id": [ids[c] for c in cust],
        "timestamp": [dt.datetime(2025, 1, 1) + dt.timedelta(seconds=int(s)) for s in secs],
        "store_id": np.ones(m, dtype=np.int32), "channel": ["store"] * m,
        "category": [cats[c] for c in cat], "tier": rng.choice(["budget", "standard", "premium"],
                                                               m).tolist(),
        "organic": (rng.random(m) < 0.2).tolist(), "quantity": qty.astype(np.int32),
        "unit_price": price, "amount": np.round(qty * price, 2),
        "promo": (rng.random(m) < 0.1).tolist(),
    }, schema=table_schema("transactions", mtype))


def _exposures(rng: np.random.Generator, ids: list[str], aff: np.ndarray,
               cats: tuple[str, ...], offers: tuple[dict[str, object], ...]) -> pl.DataFrame:
    frames = []
    for k, offer in enumerate(offers):
        chosen = offer.get("categories") or []
        assert isinstance(chosen, list)
        mask = np.array([not chosen or c in chosen for c in cats])
        rel = aff[:, mask].sum(axis=1)
        depth = float(offer["pct"]) / 100.0  # type: ignore[arg-type]
        treated = rng.random(len(ids)) < 0.5
        p = np.clip(0.05 + 2.5 * rel * depth, 0, 0.95) * treated
        redeemed = rng.random(len(ids)) < p
        base = rng.gamma(2.0, 250.0, len(ids))
        spend = base + treated * 4000.0 * rel * depth * (0.5 + rng.random(len(ids)))
        frames.append(pl.DataFrame({
            "campaign_id": f"c{k + 1}", "customer_id": ids,
            "arm": np.where(treated, "treatment", "control").tolist(),
            "redeemed": redeemed.tolist(), "redemptions": redeemed.astype(np.int32),
            "visits": rng.integers(0, 10, len(ids)).astype(np.int32),
            "spend": np.round(spend, 2), "discount_cost": np.round(redeemed * 20.0, 2),
        }, schema=table_schema("exposures", "grocery")))
    return pl.concat(frames)


def write_demo_merchant(folder: str | Path, *, merchant_id: str, merchant_type: str = "grocery",
                        n_customers: int = 300, seed: int = 0,
                        regions: tuple[str, ...] = ("Stockholm", "Uppsala")) -> Path:
    """Write a valid merchant folder (``merchant.json`` + four tables) and return it."""
    if merchant_type not in DEMO_OFFERS:
        raise ValueError(f"merchant_type: demo supports {sorted(DEMO_OFFERS)} "
                         f"(got {merchant_type!r})")
    rng = np.random.default_rng(seed)
    cats = MERCHANT_TYPES[merchant_type].categories
    ids = [f"{merchant_id}-cust-{i:06d}" for i in range(n_customers)]
    aff = rng.dirichlet(np.full(len(cats), 0.5), n_customers)
    offers = DEMO_OFFERS[merchant_type]
    campaigns = pl.DataFrame({
        "campaign_id": [f"c{k + 1}" for k in range(len(offers))],
        "name": [str(o["name"]) for o in offers],
        "start": [dt.date(2025, 3 + 3 * k, 1) for k in range(len(offers))],
        "end": [dt.date(2025, 3 + 3 * k, 30) for k in range(len(offers))],
        "offer": [json.dumps({**o, "days": 30}) for o in offers],
    }, schema=table_schema("campaigns", merchant_type))
    info = MerchantInfo(merchant_id=merchant_id, name=f"Demo {merchant_id}",
                        merchant_type=merchant_type, regions=regions, currency="SEK",
                        period_start=_START, period_end=_END)
    return write_merchant(folder, Merchant(
        info=info, customers=_customers(rng, ids, regions),
        transactions=_transactions(rng, ids, aff, cats, merchant_type),
        campaigns=campaigns, exposures=_exposures(rng, ids, aff, cats, offers)))
