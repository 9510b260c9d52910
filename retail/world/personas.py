"""Nature's hidden parameters: personas, merchant-type behaviour and the world's merchants.

Persona shares (of people): eco_premium 7 %, erratic 8 %, budget_daily 7 %, dog_owner 10 %,
new_parents 6 %, bonus_children 6 %, student 10 %, pensioner 14 %, quality_seeker 7 %,
family 13 %, single 12 %. Each person's parameters are drawn *around* the persona means
(see :mod:`retail.world.people`), so two people of a persona are never clones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["MERCHANTS", "PERSONAS", "SCALES", "TYPE_BEHAVIOUR", "Persona", "TypeBehaviour",
           "WorldMerchant", "persona_index"]


@dataclass(frozen=True, kw_only=True)
class Persona:
    """Persona means. Rates and basket sizes are multipliers of the merchant type's base."""

    name: str
    share: float
    rate: float = 1.0  # visit-rate multiplier
    lines: float = 1.0  # basket-size (lines per visit) multiplier
    qty: float = 1.0  # quantity multiplier
    price_sens: float = 0.45  # 0 = never budget tier, 1 = always budget tier
    premium: float = 0.5  # taste for the premium tier
    organic: float = 0.08  # share of organic-capable lines bought organic
    promo: float = 0.3  # promo-proneness
    online: float = 0.08
    churn: float = 0.15  # yearly churn probability
    basket_sigma: float = 0.3  # visit-to-visit basket-size noise (lognormal sigma)
    erratic: bool = False  # tier and organic choice redrawn at each visit
    rhythm: float = 0.0  # two-week rhythm amplitude (bonus children every other week)
    pet: float = 0.08  # probability of having a pet (dog owners: 1)
    baby: float = 0.0
    kids: float = 0.0
    menswear: float = 0.35
    category: dict[str, float] = field(default_factory=dict)  # category weight multipliers

    def __post_init__(self) -> None:
        if not 0 < self.share < 1:
            raise ValueError(f"Persona.share: must be in (0, 1), got {self.share!r}")


PERSONAS: tuple[Persona, ...] = (
    Persona(name="eco_premium", share=0.07, lines=1.1, price_sens=0.08, premium=0.9,
            organic=0.75, promo=0.12, online=0.12, menswear=0.3,
            category={"produce": 1.5, "meat": 1.7, "fish": 1.4, "snacks": 0.4,
                      "ready_meals": 0.4, "cheese": 1.4, "deli": 1.3}),
    Persona(name="erratic", share=0.08, lines=1.0, price_sens=0.5, premium=0.6, organic=0.3,
            promo=0.35, basket_sigma=1.25, erratic=True),
    Persona(name="budget_daily", share=0.07, rate=7.0, lines=0.42, qty=0.7, price_sens=0.9,
            premium=0.1, organic=0.01, promo=0.55, online=0.01, basket_sigma=0.25,
            category={"dry_goods": 1.5, "bakery": 1.3, "meat": 0.4, "fish": 0.3,
                      "leisure_tickets": 0.1}),
    Persona(name="dog_owner", share=0.10, rate=1.1, pet=1.0,
            category={"pet_food": 2.0, "dog_food": 1.0, "cat_food": 0.05}),
    Persona(name="new_parents", share=0.06, rate=1.4, lines=1.15, baby=1.0, kids=1.0,
            online=0.2, price_sens=0.5, category={"baby": 2.0, "ready_meals": 1.5,
                                                  "kidswear": 2.0}),
    Persona(name="bonus_children", share=0.06, rate=1.4, lines=1.2, qty=1.2, rhythm=0.6,
            kids=1.0, category={"snacks": 1.5, "dairy": 1.3, "leisure_tickets": 2.0}),
    Persona(name="student", share=0.10, rate=0.9, lines=0.7, price_sens=0.75, premium=0.2,
            promo=0.5, online=0.15, churn=0.35, menswear=0.25,
            category={"ready_meals": 2.5, "snacks": 1.8, "meat": 0.5, "fish": 0.3,
                      "beverages": 1.5, "coffee": 1.5, "sandwiches": 1.5}),
    Persona(name="pensioner", share=0.14, rate=1.5, lines=0.8, price_sens=0.5, promo=0.4,
            online=0.02, churn=0.08, category={"bakery": 1.4, "fish": 1.5, "snacks": 0.6,
                                               "pastries": 1.8, "tea": 2.0}),
    Persona(name="quality_seeker", share=0.07, rate=0.9, lines=1.2, price_sens=0.1,
            premium=1.0, organic=0.3, promo=0.1, online=0.15, menswear=0.6,
            category={"meat": 1.5, "fish": 1.8, "leisure_tickets": 3.0, "suits": 2.0,
                      "cheese": 1.3}),
    Persona(name="family", share=0.13, rate=1.3, lines=1.3, qty=1.2, kids=1.0, baby=0.08,
            category={"snacks": 1.4, "dairy": 1.3, "household": 1.3, "leisure_tickets": 2.0}),
    Persona(name="single", share=0.12, rate=0.8, lines=0.85, online=0.12, churn=0.2,
            category={"ready_meals": 1.6, "beverages": 1.2}),
)


def persona_index(name: str) -> int:
    for i, p in enumerate(PERSONAS):
        if p.name == name:
            return i
    raise ValueError(f"persona: unknown {name!r}; known: {[p.name for p in PERSONAS]}")


@dataclass(frozen=True, kw_only=True)
class TypeBehaviour:
    """How customers of a merchant type behave on average (persona multipliers on top)."""

    rate: float  # visits per day
    lines: float  # expected lines per visit
    qty: float  # mean extra units per line
    weights: dict[str, float]  # base category weights
    organic_ok: tuple[str, ...]
    weekday: tuple[float, ...]  # Monday..Sunday
    season: tuple[tuple[int, float, float], ...]  # (day of year, width in days, lift)
    hours: tuple[int, int]
    organic_bias: float = 0.0  # added to every customer's organic preference here
    flag: dict[str, str] = field(default_factory=dict)  # category -> person flag it needs

    def season_curve(self) -> np.ndarray:
        """Multiplier per day of year (index 0..365), mean close to 1."""
        doy = np.arange(366, dtype=np.float64)
        out = np.ones(366)
        for centre, width, lift in self.season:
            d = np.minimum(np.abs(doy - centre), 365 - np.abs(doy - centre))
            out += lift * np.exp(-0.5 * (d / width) ** 2)
        return out / out.mean()

    def weekday_weights(self) -> np.ndarray:
        w = np.asarray(self.weekday, dtype=np.float64)
        return w / w.mean()


TYPE_BEHAVIOUR: dict[str, TypeBehaviour] = {
    "grocery": TypeBehaviour(
        rate=0.085, lines=3.3, qty=0.7,
        weights={"produce": 1.0, "dairy": 1.0, "bakery": 0.8, "meat": 0.6, "fish": 0.3,
                 "dry_goods": 0.7, "frozen": 0.4, "snacks": 0.5, "beverages": 0.6,
                 "household": 0.4, "pet_food": 0.6, "baby": 0.9, "ready_meals": 0.3,
                 "leisure_tickets": 0.02},
        organic_ok=("produce", "dairy", "bakery", "meat", "fish", "dry_goods", "baby",
                    "beverages"),
        weekday=(0.9, 0.85, 0.9, 0.95, 1.25, 1.35, 0.8),
        season=((355, 10, 0.35), (200, 20, -0.2)), hours=(8, 21),
        flag={"pet_food": "pet", "baby": "baby"}),
    "organic_deli": TypeBehaviour(
        rate=0.03, lines=2.4, qty=0.3,
        weights={"produce": 0.8, "dairy": 0.6, "cheese": 1.0, "meat": 0.8, "bakery": 0.8,
                 "deli": 1.0, "beverages": 0.5},
        organic_ok=("produce", "dairy", "cheese", "meat", "bakery", "deli", "beverages"),
        weekday=(0.8, 0.8, 0.9, 1.0, 1.3, 1.4, 0.8),
        season=((355, 10, 0.6), (200, 20, -0.15)), hours=(10, 19), organic_bias=0.45),
    "pet_shop": TypeBehaviour(
        rate=0.03, lines=1.7, qty=0.4,
        weights={"dog_food": 1.0, "cat_food": 1.0, "treats": 0.7, "accessories": 0.3,
                 "pet_care": 0.3},
        organic_ok=("dog_food", "cat_food", "treats"),
        weekday=(0.9, 0.9, 0.9, 1.0, 1.1, 1.3, 0.9),
        season=((355, 10, 0.2),), hours=(10, 19), flag={"dog_food": "dog", "cat_food": "cat"}),
    "apparel": TypeBehaviour(
        rate=0.012, lines=1.5, qty=0.15,
        weights={"suits": 0.35, "shirts": 1.0, "ties": 0.45, "trousers": 0.9, "shoes": 0.6,
                 "knitwear": 0.7, "outerwear": 0.45, "kidswear": 1.0},
        organic_ok=("shirts", "knitwear", "kidswear"),
        weekday=(0.8, 0.8, 0.9, 1.0, 1.2, 1.5, 0.8),
        season=((340, 20, 0.5), (170, 15, 0.25), (5, 8, 0.3)), hours=(10, 20),
        flag={"suits": "menswear", "ties": "menswear", "kidswear": "kids"}),
    "car_brand": TypeBehaviour(
        rate=0.0045, lines=1.3, qty=0.0,
        weights={"vehicles": 0.0, "service": 1.0, "parts": 0.35, "accessories": 0.25},
        organic_ok=(), weekday=(1.3, 1.3, 1.3, 1.3, 1.2, 0.3, 0.2),
        season=((115, 15, 0.5), (300, 15, 0.5)), hours=(7, 17)),
    "cafe": TypeBehaviour(
        rate=0.05, lines=1.5, qty=0.1,
        weights={"coffee": 1.5, "tea": 0.4, "pastries": 0.8, "sandwiches": 0.5,
                 "breakfast": 0.3},
        organic_ok=("coffee", "tea"), weekday=(1.1, 1.1, 1.1, 1.1, 1.1, 0.8, 0.7),
        season=((200, 20, -0.2), (350, 12, 0.1)), hours=(7, 18)),
}


@dataclass(frozen=True, kw_only=True)
class WorldMerchant:
    """A merchant of the synthetic world: size relative to grocery_1, where it trades and
    how strongly each persona is drawn to it."""

    merchant_id: str
    name: str
    merchant_type: str
    regions: tuple[str, ...]
    size: float
    prefix: str
    affinity: dict[str, float] = field(default_factory=dict)  # persona -> pull (default 1)
    requires: str | None = None  # a person flag every customer must have (pet, car_1)


_G1_REGIONS = ("Stockholm", "Göteborg", "Uppsala", "Västerås", "Örebro", "Linköping", "Umeå")
MERCHANTS: tuple[WorldMerchant, ...] = (
    WorldMerchant(merchant_id="grocery_1", name="Stor Livs", merchant_type="grocery",
                  regions=_G1_REGIONS, size=1.0, prefix="g1"),
    WorldMerchant(merchant_id="grocery_2", name="Västkust Mat", merchant_type="grocery",
                  regions=("Göteborg", "Malmö"), size=0.3, prefix="g2",
                  affinity={"budget_daily": 1.5, "student": 1.3, "eco_premium": 0.7}),
    WorldMerchant(merchant_id="deli_1", name="Gröna Delikatessen", merchant_type="organic_deli",
                  regions=("Stockholm",), size=0.05, prefix="dl",
                  affinity={"eco_premium": 8, "quality_seeker": 5, "erratic": 2,
                            "budget_daily": 0.05, "student": 0.2, "family": 0.5}),
    WorldMerchant(merchant_id="pet_1", name="Tass & Nos", merchant_type="pet_shop",
                  regions=("Stockholm", "Uppsala", "Västerås"), size=0.06, prefix="pt",
                  affinity={"dog_owner": 3}, requires="pet"),
    WorldMerchant(merchant_id="apparel_1", name="Herr & Fru Kläder", merchant_type="apparel",
                  regions=("Stockholm", "Göteborg", "Malmö", "Uppsala"), size=0.1, prefix="ap",
                  affinity={"quality_seeker": 5, "eco_premium": 2, "student": 0.7,
                            "budget_daily": 0.2}),
    WorldMerchant(merchant_id="car_1", name="Nordbil", merchant_type="car_brand",
                  regions=(*_G1_REGIONS, "Malmö"), size=0.06, prefix="cr",
                  affinity={"quality_seeker": 2, "student": 0.1}, requires="car_1"),
    WorldMerchant(merchant_id="cafe_1", name="Kaffekoppen", merchant_type="cafe",
                  regions=("Stockholm", "Göteborg"), size=0.15, prefix="cf",
                  affinity={"student": 4, "single": 2, "quality_seeker": 2, "eco_premium": 1.5,
                            "budget_daily": 0.3, "pensioner": 0.8}),
)

# grocery_1 customers per scale; people are 1.6× that, other merchants scale with `size`.
SCALES: dict[str, int] = {"small": 3_000, "medium": 100_000, "large": 500_000}
