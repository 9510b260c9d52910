"""The merchant's raw-data model: public vocabularies and the four table schemas.

Everything here is public and fixed: region lists, merchant types and their category lists,
tiers and channels. Nothing is derived from data. Tables are stored as Parquet in a merchant
folder (``customers.parquet``, ``transactions.parquet``, ``campaigns.parquet``,
``exposures.parquet``) next to a ``merchant.json`` describing the merchant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import polars as pl

__all__ = [
    "ARMS",
    "CAMPAIGNS_SCHEMA",
    "CAR_CUSTOMER_COLUMNS",
    "CHANNELS",
    "CUSTOMERS_SCHEMA",
    "EXPOSURES_SCHEMA",
    "MERCHANT_TYPES",
    "REGIONS",
    "TABLE_FILES",
    "TIERS",
    "MerchantType",
    "Region",
    "customers_schema",
    "distance_km",
    "region_names",
    "transactions_schema",
]


@dataclass(frozen=True, kw_only=True)
class Region:
    """A public Swedish region (city) with coordinates, used for geo-targeting."""

    name: str
    lat: float
    lon: float


REGIONS: tuple[Region, ...] = (
    Region(name="Stockholm", lat=59.3293, lon=18.0686),
    Region(name="Göteborg", lat=57.7089, lon=11.9746),
    Region(name="Malmö", lat=55.6050, lon=13.0038),
    Region(name="Uppsala", lat=59.8586, lon=17.6389),
    Region(name="Västerås", lat=59.6099, lon=16.5448),
    Region(name="Örebro", lat=59.2753, lon=15.2134),
    Region(name="Linköping", lat=58.4108, lon=15.6214),
    Region(name="Umeå", lat=63.8258, lon=20.2630),
)


def region_names() -> tuple[str, ...]:
    return tuple(r.name for r in REGIONS)


def distance_km(a: str, b: str) -> float:
    """Great-circle distance between two public regions, in km."""
    ra = next(r for r in REGIONS if r.name == a)
    rb = next(r for r in REGIONS if r.name == b)
    p1, p2 = math.radians(ra.lat), math.radians(rb.lat)
    dp, dl = p2 - p1, math.radians(rb.lon - ra.lon)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(h))


TIERS: tuple[str, ...] = ("budget", "standard", "premium")
CHANNELS: tuple[str, ...] = ("store", "online")
ARMS: tuple[str, ...] = ("treatment", "control")


@dataclass(frozen=True, kw_only=True)
class MerchantType:
    """A public merchant type: its category list and what each category says about life.

    ``life`` maps a category to a life-situation tag of the common taxonomy shared across
    merchant types (``pet``, ``baby``, ``meat``, ``organic_food``, ``menswear``, ``car``,
    ``leisure``, ...), so features built at different merchants speak the same language.
    """

    name: str
    label: str
    categories: tuple[str, ...]
    life: dict[str, str]

    def __post_init__(self) -> None:
        if not self.categories:
            raise ValueError(f"MerchantType.categories: empty for {self.name!r}")
        unknown = set(self.life) - set(self.categories)
        if unknown:
            raise ValueError(f"MerchantType.life: unknown categories {sorted(unknown)}")


MERCHANT_TYPES: dict[str, MerchantType] = {
    m.name: m
    for m in (
        MerchantType(
            name="grocery",
            label="Grocery chain",
            categories=(
                "produce", "dairy", "bakery", "meat", "fish", "dry_goods", "frozen",
                "snacks", "beverages", "household", "pet_food", "baby", "ready_meals",
                "leisure_tickets",
            ),
            life={"pet_food": "pet", "baby": "baby", "meat": "meat", "fish": "fish",
                  "leisure_tickets": "leisure"},
        ),
        MerchantType(
            name="organic_deli",
            label="Organic deli",
            categories=("produce", "dairy", "cheese", "meat", "bakery", "deli", "beverages"),
            life={"meat": "meat", "cheese": "deli"},
        ),
        MerchantType(
            name="pet_shop",
            label="Pet shop",
            categories=("dog_food", "cat_food", "treats", "accessories", "pet_care"),
            life={"dog_food": "pet", "cat_food": "pet", "treats": "pet"},
        ),
        MerchantType(
            name="apparel",
            label="Apparel store",
            categories=("suits", "shirts", "ties", "trousers", "shoes", "knitwear",
                        "outerwear", "kidswear"),
            life={"suits": "menswear", "ties": "menswear", "shirts": "menswear",
                  "kidswear": "baby"},
        ),
        MerchantType(
            name="car_brand",
            label="Car brand",
            categories=("vehicles", "service", "parts", "accessories"),
            life={"vehicles": "car", "service": "car"},
        ),
        MerchantType(
            name="cafe",
            label="Café",
            categories=("coffee", "tea", "pastries", "sandwiches", "breakfast"),
            life={},
        ),
        MerchantType(
            name="music",
            label="Music retailer (CDNOW)",
            categories=("music",),
            life={},
        ),
    )
}

TABLE_FILES: dict[str, str] = {
    "customers": "customers.parquet",
    "transactions": "transactions.parquet",
    "campaigns": "campaigns.parquet",
    "exposures": "exposures.parquet",
}

_REGION = pl.Enum(list(region_names()))
_TIER = pl.Enum(list(TIERS))
_CHANNEL = pl.Enum(list(CHANNELS))
_ARM = pl.Enum(list(ARMS))

CUSTOMERS_SCHEMA: dict[str, pl.DataType] = {
    "customer_id": pl.String(),
    "region": _REGION,
    "signup_date": pl.Date(),
    "consent_analytics": pl.Boolean(),
    "consent_partner": pl.Boolean(),
}

# Extra customer columns a car brand keeps about the vehicle each customer owns.
CAR_CUSTOMER_COLUMNS: dict[str, pl.DataType] = {
    "vehicle_model": pl.String(),
    "vehicle_purchase_date": pl.Date(),
}

CAMPAIGNS_SCHEMA: dict[str, pl.DataType] = {
    "campaign_id": pl.String(),
    "name": pl.String(),
    "start": pl.Date(),
    "end": pl.Date(),
    "offer": pl.String(),  # the offer definition, as JSON
}

EXPOSURES_SCHEMA: dict[str, pl.DataType] = {
    "campaign_id": pl.String(),
    "customer_id": pl.String(),
    "arm": _ARM,
    "redeemed": pl.Boolean(),
    "redemptions": pl.Int32(),
    "visits": pl.Int32(),  # purchase days in the campaign window
    "spend": pl.Float64(),  # spend in the campaign window, SEK
    "discount_cost": pl.Float64(),  # discount given on redemptions, SEK
}


def customers_schema(merchant_type: str) -> dict[str, pl.DataType]:
    schema = dict(CUSTOMERS_SCHEMA)
    if merchant_type == "car_brand":
        schema.update(CAR_CUSTOMER_COLUMNS)
    return schema


def transactions_schema(merchant_type: str) -> dict[str, pl.DataType]:
    """Schema of the transactions table; the category list depends on the merchant type."""
    try:
        categories = MERCHANT_TYPES[merchant_type].categories
    except KeyError:
        raise ValueError(
            f"merchant_type: unknown value {merchant_type!r}; known: {sorted(MERCHANT_TYPES)}"
        ) from None
    return {
        "transaction_id": pl.Int64(),
        "customer_id": pl.String(),
        "timestamp": pl.Datetime("us"),
        "store_id": pl.Int32(),
        "channel": _CHANNEL,
        "category": pl.Enum(list(categories)),
        "tier": _TIER,
        "organic": pl.Boolean(),
        "quantity": pl.Int32(),
        "unit_price": pl.Float64(),
        "amount": pl.Float64(),
        "promo": pl.Boolean(),
    }
