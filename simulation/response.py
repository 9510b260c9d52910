"""How twins respond to an offer: the ResponseModel protocol, the parametric default, a registry.

A response model maps (TwinParams, OfferFeatures) to per-twin arrays: the probability of
taking the offer (:class:`Response`) and the lifts it causes. The parametric default is a
logistic model with documented coefficients; ``calibrate`` refits the kind's intercept to an
observed redemption rate (later fed by DP campaign aggregates). A learned model (e.g. the
federated DP-SGD torch model) plugs in through the same protocol and :func:`register`.

Meaning of ``p_redeem`` by kind: discount / cross-sell — probability of redeeming on a
qualifying visit in the window; membership / points — probability of joining on a visit in the
window; partner — probability of redeeming once over the whole window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol, runtime_checkable

import numpy as np

from retail.offers import KINDS
from simulation.params import TwinParams

__all__ = [
    "OfferFeatures",
    "ParametricResponse",
    "Response",
    "ResponseModel",
    "get_response_model",
    "register",
    "response_models",
]

F32 = np.float32


@dataclass(frozen=True, kw_only=True, eq=False)
class OfferFeatures:
    """What a twin sees of an offer (arrays of length n, except ``kind`` and ``days``).

    depth: value as a fraction of price (pct off, points value per SEK, partner value
    scaled to [0, 1]); relevance: share of the twin's spend the offer applies to (1 for
    partner offers, whose relevance comes from targeting); geo: ``exp(−distance/150 km)``
    to the offer's location (1 without a location); fee_burden: a membership's fee as a
    share of the twin's expected monthly spend (0 for other kinds).
    """

    kind: str
    days: int
    depth: np.ndarray
    relevance: np.ndarray
    geo: np.ndarray
    fee_burden: np.ndarray
    targeted: np.ndarray | None = None  # bool, the twins the offer goes to (None: all)
    tiered: bool = False  # the offer covers some price tiers only (takers trade up)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"OfferFeatures.kind: {self.kind!r} not in {KINDS}")
        n = len(self.depth)
        for name in ("relevance", "geo", "fee_burden", "targeted"):
            if getattr(self, name) is not None and len(getattr(self, name)) != n:
                raise ValueError(f"OfferFeatures.{name}: length {len(getattr(self, name))} != {n}")


@dataclass(frozen=True, kw_only=True, eq=False)
class Response:
    """Per-twin response arrays (float32, length n)."""

    p_redeem: np.ndarray
    visit_lift: np.ndarray
    basket_lift: np.ndarray
    pull_forward: np.ndarray
    churn_mult: np.ndarray
    # covered spend of a redeemed visit relative to the average; empty: ones
    cost_mult: np.ndarray = field(default_factory=lambda: np.ones(0, dtype=F32))
    # churn multiplier of a per-visit offer's takers in its window; empty: ones
    contact_churn_mult: np.ndarray = field(default_factory=lambda: np.ones(0, dtype=F32))

    def __post_init__(self) -> None:
        for name in ("cost_mult", "contact_churn_mult"):
            arr = getattr(self, name)
            if arr.size == 0 and self.p_redeem.size:
                object.__setattr__(self, name, np.ones(self.p_redeem.size, dtype=F32))
            elif arr.size and arr.min() < 0:
                raise ValueError(f"Response.{name}: must be >= 0")
        if self.p_redeem.size and (self.p_redeem.min() < 0 or self.p_redeem.max() > 1):
            raise ValueError("Response.p_redeem: probabilities must lie in [0, 1]")
        if self.churn_mult.size and self.churn_mult.min() < 0:
            raise ValueError("Response.churn_mult: must be >= 0")


@runtime_checkable
class ResponseModel(Protocol):
    """Per-twin response to an offer; ``name`` identifies the model in results."""

    @property
    def name(self) -> str: ...

    def respond(self, params: TwinParams, features: OfferFeatures) -> Response: ...


_INTERCEPT = {"discount": -1.6, "cross_sell": -1.2, "partner": -2.5, "membership": -3.5,
              "points": -2.0}
_CHURN_MULT = {"membership": 0.6, "points": 0.85}
_MEMBER_VISIT_LIFT = {"membership": 0.10, "points": 0.04}


@dataclass(frozen=True, kw_only=True)
class ParametricResponse:
    """Logistic response with documented coefficients.

    ``logit p = intercept[kind] + b_depth·depth·geo·(0.5 + price_sens)
    + b_promo·(promo_prone − 0.5) + b_relevance·log(max(relevance, 0.001)) − b_fee·fee_burden /
    (1 + fee_burden)`` (a fee far above the twin's monthly spend deters it no more than one
    equal to it: some join anyway; the floor of 0.001 keeps a twin that buys almost none of
    the covered goods from weighing as one that buys 2 % of its spend in them),
    then ``p_redeem = geo · sigmoid(logit)`` (a far-away offer is rarely taken).
    Visit lift (exposed twins in the window, or enrolled members): ``c_visit·depth·
    relevance^relevance_power·geo·(0.5 + promo_prone)`` (only takers come more often, and both
    the share who take it and a taker's reason to come grow with relevance) plus a fixed
    member lift for membership/points; a cross-sell's applies to the twins who get the coupon
    (a reason to come back), none for partner offers (redeemed at the partner). Basket lift of
    a redeemed visit: ``c_basket·depth·(0.5 + price_sens)``; ``pull_forward`` of that comes out
    of later baskets (per-visit kinds only; about a third of a promotion's extra sales are
    purchases brought forward, after Van Heerde, Leeflang & Wittink 2004, "Decomposing the
    sales promotion bump with store data"). Members churn at ``churn_mult`` times the hazard;
    the takers of a discount or cross-sell churn at ``1 − taker_retention·depth`` times it
    while it runs (an offer a customer uses keeps some who would have left; not identifiable
    from released aggregates, so a prior). ``contact_churn_mult`` is that multiplier; the
    effect (:func:`simulation.effects.build_effect`) weights it by each exposed twin's chance
    of taking the offer.
    """

    name: str = "parametric"
    intercept: dict[str, float] = field(default_factory=lambda: dict(_INTERCEPT))
    b_depth: float = 5.0
    b_promo: float = 2.0
    b_relevance: float = 0.6
    b_fee: float = 3.0
    c_visit: float = 0.8
    c_basket: float = 1.5
    pull_forward: float = 1.0 / 3.0
    relevance_power: float = 1.5
    taker_retention: float = 0.25
    churn_mult: dict[str, float] = field(default_factory=lambda: dict(_CHURN_MULT))
    member_visit_lift: dict[str, float] = field(default_factory=lambda: dict(_MEMBER_VISIT_LIFT))

    def __post_init__(self) -> None:
        missing = set(KINDS) - set(self.intercept)
        if missing:
            raise ValueError(f"ParametricResponse.intercept: missing kinds {sorted(missing)}")
        if not 0 <= self.pull_forward <= 1:
            raise ValueError(f"ParametricResponse.pull_forward: must be in [0, 1], got "
                             f"{self.pull_forward}")
        if not 0 <= self.taker_retention <= 1:
            raise ValueError(f"ParametricResponse.taker_retention: must be in [0, 1], got "
                             f"{self.taker_retention}")
        for name in ("b_depth", "b_fee", "c_visit", "c_basket", "relevance_power"):
            if getattr(self, name) < 0:
                raise ValueError(f"ParametricResponse.{name}: must be >= 0")

    def probability(self, params: TwinParams, f: OfferFeatures,
                    shift: float = 0.0) -> np.ndarray:
        logit = (self.intercept[f.kind] + shift
                 + self.b_depth * f.depth * f.geo * (0.5 + params.price_sens)
                 + self.b_promo * (params.promo_prone - 0.5)
                 + self.b_relevance * np.log(np.maximum(f.relevance, 0.001))
                 - self.b_fee * f.fee_burden / (1.0 + f.fee_burden))
        return (f.geo / (1.0 + np.exp(-logit))).astype(F32)

    def respond(self, params: TwinParams, features: OfferFeatures) -> Response:
        f, k = features, features.kind
        # only takers come more often, and both the share who take it and a taker's reason
        # to come grow with relevance: the exposed twin's expected lift goes with relevance²
        visit = (self.c_visit * f.depth * np.power(f.relevance, self.relevance_power) * f.geo
                 * (0.5 + params.promo_prone))
        visit = visit + self.member_visit_lift.get(k, 0.0) * f.geo
        if k == "partner":  # redeemed at the partner: no extra trips here
            visit = np.zeros_like(visit)
        basket = self.c_basket * f.depth * (0.5 + params.price_sens)
        per_visit = k in ("discount", "cross_sell")
        n = params.n
        return Response(
            p_redeem=self.probability(params, f),
            visit_lift=visit.astype(F32),
            basket_lift=(basket if k != "partner" else np.zeros(n)).astype(F32),
            pull_forward=np.full(n, self.pull_forward if per_visit else 0.0, dtype=F32),
            churn_mult=np.full(n, self.churn_mult.get(k, 1.0), dtype=F32),
            contact_churn_mult=(np.clip(1.0 - self.taker_retention * f.depth, 0.0, 1.0)
                                if per_visit else np.ones(n)).astype(F32))

    def calibrate(self, params: TwinParams, features: OfferFeatures, *,
                  observed_rate: float, opportunities: np.ndarray) -> ParametricResponse:
        """A copy whose intercept for ``features.kind`` reproduces an observed redemption rate.

        ``observed_rate`` is the share of exposed customers who redeemed at least once;
        ``opportunities`` the expected number of chances per twin (qualifying visits in the
        window; 1 for partner offers). Solved by bisection on the intercept shift.
        """
        if not 0 < observed_rate < 1:
            raise ValueError(f"observed_rate: must be in (0, 1), got {observed_rate}")
        k = np.asarray(opportunities, dtype=float)

        def rate(shift: float) -> float:
            p = self.probability(params, features, shift).astype(float)
            return float(np.mean(1.0 - np.power(1.0 - p, k)))

        lo, hi = -20.0, 20.0
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if rate(mid) < observed_rate else (lo, mid)
        intercept = dict(self.intercept)
        intercept[features.kind] += 0.5 * (lo + hi)
        return replace(self, intercept=intercept)


_REGISTRY: dict[str, Callable[[], ResponseModel]] = {"parametric": ParametricResponse}


def register(name: str, factory: Callable[[], ResponseModel]) -> None:
    """Make a response model available by name (e.g. a learned federated model)."""
    if not name or not name.isidentifier():
        raise ValueError(f"response model name: {name!r} is not an identifier")
    _REGISTRY[name] = factory


def get_response_model(name: str = "parametric") -> ResponseModel:
    try:
        return _REGISTRY[name]()
    except KeyError:
        raise ValueError(f"response model {name!r}: unknown; known: {sorted(_REGISTRY)}") from None


def response_models() -> tuple[str, ...]:
    return tuple(sorted(_REGISTRY))
