"""The merchants' past campaigns: offers, targeted cohorts and randomised control groups.

Each merchant ran 3–5 campaigns over the year, one at a time. On a campaign's first day the
merchant picks a cohort from what it can see (recent visitors, recent buyers of a category)
and splits it at random 50/50 into treatment and control; only treatment gets the offer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from retail.offers import Offer
from retail.schema import MERCHANT_TYPES

__all__ = ["CAMPAIGN_PLANS", "CampaignPlan", "cohort_mask", "plans_for"]


@dataclass(frozen=True, kw_only=True)
class CampaignPlan:
    """A past campaign: the offer, its first day and who the merchant targeted."""

    offer: Offer
    start: int
    cohort: str = "recent"  # "recent" visitors, or "buyers:<category>" (last 90 days)
    treat_share: float = 0.5

    def __post_init__(self) -> None:
        if not 0 < self.treat_share < 1:
            raise ValueError(f"CampaignPlan.treat_share: must be in (0, 1), got "
                             f"{self.treat_share!r}")
        if self.start < 0:
            raise ValueError(f"CampaignPlan.start: must be >= 0, got {self.start!r}")


def _plan(start: int, cohort: str = "recent", **offer: Any) -> tuple[int, str, dict[str, Any]]:
    return start, cohort, offer


CAMPAIGN_PLANS: dict[str, list[tuple[int, str, dict[str, Any]]]] = {
    "grocery_1": [
        _plan(35, name="Organic meat 20 %", kind="discount", pct=20, categories=["meat"],
              organic_only=True, days=28),
        _plan(110, name="10 % on everything", kind="discount", pct=10, days=21),
        _plan(180, name="Nordbil service voucher", kind="partner", partner="car_1",
              partner_value=1500, fee_per_exposure=1.5, fee_per_redemption=120, days=30),
        _plan(250, "buyers:baby", name="Baby buyers: 15 % household", kind="cross_sell",
              pct=15, trigger_categories=["baby"], categories=["household"], days=28),
        _plan(310, name="Double points", kind="points", earn_rate=1, point_value=0.02, days=30),
    ],
    "grocery_2": [
        _plan(60, name="15 % on pet food", kind="discount", pct=15, categories=["pet_food"],
              days=28),
        _plan(150, name="Liseberg summer tickets", kind="discount", pct=25,
              categories=["leisure_tickets"], location="Göteborg", days=30),
        _plan(240, name="10 % on everything", kind="discount", pct=10, days=21),
        _plan(300, name="Premium meat trade-up", kind="discount", pct=20, categories=["meat"],
              tiers=["premium"], days=28),
    ],
    "deli_1": [
        _plan(50, name="Cheese 15 %", kind="discount", pct=15, categories=["cheese"], days=28),
        _plan(150, name="Deli club", kind="membership", monthly_fee=49, pct=10, days=60),
        _plan(280, name="10 kr off bread", kind="discount", amount=10, categories=["bakery"],
              days=21),
    ],
    "pet_1": [
        _plan(40, "buyers:dog_food", name="Dog food 20 %", kind="discount", pct=20,
              categories=["dog_food"], days=28),
        _plan(160, "buyers:dog_food", name="Dog food buyers: treats 25 %", kind="cross_sell",
              pct=25, trigger_categories=["dog_food"], categories=["treats"], days=30),
        _plan(270, name="Pet points", kind="points", earn_rate=1, point_value=0.03, days=45),
    ],
    "apparel_1": [
        _plan(20, name="Winter sale: outerwear 30 %", kind="discount", pct=30,
              categories=["outerwear"], days=21),
        _plan(130, name="Suit buyers: ties and shirts 20 %", kind="cross_sell", pct=20,
              trigger_categories=["suits"], categories=["ties", "shirts"], days=60),
        _plan(230, name="Premium 15 %", kind="discount", pct=15, tiers=["premium"], days=30),
    ],
    "car_1": [
        _plan(60, name="Service 20 %", kind="discount", pct=20, categories=["service"],
              days=60),
        _plan(200, name="Accessories 15 %", kind="discount", pct=15,
              categories=["accessories"], days=45),
        _plan(290, name="Winter parts 10 %", kind="discount", pct=10, categories=["parts"],
              days=45),
    ],
    "cafe_1": [
        _plan(30, name="Coffee club", kind="membership", monthly_fee=79, pct=20,
              categories=["coffee"], days=60),
        _plan(140, name="Pastries 25 %", kind="discount", pct=25, categories=["pastries"],
              days=21),
        _plan(260, name="Café points", kind="points", earn_rate=1, point_value=0.05, days=45),
    ],
}


def plans_for(merchant_id: str, merchant_type: str) -> list[CampaignPlan]:
    return [CampaignPlan(offer=Offer.from_dict({**spec, "start_day": start},
                                               merchant_type=merchant_type),
                         start=start, cohort=cohort)
            for start, cohort, spec in CAMPAIGN_PLANS.get(merchant_id, [])]


def cohort_mask(plan: CampaignPlan, merchant_type: str, signup_day: np.ndarray,
                last_visit: np.ndarray, last_buy: np.ndarray) -> np.ndarray:
    """The customers a merchant would target, from what the merchant itself can see."""
    day = plan.start
    signed = signup_day <= day
    if plan.cohort == "recent":
        return signed & (last_visit >= day - 60)
    kind, _, cat = plan.cohort.partition(":")
    if kind != "buyers":
        raise ValueError(f"CampaignPlan.cohort: unknown {plan.cohort!r}; use 'recent' or "
                         "'buyers:<category>'")
    j = MERCHANT_TYPES[merchant_type].categories.index(cat)
    return signed & (last_buy[:, j] >= day - 90)
