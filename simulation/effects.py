"""From an Offer to per-twin effect arrays the engines apply.

Everything an offer does to a twin is computed once, before the simulation, as arrays of
length n: who is targeted, the share of the twin's spend the offer applies to (expected
category × tier × organic shares, so no per-day basket split is needed), the discount rate on
that spend, the probability of taking it (from the response model), the lifts, the gross
margin of eligible goods, and the list price of a cross-sold item. Targeting filters are
evaluated on the twin attribute table (``twins.schema`` levels; other columns such as
``persona`` or ``owner`` by equality).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from retail.catalogue import Catalogue, default_catalogue
from retail.offers import Filter, Offer, parse_filter
from retail.schema import REGIONS, TIERS, distance_km
from simulation.behaviour import OfferTerms, partner_daily_probability
from simulation.params import TwinParams
from simulation.response import OfferFeatures, ResponseModel, get_response_model
from twins.schema import SCHEMA, CohortFilter
from twinsim.errors import CohortTooSmall, OfferError

__all__ = [
    "COUPON_DAYS",
    "GEO_SCALE_KM",
    "POINTS_REDEEMED_SHARE",
    "OfferEffect",
    "build_effect",
    "catalogue_matrices",
    "covered_visit_probability",
    "item_shares",
    "margin_rate",
    "target_mask",
    "trigger_recent",
]

F32 = np.float32
GEO_SCALE_KM = 150.0  # an offer 150 km away is worth 1/e of one next door
POINTS_REDEEMED_SHARE = 0.8  # points earned that are eventually redeemed (the rest expire)
USE_P_MIN = 1e-3  # a discount's smallest chance that a visit holds a covered item
COUPON_DAYS = 60  # a cross-sell coupon is good this long after a trigger purchase
PARTNER_VALUE_SCALE = 1000.0  # SEK; partner depth = value / (value + scale)
_MODE = {"discount": "per_visit", "cross_sell": "per_visit", "membership": "persistent",
         "points": "persistent", "partner": "partner"}


@dataclass(frozen=True, kw_only=True, eq=False)
class OfferEffect:
    """Per-twin effect arrays of one offer (float32 unless noted) and its scalar terms."""

    offer: Offer | None
    terms: OfferTerms
    targeted: np.ndarray  # bool
    eligible_share: np.ndarray
    discount_rate: np.ndarray
    p_event: np.ndarray
    visit_lift: np.ndarray
    basket_lift: np.ndarray
    pull_forward: np.ndarray
    churn_mult: np.ndarray
    margin_eligible: np.ndarray
    cross_item: np.ndarray
    # covered spend of a redeemed visit relative to the average (behaviour.offer_purchase);
    # empty: ones
    cost_mult: np.ndarray = field(default_factory=lambda: np.ones(0, dtype=F32))
    # churn multiplier of an exposed twin in a per-visit offer's window: its takers' lower
    # churn weighted by its chance of taking the offer; empty: ones
    contact_churn_mult: np.ndarray = field(default_factory=lambda: np.ones(0, dtype=F32))
    # a discount's taker redeems on a visit holding a covered item: that chance per visit
    # (covered_visit_probability, OfferTerms.takers); empty: ones
    use_p: np.ndarray = field(default_factory=lambda: np.ones(0, dtype=F32))

    def __post_init__(self) -> None:
        n = len(self.targeted)
        for name in ("cost_mult", "contact_churn_mult", "use_p"):
            if getattr(self, name).size == 0 and n:
                object.__setattr__(self, name, np.ones(n, dtype=F32))
        if n and (self.use_p.min() <= 0 or self.use_p.max() > 1):
            raise ValueError("OfferEffect.use_p: probabilities must lie in (0, 1]")
        for name in ("cost_mult", "contact_churn_mult", "use_p", "eligible_share", "discount_rate",
                     "p_event", "visit_lift", "basket_lift", "pull_forward", "churn_mult",
                     "margin_eligible", "cross_item"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValueError(f"OfferEffect.{name}: shape {arr.shape}, expected ({n},)")
        if n and (self.p_event.min() < 0 or self.p_event.max() > 1):
            raise ValueError("OfferEffect.p_event: probabilities must lie in [0, 1]")

    @property
    def n(self) -> int:
        return len(self.targeted)

    def as_control(self) -> OfferEffect:
        """The same twins targeted (so exposure is recorded) but no offer and no fees."""
        return replace(self, terms=OfferTerms(mode="none", start=self.terms.start,
                                              end=self.terms.end))

    @classmethod
    def none(cls, n: int) -> OfferEffect:
        z = np.zeros(n, dtype=F32)
        return cls(offer=None, terms=OfferTerms(), targeted=np.zeros(n, dtype=bool),
                   eligible_share=z, discount_rate=z, p_event=z, visit_lift=z, basket_lift=z,
                   pull_forward=z, churn_mult=np.ones(n, dtype=F32), margin_eligible=z,
                   cross_item=z)


def catalogue_matrices(catalogue: Catalogue) -> tuple[np.ndarray, np.ndarray]:
    """(price, margin) matrices of shape (categories, tiers)."""
    cats = catalogue.categories
    price = np.array([[catalogue.price(c, t) for t in TIERS] for c in cats])
    margin = np.array([[catalogue.margin(c, t) for t in TIERS] for c in cats])
    return price, margin


def margin_rate(params: TwinParams, catalogue: Catalogue) -> np.ndarray:
    """Gross margin as a share of each twin's spend, from its category and tier shares."""
    _, m = catalogue_matrices(catalogue)
    return ((params.category_w @ m.astype(F32)) * params.tier_p).sum(axis=1).astype(F32)


def target_mask(params: TwinParams, filters: tuple[Filter, ...]) -> np.ndarray:
    """Twins satisfying every filter; errors name the filter and the known attributes."""
    if not filters:
        return np.ones(params.n, dtype=bool)
    table = params.attributes
    if table is None:
        raise OfferError("offer target: these twins carry no attribute table to filter on")
    keep = np.ones(params.n, dtype=bool)
    for f in filters:  # a directly constructed Offer may carry filter strings
        keep &= _filter_mask(table, f if isinstance(f, Filter) else parse_filter(str(f)))
    return keep


def _filter_mask(table: pl.DataFrame, f: Filter) -> np.ndarray:
    if f.attribute in SCHEMA and f.attribute in table.columns:
        clause = f"{f.attribute}={f.value}" if f.op == "in" else str(f)
        try:
            return CohortFilter.parse([clause]).mask(table)
        except ValueError as exc:
            raise OfferError(f"offer target filter {str(f)!r}: {exc}") from None
    if f.attribute in table.columns and f.op in ("=", "!=", "in"):
        hit = np.isin(table[f.attribute].cast(pl.String).to_numpy(), f.values)
        return ~hit if f.op == "!=" else hit
    known = sorted(set(table.columns))
    raise OfferError(f"offer target filter {str(f)!r}: unknown attribute {f.attribute!r} "
                     f"(or an ordering on a non-schema column); known: {known}")


def item_shares(params: TwinParams, catalogue: Catalogue | None = None) -> np.ndarray:
    """(n, C) each category's share of a twin's *items*: spend shares divided by the
    tier-weighted prices it pays (a suit takes a large share of spend but few items)."""
    price, _ = catalogue_matrices(catalogue or default_catalogue(params.merchant_type))
    per_cat = params.tier_p.astype(np.float64) @ price.T  # (n, C) price the twin pays
    units = params.category_w.astype(np.float64) / np.maximum(per_cat, 1e-9)
    return units / np.maximum(units.sum(axis=1, keepdims=True), 1e-12)


def covered_visit_probability(params: TwinParams, offer: Offer,
                              catalogue: Catalogue | None = None) -> np.ndarray:
    """Per twin: the probability that a visit's basket holds at least one item the offer
    covers (its categories' item share × tier share × organic share, items per visit)."""
    cats = params.categories
    cmask = np.array([not offer.categories or c in offer.categories for c in cats])
    tmask = np.array([not offer.tiers or t in offer.tiers for t in TIERS])
    share = item_shares(params, catalogue)[:, cmask].sum(axis=1) * params.tier_p[:, tmask].sum(
        axis=1)
    if offer.organic_only:
        share = share * params.organic_p
    share = np.clip(share, 0.0, 1.0)
    return 1.0 - np.power(1.0 - share, np.maximum(params.items.astype(np.float64), 1.0))


def trigger_recent(params: TwinParams, trigger: np.ndarray, days: float,
                   catalogue: Catalogue | None = None) -> np.ndarray:
    """Per twin: the probability of at least one purchase in the categories of the 0/1 mask
    ``trigger`` within ``days`` (visit rate × days visits, items per visit, and the
    categories' share of the twin's items, :func:`item_shares`)."""
    t_share = np.clip(item_shares(params, catalogue) @ trigger, 0.0, 1.0)
    per_visit = 1.0 - np.power(1.0 - t_share, np.maximum(params.items.astype(np.float64), 1.0))
    return (1.0 - np.power(1.0 - per_visit, params.visit_rate.astype(np.float64) * days)
            ).astype(F32)


def _geo(params: TwinParams, location: str | None) -> np.ndarray:
    if location is None:
        return np.ones(params.n, dtype=F32)
    d = np.array([distance_km(r.name, location) for r in REGIONS])
    return np.exp(-d / GEO_SCALE_KM).astype(F32)[params.region]


def build_effect(offer: Offer, params: TwinParams, catalogue: Catalogue | None = None, *,
                 response: ResponseModel | None = None, min_cohort: int = 1,
                 trigger_hold: np.ndarray | None = None) -> OfferEffect:
    """The per-twin effect of ``offer`` on ``params`` (raises OfferError / CohortTooSmall).

    A cross-sell's coupon is held by twins who bought a trigger category in the last
    ``COUPON_DAYS``: its uptake and visit lift are scaled by each twin's probability of that
    (from visit rate, items per visit and trigger spend share), or by ``trigger_hold`` when
    given (e.g. a cohort selected for recent trigger purchases).
    """
    if trigger_hold is not None and len(trigger_hold) != params.n:
        raise ValueError(f"trigger_hold: length {len(trigger_hold)} != {params.n} twins")
    offer.check_categories(params.merchant_type)
    catalogue = catalogue or default_catalogue(params.merchant_type)
    if catalogue.merchant_type != params.merchant_type:
        raise OfferError(f"catalogue is for a {catalogue.merchant_type}, twins are "
                         f"{params.merchant_type} customers")
    targeted = target_mask(params, offer.target)
    if int(targeted.sum()) < min_cohort:
        targets = ", ".join(map(str, offer.target)) or "(none)"
        raise CohortTooSmall(f"offer {offer.name!r}: target filters [{targets}] select "
                             f"{int(targeted.sum())} of {params.n} twins (minimum {min_cohort}); "
                             "loosen the filters or use a larger cohort")
    ec = _economics(offer, params, catalogue)
    if trigger_hold is not None:
        ec["trigger_p"] = np.clip(np.asarray(trigger_hold, dtype=F32), 0.0, 1.0)
    feats = OfferFeatures(kind=offer.kind, days=offer.days, depth=ec["depth"],
                          relevance=ec["relevance"], geo=_geo(params, offer.location),
                          fee_burden=ec["fee_burden"], targeted=targeted,
                          tiered=bool(offer.tiers))
    resp = (response or get_response_model()).respond(params, feats)
    p, visit_lift = resp.p_redeem, resp.visit_lift
    if offer.kind == "cross_sell":  # only recent buyers of a trigger get the coupon
        p = p * ec["trigger_p"]
        visit_lift = (visit_lift * ec["trigger_p"]).astype(F32)
    elif offer.kind == "partner":
        p = partner_daily_probability(p, offer.days)
    contact = resp.contact_churn_mult
    if offer.kind in ("discount", "cross_sell"):  # only takers churn less: its expected share
        contact = (1.0 - (1.0 - contact) * np.clip(p, 0.0, 1.0)).astype(F32)
    takers = offer.kind == "discount"
    use_p = (np.clip(covered_visit_probability(params, offer, catalogue), USE_P_MIN, 1.0)
             if takers else np.ones(params.n)).astype(F32)
    terms = OfferTerms(mode=_MODE[offer.kind], takers=takers, start=offer.start_day,
                       end=offer.end_day,
                       fee_per_exposure=offer.fee_per_exposure,
                       fee_per_redemption=offer.fee_per_redemption,
                       fee_daily=offer.monthly_fee * 12.0 / 365.0)
    return OfferEffect(offer=offer, terms=terms, targeted=targeted,
                       eligible_share=ec["eligible_share"], discount_rate=ec["rate"],
                       p_event=np.asarray(p, dtype=F32), visit_lift=visit_lift,
                       basket_lift=resp.basket_lift, pull_forward=resp.pull_forward,
                       churn_mult=resp.churn_mult, margin_eligible=ec["margin_eligible"],
                       cross_item=ec["cross_item"], cost_mult=resp.cost_mult,
                       contact_churn_mult=contact, use_p=use_p)


def _economics(offer: Offer, params: TwinParams, catalogue: Catalogue) -> dict[str, np.ndarray]:
    """Eligible share, margin and item price of eligible goods, rate, depth, relevance."""
    price, marg = catalogue_matrices(catalogue)
    cats = params.categories
    cmask = np.array([not offer.categories or c in offer.categories for c in cats], dtype=F32)
    tmask = np.array([not offer.tiers or t in offer.tiers for t in TIERS], dtype=F32)
    w, tp = params.category_w * cmask, params.tier_p * tmask
    share = (w.sum(axis=1) * tp.sum(axis=1)).astype(F32)
    organic = params.organic_p if offer.organic_only else np.ones(params.n, dtype=F32)
    eligible = share * organic
    safe = np.maximum(share, 1e-9)
    m_el = ((w @ marg.astype(F32)) * tp).sum(axis=1) / safe
    m_el = np.where(share > 1e-9, m_el, float(marg[cmask > 0][:, tmask > 0].mean()))
    markup = 1.25 if offer.organic_only else 1.0
    per_sek = ((w @ (1.0 / price).astype(F32)) * tp).sum(axis=1)
    avg_price = np.where(per_sek > 0, safe / np.maximum(per_sek, 1e-12), price.mean()) * markup
    rate = np.minimum(offer.pct / 100.0 + offer.amount / avg_price, 1.0)
    rel = eligible.copy()
    trigger_p = np.ones(params.n, dtype=F32)
    cross = np.zeros(params.n, dtype=F32)
    fee = np.zeros(params.n, dtype=F32)
    depth = rate
    if offer.kind == "cross_sell":
        trig = np.array([c in offer.trigger_categories for c in cats], dtype=F32)
        trigger_p = trigger_recent(params, trig, COUPON_DAYS, catalogue)
        tier_price = (tp @ price.T.astype(F32)) / np.maximum(tp.sum(axis=1, keepdims=True), 1e-9)
        cross = (tier_price[:, cmask > 0].mean(axis=1) * markup).astype(F32)
        rel = np.ones(params.n, dtype=F32)
    elif offer.kind == "partner":
        depth = np.full(params.n, offer.partner_value / (offer.partner_value
                                                         + PARTNER_VALUE_SCALE))
        rate = np.zeros(params.n)
        rel = np.ones(params.n, dtype=F32)
    elif offer.kind == "points":
        depth = np.full(params.n, offer.earn_rate * offer.point_value)
        rate = np.minimum(depth * POINTS_REDEEMED_SHARE, 1.0)
    elif offer.kind == "membership":
        monthly = 30.0 * params.visit_rate * params.basket_mean
        fee = np.clip(offer.monthly_fee / np.maximum(monthly, 1.0), 0.0, 10.0)
    return {"eligible_share": eligible.astype(F32), "margin_eligible": m_el.astype(F32),
            "rate": np.asarray(rate, dtype=F32), "depth": np.asarray(depth, dtype=F32),
            "relevance": np.asarray(rel, dtype=F32), "trigger_p": trigger_p.astype(F32),
            "cross_item": cross, "fee_burden": np.asarray(fee, dtype=F32)}

