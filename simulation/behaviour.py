"""The behaviour specification: pure decision rules of a twin, one day at a time.

Every function here is pure: it maps (parameters, state, day, offer effect, random draws) to
a decision, and works on Python/numpy scalars (the reference engine, one agent at a time) and
on numpy arrays (the vectorised engine, all twins at once). The engines only apply them.

A day of one twin, in this order (both engines follow it; each twin's draws for a day do not
depend on what the offer did, so treatment and control see the same random numbers):

1. On the offer's start day, a targeted twin that is still a customer is *exposed*
   (a partner pays ``fee_per_exposure`` for it); for a membership or points offer it joins
   right then when ``u_redeem < p_event`` (sign-up when the offer arrives), and a discount
   (``OfferTerms.takers``) is *taken* (the twin is ``enrolled``) the same way: ``p_event``
   is then the share of exposed twins who take it. Every offer acts for its ``days`` only:
   a membership's benefits and fees end with its window.
2. Churn: an active twin leaves for good when ``u_churn < hazard · mult``: ``churn_mult``
   for members and points holders in the window, ``contact_churn`` for twins exposed to a
   per-visit offer (discount, cross-sell) in its window (an offer a customer takes keeps some
   who would have left: the takers' lower churn weighted by the twin's chance of taking it,
   see :func:`simulation.effects.build_effect`), 1 otherwise.
3. Visit: when ``u_visit < rate · weekday · (1 + amp·cos(2π(day−phase)/14)) · (1 + lift)``;
   ``lift`` is the offer's visit lift for exposed twins in the window (per-visit offers) or
   for members in the window (membership, points).
4. Basket: lognormal ``exp(mu + sigma·z)`` with the twin's mean and CV, minus goods still in
   the pantry from pull-forward buying (``stock``, eligible categories only).
5. Offer: a discount's taker redeems it on each of its visits in the window whose basket
   holds a covered item, when ``u < use_p`` (``use_p``: the twin's chance that a visit holds
   one; ``u`` is ``u_redeem``, on the start day ``u_redeem / p_event``, which is uniform
   given that the twin took the offer); a cross-sell coupon is redeemed on a visit in the
   window when ``u_redeem < p_event``; a membership/points offer applies to every visit of
   a member in the window. A redeemed visit buys ``basket_lift`` more eligible goods
   (``pull_forward`` of which comes out of later baskets) plus, for a cross-sell, one item
   of the target categories; the discount ``rate`` applies to all eligible spend. A redeemed
   visit's covered spend is ``cost_mult`` times the twin's average eligible share of the
   basket, divided by ``use_p`` for a discount (the covered goods of a visit that holds
   some; over all visits they average the share); takers buy more of them than the average
   twin: ``cost_mult`` is calibrated to the discount cost of past campaigns, 1
   uncalibrated; ``basket_lift`` is relative to that covered spend. A discount's expected
   cost and extra spend per exposed twin are thus ``p_event`` times those of redeeming on
   every visit, while only its takers redeem, as the past campaigns' redemption counts do.
   A partner offer is redeemed at the partner, at most once, with daily probability
   ``p_event``, paying the merchant ``fee_per_redemption``.
6. Members pay ``fee_daily`` every day of the window they are active.

Money: ``revenue = basket + extra − cost`` (discounts and earned points are booked when
given); ``margin = margin_rate·basket + margin_eligible·extra − cost``; ``cannibal`` is the
discount given on spend the twin would have made anyway at full price (the redeemed visit's
covered spend, ``cost_mult × basket × eligible_share``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "MODES",
    "NO_OUTCOME",
    "AgentInputs",
    "AgentState",
    "DayDraws",
    "DayOutcome",
    "OfferTerms",
    "agent_day",
    "basket_log_params",
    "basket_value",
    "consume_stock",
    "day_margin",
    "offer_purchase",
    "partner_daily_probability",
    "rhythm_factor",
    "survives",
    "visit_probability",
]

MODES: tuple[str, ...] = ("none", "per_visit", "persistent", "partner")
_TWO_PI_14 = 2.0 * math.pi / 14.0


def survives(hazard: Any, churn_mult: Any, u: Any) -> Any:
    """True when the twin stays a customer today."""
    return u >= hazard * churn_mult


def rhythm_factor(amp: Any, phase: Any, day: int) -> Any:
    """The two-week rhythm (bonus children every other week): mean 1 over 14 days."""
    return 1.0 + amp * np.cos(_TWO_PI_14 * (day - phase))


def visit_probability(rate: Any, weekday_w: Any, amp: Any, phase: Any, day: int,
                      lift: Any = 0.0) -> Any:
    """Probability of a purchase day; ``weekday_w`` is the twin's weight for ``day % 7``."""
    return np.minimum(rate * weekday_w * rhythm_factor(amp, phase, day) * (1.0 + lift), 1.0)


def basket_log_params(mean: Any, cv: Any) -> tuple[Any, Any]:
    """(mu, sigma) of the lognormal with the given mean and coefficient of variation."""
    sigma = np.sqrt(np.log1p(cv * cv))
    return np.log(mean) - 0.5 * sigma * sigma, sigma


def basket_value(mu: Any, sigma: Any, z: Any) -> Any:
    """Spend of one purchase day from a standard normal draw ``z``."""
    return np.exp(mu + sigma * z)


def consume_stock(basket: Any, eligible_share: Any, stock: Any) -> tuple[Any, Any]:
    """Goods bought earlier (pull-forward) replace part of today's eligible spend."""
    used = np.minimum(stock, basket * eligible_share)
    return basket - used, stock - used


class Purchase(NamedTuple):
    extra: Any  # spend the offer added (lifted eligible goods + cross-sell item), list price
    cost: Any  # discount given (or points earned), SEK
    cannibal: Any  # discount given on spend that would have happened anyway
    stock_add: Any  # goods bought now instead of later


def offer_purchase(basket: Any, eligible_share: Any, rate: Any, basket_lift: Any,
                   pull_forward: Any, cross_item: Any, cost_mult: Any = 1.0) -> Purchase:
    """What a redeemed visit buys and costs."""
    covered = basket * eligible_share * cost_mult
    lifted = covered * basket_lift
    extra = lifted + cross_item
    return Purchase(extra=extra, cost=rate * (covered + extra), cannibal=rate * covered,
                    stock_add=pull_forward * lifted)


def day_margin(basket: Any, extra: Any, margin_rate: Any, margin_eligible: Any,
               cost: Any) -> Any:
    """Gross margin of a purchase day, net of the offer's cost."""
    return margin_rate * basket + margin_eligible * extra - cost


def partner_daily_probability(p_window: Any, days: int) -> Any:
    """Daily redemption probability giving ``p_window`` over a window of ``days``."""
    return 1.0 - np.power(1.0 - np.minimum(p_window, 0.999999), 1.0 / days)


@dataclass(frozen=True, kw_only=True)
class OfferTerms:
    """The scalar terms of an offer as the engines need them (``mode`` in MODES)."""

    mode: str = "none"
    takers: bool = False  # per-visit offer taken once on its start day (a discount)
    start: int = 0
    end: int = 0
    fee_per_exposure: float = 0.0
    fee_per_redemption: float = 0.0
    fee_daily: float = 0.0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"OfferTerms.mode: {self.mode!r} not in {MODES}")
        if self.takers and self.mode != "per_visit":
            raise ValueError(f"OfferTerms.takers: only for per_visit offers, not {self.mode!r}")
        if not 0 <= self.start <= self.end:
            raise ValueError(f"OfferTerms.start/end: need 0 <= start <= end, got "
                             f"{self.start}, {self.end}")


class AgentInputs(NamedTuple):
    """One twin's parameters and offer effect, as scalars (see TwinParams and OfferEffect)."""

    rate: float
    weekday: tuple[float, ...]
    amp: float
    phase: float
    hazard: float
    mu: float
    sigma: float
    margin_rate: float
    targeted: bool = False
    eligible_share: float = 0.0
    discount_rate: float = 0.0
    p_event: float = 0.0
    visit_lift: float = 0.0
    basket_lift: float = 0.0
    pull_forward: float = 0.0
    churn_mult: float = 1.0
    margin_eligible: float = 0.0
    cross_item: float = 0.0
    cost_mult: float = 1.0
    contact_churn: float = 1.0
    use_p: float = 1.0


class AgentState(NamedTuple):
    active: bool
    days_since: int
    stock: float = 0.0
    exposed: bool = False
    enrolled: bool = False
    redeemed: bool = False


class DayDraws(NamedTuple):
    """The four draws a twin consumes every day, in this order."""

    u_churn: float
    u_visit: float
    z_basket: float
    u_redeem: float


class DayOutcome(NamedTuple):
    visit: bool = False
    revenue: float = 0.0
    margin: float = 0.0
    cost: float = 0.0
    cannibal: float = 0.0
    redemptions: int = 0
    income: float = 0.0


NO_OUTCOME = DayOutcome()  # shared by every twin-day without a purchase, redemption or fee


def agent_day(x: AgentInputs, s: AgentState, terms: OfferTerms, day: int,
              d: DayDraws) -> tuple[AgentState, DayOutcome]:
    """One twin, one day: the whole specification above, on scalars."""
    income = 0.0
    exposed = s.exposed
    if day == terms.start and x.targeted and s.active:
        exposed = True
        income += terms.fee_per_exposure
    window = exposed and terms.start <= day < terms.end
    enrolled = s.enrolled
    redemptions = 0
    joins = terms.mode == "persistent" or terms.takers
    if (joins and day == terms.start and exposed and not enrolled
            and d.u_redeem < x.p_event):  # members join (takers take) when the offer arrives
        enrolled = True
        redemptions = int(terms.mode == "persistent")
    member = enrolled and window and terms.mode == "persistent"  # acts while it runs
    contacted = window and terms.mode == "per_visit"
    mult = x.churn_mult if member else (x.contact_churn if contacted else 1.0)
    active = s.active and bool(survives(x.hazard, mult, d.u_churn))
    benefit = member if terms.mode == "persistent" else (window and terms.mode == "per_visit")
    p = visit_probability(x.rate, x.weekday[day % 7], x.amp, x.phase, day,
                          x.visit_lift if benefit else 0.0)
    visit = active and d.u_visit < p
    redeemed = s.redeemed
    if terms.mode == "partner" and window and active and not redeemed and d.u_redeem < x.p_event:
        redeemed, redemptions = True, 1
        income += terms.fee_per_redemption
    if member and active:
        income += terms.fee_daily
    if not visit:
        out = (NO_OUTCOME if not redemptions and not income
               else NO_OUTCOME._replace(redemptions=redemptions, income=income))
        return s._replace(active=active, days_since=s.days_since + 1, exposed=exposed,
                          enrolled=enrolled, redeemed=redeemed), out
    basket, stock = consume_stock(basket_value(x.mu, x.sigma, d.z_basket), x.eligible_share,
                                  s.stock)
    use = False
    if window and terms.mode == "per_visit":
        if terms.takers:  # a taker's visit holding a covered item
            u = d.u_redeem / x.p_event if day == terms.start and enrolled else d.u_redeem
            use = enrolled and u < x.use_p
        else:
            use = d.u_redeem < x.p_event
        redemptions += int(use)
    use = use or (terms.mode == "persistent" and member)
    extra = cost = cannibal = 0.0
    if use:
        mult = x.cost_mult / x.use_p if terms.takers else x.cost_mult
        pur = offer_purchase(basket, x.eligible_share, x.discount_rate, x.basket_lift,
                             x.pull_forward, x.cross_item, mult)
        extra, cost, cannibal = pur.extra, pur.cost, pur.cannibal
        stock = stock + pur.stock_add
    state = AgentState(active=active, days_since=0, stock=float(stock), exposed=exposed,
                       enrolled=enrolled, redeemed=redeemed or use)
    out = DayOutcome(visit=True, revenue=float(basket + extra - cost),
                     margin=float(day_margin(basket, extra, x.margin_rate, x.margin_eligible,
                                             cost)),
                     cost=float(cost), cannibal=float(cannibal), redemptions=redemptions,
                     income=income)
    return state, out
