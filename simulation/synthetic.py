"""A synthetic twin attribute table for tests, benchmarks and demos (no release needed).

Rows are drawn persona by persona (the customer stories of the product brief: Anna buys
organic premium meat weekly, Beatrice is erratic, Cecilia buys cheap a little every day,
families with a two-week rhythm, dog owners, occasional customers), then expressed as level
codes of ``twins.schema.SCHEMA`` with an extra ``persona`` column usable as a segment.
It is simulation-side scaffolding, not a model of any merchant's data.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from retail.schema import MERCHANT_TYPES
from twins.schema import LIFE_TAGS, SCHEMA, structural_constants

__all__ = ["PERSONAS", "synthetic_twins"]

PERSONAS: tuple[str, ...] = ("anna", "beatrice", "cecilia", "family", "dog_owner", "occasional")
_PERSONA_P = np.array([0.15, 0.15, 0.15, 0.2, 0.1, 0.25])
# Typical (frequency, basket_value) level codes of a merchant type's customers.
_TYPICAL: dict[str, tuple[int, int]] = {
    "grocery": (4, 3), "organic_deli": (2, 3), "pet_shop": (1, 4), "apparel": (0, 5),
    "car_brand": (0, 6), "cafe": (4, 1), "music": (1, 1)}
# Per persona: shifts of (frequency, basket_value) and fixed levels of other attributes.
_SHIFT = {"anna": (0, 1), "beatrice": (0, 0), "cecilia": (2, -1), "family": (0, 1),
          "dog_owner": (0, 0), "occasional": (-2, 0)}
_FIXED: dict[str, dict[str, str]] = {
    "anna": {"tier": "premium", "organic_share": "very_high", "volatility": "low",
             "rhythm": "weekly", "promo_share": "low", "meat": "yes", "deli": "yes"},
    "beatrice": {"tier": "standard", "organic_share": "medium", "volatility": "high",
                 "rhythm": "irregular", "promo_share": "medium"},
    "cecilia": {"tier": "budget", "organic_share": "none", "volatility": "low",
                "rhythm": "irregular", "promo_share": "high", "weekday_pattern": "spread"},
    "family": {"rhythm": "two_week", "baby": "yes", "volatility": "medium",
               "weekday_pattern": "weekend"},
    "dog_owner": {"pet": "yes"},
    "occasional": {"rhythm": "sparse", "volatility": "medium"},
}
_TAG_P = {"pet": 0.15, "baby": 0.1, "meat": 0.6, "fish": 0.4, "menswear": 0.5, "car": 1.0,
          "leisure": 0.1, "deli": 0.5}
_REGION_P = np.array([0.30, 0.18, 0.12, 0.08, 0.08, 0.08, 0.09, 0.07])


def synthetic_twins(n: int, merchant_type: str = "grocery", *, seed: int = 0) -> pl.DataFrame:
    """``n`` synthetic twins as UInt8 level codes of SCHEMA plus a ``persona`` column."""
    if n < 0:
        raise ValueError(f"n: must be >= 0, got {n}")
    if merchant_type not in MERCHANT_TYPES:
        raise ValueError(f"merchant_type: unknown {merchant_type!r}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5E7]))
    persona = rng.choice(len(PERSONAS), size=n, p=_PERSONA_P)
    cols: dict[str, np.ndarray] = {}
    for a in SCHEMA.attributes:  # neutral random draws first, persona levels override below
        cols[a.name] = rng.integers(0, a.cardinality, size=n)
    cols["region"] = rng.choice(len(_REGION_P), size=n, p=_REGION_P)
    f0, b0 = _TYPICAL[merchant_type]
    fs = np.array([_SHIFT[p][0] for p in PERSONAS])[persona]
    bs = np.array([_SHIFT[p][1] for p in PERSONAS])[persona]
    cols["frequency"] = np.clip(f0 + fs + rng.integers(-1, 2, n), 0, 6)
    cols["basket_value"] = np.clip(b0 + bs + rng.integers(-1, 2, n), 0, 9)
    cols["basket_size"] = np.clip(cols["basket_value"] - 1 + rng.integers(-1, 2, n), 0, 5)
    cols["recency"] = _recency(cols["frequency"], rng)
    present = set(MERCHANT_TYPES[merchant_type].life.values())
    for tag in LIFE_TAGS:
        cols[tag] = (rng.random(n) < (_TAG_P[tag] if tag in present else 0.0)).astype(int)
    cols["vehicle_age"] = rng.integers(1, 8, n) if merchant_type == "car_brand" else np.zeros(n)
    for k, name in enumerate(PERSONAS):
        rows = persona == k
        for attr, level in _FIXED[name].items():
            if attr not in LIFE_TAGS or attr in present:
                cols[attr][rows] = SCHEMA[attr].code(level)
    for attr, code in structural_constants(merchant_type).items():
        cols[attr][:] = code
    table = pl.DataFrame({k: v.astype(np.uint8) for k, v in cols.items()})
    return table.with_columns(persona=pl.Series(np.array(PERSONAS)[persona]))


def _recency(freq_codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Days since the last purchase: exponential around the typical gap, some lapsed."""
    reps = np.asarray(SCHEMA["frequency"].representatives)[freq_codes]
    gap = 30.0 / reps
    days = rng.exponential(gap)
    lapsed = rng.random(freq_codes.size) < 0.1
    days = np.where(lapsed, days + rng.uniform(60, 400, freq_codes.size), days)
    return SCHEMA["recency"].bin_numpy(days).astype(np.int64)
