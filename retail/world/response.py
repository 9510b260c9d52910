"""Nature's true, heterogeneous response to an offer: compile an ``Offer`` into an Effect.

Who takes an offer up depends on relevance (affinity for the offer's categories, tiers and
organic items; for a partner offer, the person's tie to the partner, e.g. the age of their
car), on depth (discount, membership saving, points value, voucher value), on
promo-proneness and on the distance from home to the offer's location. Engaged customers
visit more, put more qualifying items in the basket, trade up, stockpile (pull-forward)
and churn less; their qualifying purchases that would have happened anyway are discounted
too (cannibalisation).
"""

from __future__ import annotations

import numpy as np

from retail.offers import Offer
from retail.schema import MERCHANT_TYPES, REGIONS, TIERS, distance_km
from retail.world import rng as crn
from retail.world.behaviour import Effect, Market, _tier_weights
from retail.world.people import Population, merchant_bit
from retail.world.personas import MERCHANTS

__all__ = ["compile_offer", "engage_probability", "offer_depth"]

SLOT_ENGAGE = 251
LOCATION_SCALE_KM = 120.0


def _mask(names: tuple[str, ...], universe: tuple[str, ...]) -> np.ndarray:
    return np.array([not names or u in names for u in universe])


def offer_depth(offer: Offer, market: Market) -> float:
    """The offer's value to a customer as a fraction of the price of what it applies to."""
    if offer.kind in ("discount", "cross_sell", "membership"):
        if offer.pct > 0:
            return offer.pct / 100.0
        cats = _mask(offer.categories, MERCHANT_TYPES[market.merchant_type].categories)
        return min(1.0, offer.amount / float(market.price[cats].mean()))
    if offer.kind == "points":
        return offer.earn_rate * offer.point_value
    return offer.partner_value / (offer.partner_value + 500.0)


def _distance_factor(offer: Offer, pop: Population) -> np.ndarray:
    if offer.location is None:
        return np.ones(pop.n)
    per_region = np.array([np.exp(-distance_km(r.name, offer.location) / LOCATION_SCALE_KM)
                           for r in REGIONS])
    return per_region[pop.region]


def _category_relevance(offer: Offer, pop: Population, market: Market) -> np.ndarray:
    cats = MERCHANT_TYPES[market.merchant_type].categories
    share = pop.affinity[:, _mask(offer.categories, cats)].sum(axis=1).astype(np.float64)
    if offer.tiers:
        tw = _tier_weights(pop.price_sens, pop.premium)
        share = share * (0.3 + 0.7 * tw[:, _mask(offer.tiers, TIERS)].sum(axis=1))
    if offer.organic_only:
        share = share * (0.05 + pop.organic)
    return -np.expm1(-4.0 * share)


def _partner_relevance(offer: Offer, pop: Population, day: int, market: Market) -> np.ndarray:
    partner = next((m for m in MERCHANTS if offer.partner in (m.merchant_id, m.name)), None)
    if partner is not None and partner.merchant_type == "car_brand":
        age = (day - pop.car_day) / 365.0
        bump = 0.05 + 0.9 * np.exp(-0.5 * ((age - 3.0) / 0.6) ** 2)
        return np.where(np.isnan(pop.car_day), 0.002, bump)
    if partner is not None:
        return np.where(pop.shops_at & merchant_bit(partner.merchant_id), 0.6, 0.1)
    if offer.categories:
        return _category_relevance(offer, pop, market)
    return np.full(pop.n, 0.3)


def _membership_relevance(offer: Offer, pop: Population, market: Market) -> np.ndarray:
    """Frequent, big-basket shoppers save more than the fee and join."""
    basket = pop.lines * float(market.price[:, 1].mean() if market.n_cat else 0.0)
    saving = pop.rate * 30 * basket * offer.pct / 100.0
    return 1.0 / (1.0 + np.exp(-(saving - offer.monthly_fee) / (0.3 * offer.monthly_fee + 10)))


def engage_probability(offer: Offer, pop: Population, market: Market, day: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(probability that each customer, if exposed, takes the offer up; relevance)."""
    depth = offer_depth(offer, market)
    if offer.kind == "partner":
        rel = _partner_relevance(offer, pop, day, market)
        resp = 0.3 + 0.5 * pop.promo
    elif offer.kind == "membership":
        rel = _membership_relevance(offer, pop, market)
        resp = 0.2 + 0.6 * pop.promo
    elif offer.kind == "points":
        rel = -np.expm1(-pop.rate * 30)
        resp = (0.2 + 0.6 * pop.promo) * -np.expm1(-depth / 0.02)
    else:
        rel = _category_relevance(offer, pop, market)
        if offer.kind == "cross_sell":  # the suit buyer wants the ties: complements matter
            trig = _mask(offer.trigger_categories, MERCHANT_TYPES[market.merchant_type].categories)
            buys_trigger = -np.expm1(-8.0 * pop.affinity[:, trig].sum(axis=1))
            rel = np.where(rel > 0, np.minimum(1.0, rel + 0.3), 0.0) * buys_trigger
        resp = (0.15 + 0.75 * pop.promo) * -np.expm1(-depth / 0.08)
    return np.clip(_distance_factor(offer, pop) * rel * resp, 0.0, 0.95), rel


def compile_offer(offer: Offer, pop: Population, market: Market, keys: np.ndarray, *,
                  start: int, exposed: np.ndarray) -> Effect:
    """The offer as it acts on these customers from day ``start`` for ``offer.days`` days."""
    p, rel = engage_probability(offer, pop, market, start)
    engaged = exposed & (crn.uniform(keys, start, SLOT_ENGAGE) < p)
    depth = offer_depth(offer, market)
    cats = MERCHANT_TYPES[market.merchant_type].categories
    k = offer.kind
    zeros = np.zeros(pop.n)
    # A cross-sell coupon after a purchase is a reason to come back: a bigger visit lift.
    lift = {"discount": 1.2 * depth * rel, "cross_sell": 6.0 * depth * rel,
            "membership": np.full(pop.n, 0.2), "points": np.full(pop.n, 0.05 + 3 * depth),
            "partner": zeros}[k]
    boost = 4.0 * depth * rel * (1 + pop.promo) if k in ("discount", "cross_sell") else (
        np.full(pop.n, 0.15) if k == "membership" else zeros)
    churn = {"membership": 0.5, "points": 0.8, "partner": 0.95}.get(k, 1 - 0.3 * depth)
    return Effect(
        kind=k, start=start, end=start + offer.days, exposed=exposed, engaged=engaged,
        qual_cat=_mask(offer.categories, cats), qual_tier=_mask(offer.tiers, TIERS),
        organic_only=offer.organic_only, pct=offer.pct / 100.0, amount=offer.amount,
        trigger=np.array([c in offer.trigger_categories for c in cats]),
        visit_lift=lift, line_boost=boost, tier_shift=3.0 * depth if offer.tiers else 0.0,
        stockpile=2.0 * depth * pop.promo if k in ("discount", "cross_sell") else zeros,
        churn_mult=np.full(pop.n, churn), fee_exposure=offer.fee_per_exposure,
        fee_redemption=offer.fee_per_redemption, monthly_fee=offer.monthly_fee,
        points_rate=offer.earn_rate * offer.point_value if k == "points" else 0.0)
