"""A merchant's catalogue: categories × tiers with a unit price and a gross margin.

Public, merchant-owned commercial facts (not customer data): the world generator prices
its transactions from it and the simulation values baskets with it. Each merchant type has
a default; a merchant can load its own from JSON/YAML.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from retail.schema import MERCHANT_TYPES, TIERS

__all__ = ["Catalogue", "CatalogueItem", "base_spend_shares", "default_catalogue",
           "load_catalogue"]

# Organic items cost this much more than the same tier's conventional item.
ORGANIC_MARKUP = 0.25


@dataclass(frozen=True, kw_only=True)
class CatalogueItem:
    """One category × tier: typical unit price (SEK) and gross margin as a fraction of price."""

    price: float
    margin: float

    def __post_init__(self) -> None:
        if not self.price > 0:
            raise ValueError(f"CatalogueItem.price: must be > 0, got {self.price!r}")
        if not 0 <= self.margin < 1:
            raise ValueError(f"CatalogueItem.margin: must be in [0, 1), got {self.margin!r}")


@dataclass(frozen=True, kw_only=True)
class Catalogue:
    merchant_type: str
    items: Mapping[tuple[str, str], CatalogueItem] = field(default_factory=dict)

    def __post_init__(self) -> None:
        mt = MERCHANT_TYPES.get(self.merchant_type)
        if mt is None:
            raise ValueError(f"Catalogue.merchant_type: unknown {self.merchant_type!r}")
        missing = [(c, t) for c in mt.categories for t in TIERS if (c, t) not in self.items]
        if missing:
            raise ValueError(f"Catalogue.items: missing category×tier {missing[:5]}")
        unknown = [k for k in self.items if k[0] not in mt.categories or k[1] not in TIERS]
        if unknown:
            raise ValueError(f"Catalogue.items: unknown category×tier {unknown[:5]}")

    @property
    def categories(self) -> tuple[str, ...]:
        return MERCHANT_TYPES[self.merchant_type].categories

    def price(self, category: str, tier: str, organic: bool = False) -> float:
        p = self.items[(category, tier)].price
        return p * (1 + ORGANIC_MARKUP) if organic else p

    def margin(self, category: str, tier: str) -> float:
        return self.items[(category, tier)].margin

    def to_dict(self) -> dict[str, object]:
        return {"merchant_type": self.merchant_type,
                "items": [{"category": c, "tier": t, "price": i.price, "margin": i.margin}
                          for (c, t), i in self.items.items()]}

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Catalogue:
        rows = data.get("items")
        if not isinstance(rows, list):
            raise ValueError("Catalogue: 'items' must be a list of {category, tier, price, margin}")
        items: dict[tuple[str, str], CatalogueItem] = {}
        for i, row in enumerate(rows):
            try:
                items[(str(row["category"]), str(row["tier"]))] = CatalogueItem(
                    price=float(row["price"]), margin=float(row["margin"]))
            except (KeyError, TypeError) as exc:
                raise ValueError(f"Catalogue.items[{i}]: missing or bad field {exc}") from None
        return cls(merchant_type=str(data.get("merchant_type")), items=items)


# (base price of a standard item in SEK, gross margin) per category; tiers scale the price.
_BASE: dict[str, dict[str, tuple[float, float]]] = {
    "grocery": {"produce": (22, 0.30), "dairy": (18, 0.22), "bakery": (28, 0.35),
                "meat": (75, 0.25), "fish": (85, 0.27), "dry_goods": (25, 0.28),
                "frozen": (40, 0.30), "snacks": (24, 0.38), "beverages": (20, 0.40),
                "household": (35, 0.35), "pet_food": (60, 0.30), "baby": (110, 0.20),
                "ready_meals": (55, 0.33), "leisure_tickets": (350, 0.10)},
    "organic_deli": {"produce": (38, 0.35), "dairy": (32, 0.30), "cheese": (90, 0.40),
                     "meat": (150, 0.30), "bakery": (45, 0.45), "deli": (80, 0.45),
                     "beverages": (40, 0.45)},
    "pet_shop": {"dog_food": (320, 0.30), "cat_food": (210, 0.30), "treats": (60, 0.45),
                 "accessories": (180, 0.50), "pet_care": (120, 0.40)},
    "apparel": {"suits": (2800, 0.55), "shirts": (600, 0.60), "ties": (350, 0.65),
                "trousers": (800, 0.55), "shoes": (1300, 0.50), "knitwear": (900, 0.55),
                "outerwear": (2000, 0.50), "kidswear": (300, 0.50)},
    "car_brand": {"vehicles": (380_000, 0.08), "service": (4500, 0.45),
                  "parts": (1500, 0.35), "accessories": (900, 0.45)},
    "cafe": {"coffee": (38, 0.75), "tea": (32, 0.78), "pastries": (35, 0.60),
             "sandwiches": (75, 0.55), "breakfast": (95, 0.55)},
    "music": {"music": (15, 0.30)},
}
_TIER_FACTOR = {"budget": 0.65, "standard": 1.0, "premium": 1.6}
_TIER_MARGIN = {"budget": -0.05, "standard": 0.0, "premium": 0.07}


def default_catalogue(merchant_type: str) -> Catalogue:
    """The public default catalogue of a merchant type."""
    if merchant_type not in _BASE:
        raise ValueError(f"merchant_type: unknown {merchant_type!r}; known: {sorted(_BASE)}")
    items = {
        (cat, tier): CatalogueItem(price=round(price * _TIER_FACTOR[tier], 2),
                                   margin=round(min(0.95, max(0.01, m + _TIER_MARGIN[tier])), 3))
        for cat, (price, m) in _BASE[merchant_type].items()
        for tier in TIERS
    }
    return Catalogue(merchant_type=merchant_type, items=items)


def load_catalogue(path: str | Path) -> Catalogue:
    """Load a merchant's own catalogue from JSON or YAML; errors name the file."""
    p = Path(path)
    try:
        text = p.read_text()
        data = yaml.safe_load(text) if p.suffix in {".yaml", ".yml"} else json.loads(text)
        return Catalogue.from_dict(data)
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise ValueError(f"{p}: not a valid catalogue: {exc}") from None


# Public default: typical items per category (relative) where they differ from 1.
_ITEM_PROFILE: dict[str, dict[str, float]] = {
    "grocery": {"produce": 18, "dairy": 16, "bakery": 10, "meat": 7, "fish": 3, "dry_goods": 10,
                "frozen": 5, "snacks": 7, "beverages": 9, "household": 6, "pet_food": 2,
                "baby": 2, "ready_meals": 4, "leisure_tickets": 0.5},
    "car_brand": {"vehicles": 0.3, "service": 40, "parts": 30, "accessories": 30},
}


def base_spend_shares(merchant_type: str) -> np.ndarray:
    """Public default spend shares over the merchant type's categories (sums to 1): a
    typical count of items per category (1 where not listed) × the standard tier's price."""
    cats = MERCHANT_TYPES[merchant_type].categories
    cat = default_catalogue(merchant_type)
    prof = _ITEM_PROFILE.get(merchant_type, {})
    w = np.array([prof.get(c, 1.0) * cat.price(c, "standard") for c in cats])
    return w / w.sum()
