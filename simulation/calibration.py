"""Calibrate the twins' offer response to the owners' past randomised campaigns.

Input: the DP campaign aggregates of releases (``twins.hub.response_table``: per campaign and
cell of public attributes, noisy exposure counts, redemptions and clamped spend of the
treated and control arms). Output: a :class:`CalibratedResponse`, a
:class:`~simulation.response.ResponseModel` that answers like the parametric model but

1. redeems at the observed rate: per offer kind, a logit shift makes the twins' redemption
   over a past campaign's window match the share observed in its treated arm (see
   ``_window_rate`` for what is matched); the matched rate is the posterior mean of the
   treated arm's rate given its noisy redemption count (binomial + DP noise) and a weak
   prior around the uncalibrated model's rate (``PRIOR_LOGIT_SD`` on the logit scale: the
   model's intercepts are guesses, so only a campaign that says little stays near them;
   :func:`posterior_rate`). Across a kind's campaigns the shifts are regressed on the
   campaigns' mean log relevance (how strongly uptake follows relevance), each weighted by
   its precision (its rate's posterior variance plus an assumed spread of campaigns around
   the model, ``SHIFT_SD_FLOOR``²); their residual spread and the rates' posterior sd are
   the kind's uncertainty;
2. varies by attribute level as observed: per kind, logit offsets per level of each response
   attribute (frequency, promo_share, tier) are raked so the model's rate per level matches
   the observed rate per level; each level's observed rate is combined with the model's own
   rate for the level (scaled to the pooled rate) by precision (binomial + DP noise of the
   level against a departure worth ``prior_n`` customers: noisy cells say little), and no
   level's offset exceeds ``LEVEL_OFFSET_MAX`` on the logit scale; a kind's offsets are its
   campaigns' weighted by their redeemers (a campaign few took up says little about who
   takes such offers up, however many customers it reached);
3. lifts spend as observed: the treated-minus-control spend per exposed customer of each
   campaign sets a factor on the model's visit and basket lifts, solved from two short runs
   of the campaign on the twins (lifts × 0 and × 1: incremental spend is linear in the
   factor to first order); the released discount cost sets a cost factor on takers'
   covered spend, solved jointly with the lift (Newton steps). For a new offer the campaigns
   are combined by a local-linear fit in mean log relevance weighted by information
   (effect² over the noise of the observed quantity, sampling + DP) times a kernel
   (:class:`FactorFits`), shrunk toward 1 by a prior of sd ``FACTOR_PRIOR_SD`` on the log
   scale: a blanket discount learns from past blanket discounts, a narrow one mostly from
   narrow ones, one in between from both. A discount on some price tiers only (its takers
   trade up, so it covers far more than the tier's share of spend) learns from the kind's
   tier campaigns, any other discount from the rest, when the owner ran both
   (:func:`factor_group`).

The past campaigns' terms (``offers``: categories, depth, days) are the owner's business
facts, not customer data, and carry no privacy loss; without them each kind is calibrated on
a public reference offer (:func:`reference_offer`). Past campaigns went to recently active
customers, so calibration runs on twins whose last purchase was within 60 days; a
cross-sell's to those of them who bought a trigger category recently (drawn by each twin's
probability of that, :func:`_campaign_cohort`).

Not identifiable from the releases, hence priors drawn in every prediction round
(:meth:`CalibratedResponse.draw`): how much less a per-visit offer's takers churn
(``ParametricResponse.taker_retention`` ± ``TAKER_RETENTION_SD``), the share of a
redeemed visit's extra goods bought ahead of later baskets (``ParametricResponse.
pull_forward`` ± ``PULL_FORWARD_SD``) and how steeply the
visit lift grows with relevance (``ParametricResponse.relevance_power``, uniform over
``RELEVANCE_POWER_RANGE``; calibration runs at the base model's middle value).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import polars as pl

from retail.offers import Offer
from retail.schema import MERCHANT_TYPES
from simulation.effects import (
    COUPON_DAYS,
    build_effect,
    covered_visit_probability,
    trigger_recent,
)
from simulation.model import MarketModel
from simulation.params import TwinParams
from simulation.response import OfferFeatures, ParametricResponse, Response
from twins.outcomes import DEFAULT_RESPONSE_ATTRIBUTES, spend_clamp
from twins.schema import SCHEMA, TOTAL_ATTRIBUTE

__all__ = [
    "FACTOR_PRIOR_SD",
    "FACTOR_SLOPE_SD",
    "LEVEL_OFFSET_MAX",
    "LIFT_SD_FLOOR",
    "PRIOR_LOGIT_SD",
    "PULL_FORWARD_SD",
    "RELEVANCE_BANDWIDTH",
    "RELEVANCE_POWER_RANGE",
    "SHIFT_SD_FLOOR",
    "TAKER_RETENTION_SD",
    "CalibratedResponse",
    "CampaignFacts",
    "FactorFits",
    "calibrate_response",
    "campaign_facts",
    "posterior_rate",
    "reference_offer",
]

F32 = np.float32
_RECENT = SCHEMA["recency"].code("30_60d")  # last purchase within 60 days
_MAX_TWINS = 20_000
PRIOR_LOGIT_SD = 1.5  # prior sd of a campaign's logit redemption rate around the model's
LEVEL_OFFSET_MAX = 3.0  # |logit offset| of one attribute level (odds within e^±3 ≈ ×20)
SHIFT_SD_FLOOR = 0.3  # minimum logit uncertainty of a kind's calibrated uptake
LIFT_SD_FLOOR = 0.3  # minimum log uncertainty of a kind's lift factor
FACTOR_PRIOR_SD = 0.5  # prior sd of a kind's log lift / cost factor around 0 (factor 1)
FACTOR_SLOPE_SD = 0.5  # prior sd of its change per unit of log relevance
TRIGGER_LOOKBACK_DAYS = 90  # a cross-sell campaign went to buyers of a trigger in this window
RELEVANCE_BANDWIDTH = 1.0  # log relevance: campaigns this far apart inform each other ~60 %
COST_FACTOR_RANGE = (0.25, 8.0)
TAKER_RETENTION_SD = 0.12  # prior sd of the takers' lower churn (not identifiable)
PULL_FORWARD_SD = 0.15  # prior sd of the share of a lift bought ahead (not identifiable)
RELEVANCE_POWER_RANGE = (1.0, 2.0)  # prior range of the visit lift's power of relevance


@dataclass(frozen=True, kw_only=True)
class CampaignFacts:
    """One past campaign as the hub sees it (noisy sums over every attribute cell)."""

    campaign: int
    kind: str
    n_treated: float
    n_control: float
    redeemed_treated: float
    spend_treated: float  # SEK
    spend_control: float  # SEK
    # attr -> (treated n per level, redeemed per level, noise variance of one level's count)
    level_counts: Mapping[str, tuple[np.ndarray, np.ndarray, float]]
    var_redeemed: float = 0.0  # DP noise variance of redeemed_treated
    var_spend: float = 0.0  # DP noise variance of spend_treated (= of spend_control), SEK²
    cov_spend: float = 0.0  # DP noise covariance of spend_treated and spend_control, SEK²
    var_n: float = 0.0  # DP noise variance of n_treated (= of n_control)
    cost_treated: float | None = None  # discount cost given to the treated arm, SEK
    var_cost: float = 0.0  # its DP noise variance, SEK²

    @property
    def effective_n(self) -> float:
        """Treated customers worth of information in the noisy redemption rate."""
        r, n = self.redemption_rate, max(self.n_treated, 1.0)
        binom = r * (1 - r)
        return binom / (binom / n + self.var_redeemed / n ** 2)

    @property
    def redemption_rate(self) -> float:
        return float(np.clip(self.redeemed_treated / max(self.n_treated, 1.0), 1e-4, 0.95))

    @property
    def var_incremental_spend(self) -> float:
        """DP noise variance of :attr:`incremental_spend` (SEK² per customer²): of the arms'
        spend totals and, to first order, of the arm sizes they are divided by."""
        nt, nc = max(self.n_treated, 1.0), max(self.n_control, 1.0)
        spend = self.var_spend * (1 / nt ** 2 + 1 / nc ** 2) - 2 * self.cov_spend / (nt * nc)
        sizes = self.var_n * ((self.spend_treated / nt ** 2) ** 2
                              + (self.spend_control / nc ** 2) ** 2)
        return max(spend, 0.0) + sizes

    @property
    def incremental_spend(self) -> float:
        """Treated minus control mean spend per exposed customer (SEK, clamped spend)."""
        return (self.spend_treated / max(self.n_treated, 1.0)
                - self.spend_control / max(self.n_control, 1.0))


def campaign_facts(table: pl.DataFrame, owner: str | None = None) -> list[CampaignFacts]:
    """Per campaign of ``table`` (``twins.hub.response_table``; optionally of one owner):
    totals from its ``attribute == "all"`` row, per level from the other rows."""
    if owner is not None:
        table = table.filter(pl.col("owner") == owner)
    attrs = [a for a in DEFAULT_RESPONSE_ATTRIBUTES if a in SCHEMA]
    out = []
    for (own, camp, kind), part in table.group_by(["owner", "campaign", "offer_kind"],
                                                  maintain_order=True):
        tot = part.filter(pl.col("attribute") == TOTAL_ATTRIBUTE)
        if tot.height != 1:
            raise ValueError(f"response table: campaign {camp} of {own}: expected one total "
                             f"row, found {tot.height}")
        s = tot.row(0, named=True)
        levels = {}
        for a in attrs:
            g = part.filter(pl.col("attribute") == a)
            if g.is_empty():
                continue
            card = SCHEMA[a].cardinality
            n, r = np.zeros(card), np.zeros(card)
            idx = g["level"].to_numpy().astype(np.int64)
            n[idx], r[idx] = g["n_treated"].to_numpy(), g["redeemed_treated"].to_numpy()
            levels[a] = (n, r, float(g["var_redeemed"][0]))
        cost = s["cost_treated_cents"]
        out.append(CampaignFacts(
            campaign=int(camp), kind=str(kind), n_treated=s["n_treated"],  # type: ignore[arg-type]
            n_control=s["n_control"], redeemed_treated=s["redeemed_treated"],
            spend_treated=s["spend_treated_cents"] / 100.0,
            spend_control=s["spend_control_cents"] / 100.0, level_counts=levels,
            var_redeemed=float(s["var_redeemed"]), var_spend=float(s["var_spend_cents"]) / 1e4,
            cov_spend=float(s.get("cov_spend_cents") or 0.0) / 1e4,
            var_n=float(s.get("var_n") or 0.0),
            cost_treated=None if cost is None else cost / 100.0,
            var_cost=float(s["var_cost_cents"] or 0.0) / 1e4))
    return out


def reference_offer(kind: str, merchant_type: str) -> Offer:
    """A public stand-in for a past campaign whose terms are unknown."""
    cats = MERCHANT_TYPES[merchant_type].categories
    specs: dict[str, dict[str, object]] = {
        "discount": {"pct": 15}, "cross_sell": {"pct": 20, "trigger_categories": [cats[0]],
                                                "categories": [cats[-1]]},
        "partner": {"partner": "partner", "partner_value": 1000},
        "membership": {"monthly_fee": 49, "pct": 10}, "points": {"earn_rate": 1,
                                                                "point_value": 0.02},
    }
    spec = specs[kind]
    return Offer.from_dict({"name": f"reference {kind}", "kind": kind, "days": 28, **spec})


@dataclass(frozen=True, kw_only=True)
class CalibratedResponse:
    """The parametric response with per-kind level offsets and lift factors (see module doc).

    Per twin and kind, the logit gains ``shift0[kind] + Σ_attr offsets[kind][attr][level]
    + rel_slope[kind]·(log relevance − rel_ref[kind])`` (offsets are centred, the slope
    corrects how strongly uptake follows relevance); ``lift[kind]`` multiplies visit and
    basket lifts and ``cost[kind]`` is the covered-spend factor of a redeemed visit
    (:func:`simulation.behaviour.offer_purchase`); both are the kind's pooled values. With
    ``fits`` (the kind's campaigns, :class:`FactorFits`), a new offer's lift and cost factors
    are instead those of the campaigns most like it in relevance (:meth:`FactorFits.local`):
    a blanket discount learns from the past blanket discount, a narrow one from narrow ones.
    ``z`` holds a drawn response's standard-normal deviates per kind (see :meth:`draw`).
    Kinds without past campaigns answer as ``base``.
    """

    base: ParametricResponse = field(default_factory=ParametricResponse)
    offsets: Mapping[str, Mapping[str, np.ndarray]] = field(default_factory=dict)
    shift0: Mapping[str, float] = field(default_factory=dict)
    rel_slope: Mapping[str, float] = field(default_factory=dict)
    rel_ref: Mapping[str, float] = field(default_factory=dict)
    lift: Mapping[str, float] = field(default_factory=dict)
    shift_sd: Mapping[str, float] = field(default_factory=dict)
    lift_sd: Mapping[str, float] = field(default_factory=dict)
    cost: Mapping[str, float] = field(default_factory=dict)
    cost_sd: Mapping[str, float] = field(default_factory=dict)
    fits: Mapping[str, FactorFits] = field(default_factory=dict)
    z: Mapping[str, float] = field(default_factory=dict)
    name: str = "calibrated"

    def __post_init__(self) -> None:
        for what, factors in (("lift", self.lift), ("cost", self.cost)):
            for kind, f in factors.items():
                if not (math.isfinite(f) and f >= 0):
                    raise ValueError(f"CalibratedResponse.{what}[{kind!r}]: must be >= 0, "
                                     f"got {f}")

    def draw(self, rng: np.random.Generator, *, antithetic: bool = False
             ) -> CalibratedResponse:
        """One plausible response: constant shifts, lift and cost factors drawn around the
        fitted values with their calibration uncertainty (``shift_sd`` on the logit scale,
        ``lift_sd`` and ``cost_sd`` on the log scale), for prediction intervals that include
        the response model's own uncertainty, not only behaviour noise. A kind's lift and
        cost factors move together (one draw): they are fitted jointly to the same spend gap,
        so more discounted spend goes with more extra spend. How much less takers churn
        (``base.taker_retention``, sd ``TAKER_RETENTION_SD``) and the share of extra goods
        bought ahead (``base.pull_forward``, sd ``PULL_FORWARD_SD``) are drawn from their
        priors.

        ``antithetic``: the mirror image of the draw the same ``rng`` state gives without it
        (every standard-normal deviate negated, every uniform ``u`` → ``1 − u``): a pair of
        them has the right distribution each, and the mean of a prediction over pairs
        cancels most of the response's uncertainty that a mean over independent draws
        carries as Monte-Carlo error."""
        sign = -1.0 if antithetic else 1.0

        def normal() -> float:
            return sign * float(rng.standard_normal())

        shift0 = {k: v + self.shift_sd.get(k, 0.0) * normal() for k, v in self.shift0.items()}
        z = {k: normal() for k in sorted(set(self.lift) | set(self.cost))}
        # the takers' lower churn is a prior, not fitted: draw it within its prior
        retention = float(np.clip(self.base.taker_retention + TAKER_RETENTION_SD * normal(),
                                  0.0, 1.0))
        # so is the share of a redeemed visit's extra goods bought ahead of later baskets: the
        # post-campaign dip is within the sampling noise of a campaign's post-window spend
        pull = float(np.clip(self.base.pull_forward + PULL_FORWARD_SD * normal(), 0.0, 1.0))
        # so is how steeply the visit lift grows with relevance (only takers come more often
        # ⇒ relevance², the offer's value as a share of spend ⇒ relevance¹)
        u = float(rng.random())
        lo, hi = RELEVANCE_POWER_RANGE
        power = lo + (hi - lo) * (1.0 - u if antithetic else u)
        return replace(self, shift0=shift0, z=z,
                       base=replace(self.base, taker_retention=retention, pull_forward=pull,
                                    relevance_power=power))

    def factors(self, kind: str, relevance: np.ndarray | None = None,
                targeted: np.ndarray | None = None, tiered: bool = False
                ) -> tuple[float, float]:
        """(lift factor, cost factor) of an offer of ``kind`` whose per-twin relevance is
        ``relevance`` (its mean log over ``targeted`` twins places a discount among the past
        campaigns), moved by this draw's ``z`` by the local uncertainty. A discount on some
        tiers only (``tiered``: takers trade up into them) learns from the kind's tiered
        campaigns, any other from its untiered ones, when there are such campaigns
        (:func:`factor_group`); otherwise from all of the kind's."""
        z = self.z.get(kind, 0.0)
        fit = self.fits.get(factor_group(kind, tiered), self.fits.get(kind))
        if fit is None:
            return (self.lift.get(kind, 1.0) * math.exp(z * self.lift_sd.get(kind, 0.0)),
                    self.cost.get(kind, 1.0) * math.exp(z * self.cost_sd.get(kind, 0.0)))
        x0 = 0.0
        if kind == "discount" and relevance is not None and len(relevance):
            lr = _log_rel(relevance)
            sel = targeted if targeted is not None and targeted.any() else slice(None)
            x0 = float(lr[sel].mean())
        m_f, sd_f = fit.local(x0, "lift")
        m_k, sd_k = fit.local(x0, "cost")
        return math.exp(m_f + z * sd_f), math.exp(m_k + z * sd_k)

    def shift(self, params: TwinParams, kind: str,
              relevance: np.ndarray | None = None) -> np.ndarray:
        """Per-twin logit offset of ``kind`` (attribute levels, relevance, constant)."""
        out = np.full(params.n, self.shift0.get(kind, 0.0))
        if relevance is not None and self.rel_slope.get(kind, 0.0):
            out += self.rel_slope[kind] * (_log_rel(relevance) - self.rel_ref.get(kind, 0.0))
        table = params.attributes
        for attr, off in self.offsets.get(kind, {}).items():
            if table is not None and attr in table.columns:
                out += off[table[attr].to_numpy().astype(np.int64)]
        return out

    def respond(self, params: TwinParams, features: OfferFeatures) -> Response:
        r = self.base.respond(params, features)
        k = features.kind
        p = self.base.probability(params, features,
                                  self.shift(params, k, features.relevance))  # type: ignore[arg-type]
        f, kappa = self.factors(k, features.relevance, features.targeted, features.tiered)
        kappa = min(max(kappa, COST_FACTOR_RANGE[0]), COST_FACTOR_RANGE[1])
        return replace(r, p_redeem=p.astype(F32), visit_lift=(r.visit_lift * f).astype(F32),
                       basket_lift=(r.basket_lift * f).astype(F32),
                       cost_mult=(r.cost_mult * kappa).astype(F32))


def factor_group(kind: str, tiered: bool) -> str:
    """The campaigns a new offer's lift and cost factors are learnt from: a tier discount
    moves spend between tiers (its takers trade up, so its covered spend grows far beyond
    the tier's share) as a category discount does not."""
    return f"{kind}:{'tiered' if tiered else 'plain'}"


@dataclass(frozen=True, kw_only=True)
class FactorFits:
    """One kind's past campaigns: mean log relevance ``x``, fitted log lift and cost
    factors, and how informative each campaign is about them (effect² / noise variance)."""

    x: tuple[float, ...]
    log_lift: tuple[float, ...]
    info_lift: tuple[float, ...]
    log_cost: tuple[float, ...]
    info_cost: tuple[float, ...]

    def local(self, x0: float, which: str) -> tuple[float, float]:
        """(log factor, its sd) at mean log relevance ``x0``: a local-linear fit of the
        campaigns' log factors on log relevance, weighted by information × a Gaussian kernel
        of bandwidth ``RELEVANCE_BANDWIDTH`` around ``x0``, with priors on the factor at
        ``x0`` (around 0, i.e. factor 1, sd ``FACTOR_PRIOR_SD``) and on its slope (around 0,
        sd ``FACTOR_SLOPE_SD``). An offer between two campaigns interpolates between them
        (a nappy discount between a narrow organic-meat one and a blanket one) rather than
        following the better-measured one; far from every campaign it falls back to the
        prior. The sd is the larger of the posterior sd and the weighted spread of the
        campaigns around the fit (at least ``LIFT_SD_FLOOR``)."""
        logs = np.asarray(self.log_lift if which == "lift" else self.log_cost, dtype=float)
        info = np.asarray(self.info_lift if which == "lift" else self.info_cost, dtype=float)
        x = np.asarray(self.x, dtype=float)
        w = info * np.exp(-0.5 * ((x - x0) / RELEVANCE_BANDWIDTH) ** 2)
        design = np.column_stack([np.ones_like(x), x - x0])
        precision = design.T @ (w[:, None] * design) + np.diag(
            [1.0 / FACTOR_PRIOR_SD ** 2, 1.0 / FACTOR_SLOPE_SD ** 2])
        cov = np.linalg.inv(precision)
        beta = cov @ (design.T @ (w * logs))
        spread = _spread(logs - design @ beta, w + 1e-9, LIFT_SD_FLOOR)
        return float(beta[0]), max(spread, math.sqrt(float(cov[0, 0])))


def _window_rate(params: TwinParams, offer: Offer, response: CalibratedResponse,
                 hold: np.ndarray | None = None) -> np.ndarray:
    """Per twin (0 when no longer a customer): the quantity matched to the observed share
    of treated customers who redeemed.

    Partner, cross-sell: the probability of taking the offer at least once in the window.
    Membership, points: ``p`` is the share who join when the offer arrives; a member counts
    as redeemed once it buys something covered, so the observed share is ``p`` times the
    chance of at least one visit with a covered item in the window. Discounts: a customer
    who takes a discount uses it on every qualifying visit (what the observed campaigns
    show: the discount cost per taker is that of all their qualifying spend), so the twin's
    per-visit probability ``p`` is read as the share of takers, and the observed share as for
    members. Matching the at-least-once probability of independent per-visit draws instead
    gives far too few discounted visits. A visit holds a covered item with the probability
    of :func:`simulation.effects.covered_visit_probability` (item shares, not spend shares:
    coffee is in most café baskets, a suit in few apparel ones).
    """
    eff = build_effect(offer, params, response=response, trigger_hold=hold)
    p = eff.p_event.astype(float)
    k = params.visit_rate.astype(float) * offer.days
    if offer.kind in ("discount", "membership", "points"):
        per_visit = covered_visit_probability(params, offer)
        return p * (1.0 - np.power(1.0 - per_visit, k)) * params.active
    if offer.kind == "partner":
        k = np.full(params.n, float(offer.days))
    return (1.0 - np.power(1.0 - p, k)) * params.active


def _solve_shift(target: float, rate_at: object) -> float:
    lo, hi = -15.0, 15.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rate_at(mid) < target else (lo, mid)  # type: ignore[operator]
        if hi - lo < 1e-3:
            break
    return 0.5 * (lo + hi)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-4, 0.95)
    return np.log(p / (1 - p))


def _log_rel(relevance: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(np.asarray(relevance, dtype=float), 0.02))


def posterior_rate(redeemed: float, n: float, var_dp: float, prior_rate: float,
                   prior_sd: float = PRIOR_LOGIT_SD) -> tuple[float, float]:
    """(posterior mean rate, posterior sd of its logit) of a treated arm's redemption rate.

    The released count is ``redeemed`` ≈ Normal(n·r, n·r(1−r) + var_dp) (binomial sampling
    plus the DP noise of the count, which may make it negative); the prior is normal on the
    logit scale around ``prior_rate`` with sd ``prior_sd``. Evaluated on a grid of logits,
    so a count far below its noise neither becomes a rate of 0 nor pulls the rate to the
    prior harder than it should.
    """
    n = max(float(n), 1.0)
    theta = np.linspace(-12.0, 3.0, 1501)
    r = 1.0 / (1.0 + np.exp(-theta))
    var = n * r * (1.0 - r) + max(float(var_dp), 0.0) + 0.25  # + rounding of the count
    mu0 = float(_logit(np.array([prior_rate]))[0])
    logp = -0.5 * (float(redeemed) - n * r) ** 2 / var - 0.5 * np.log(var) \
        - 0.5 * ((theta - mu0) / prior_sd) ** 2
    w = np.exp(logp - logp.max())
    w /= w.sum()
    mean_theta = float(w @ theta)
    return float(np.clip(w @ r, 1e-4, 0.95)), float(np.sqrt(w @ (theta - mean_theta) ** 2))


def _calibrate_campaign(params: TwinParams, offer: Offer, fact: CampaignFacts,
                        resp: CalibratedResponse, prior_n: float, iterations: int = 3,
                        hold: np.ndarray | None = None
                        ) -> tuple[dict[str, np.ndarray], float, float, float]:
    """Centred level offsets and the constant logit shift reproducing one campaign, the
    matched (posterior mean) redemption rate and the posterior sd of its logit."""
    kind = offer.kind
    table = params.attributes
    assert table is not None
    offs = {a: np.zeros(SCHEMA[a].cardinality) for a in fact.level_counts}
    codes = {a: table[a].to_numpy().astype(np.int64) for a in offs if a in table.columns}
    active = params.active
    if not active.any():
        return offs, 0.0, 0.0, PRIOR_LOGIT_SD
    # few (noisy) exposures say little: tiny or very noisy campaigns stay near the model
    prior = float(_window_rate(params, offer, resp, hold)[active].mean())
    pooled, sd_logit = posterior_rate(fact.redeemed_treated, fact.n_treated,
                                      fact.var_redeemed, prior)

    def level_weight(attr: str) -> tuple[np.ndarray, np.ndarray]:
        """(weight, observed rate) per level: a level's observed rate carries binomial noise
        and the DP noise of its redemption count (sd / n); its departure from the model's
        own level pattern is a priori that of ``prior_n`` customers."""
        n, r, var_dp = fact.level_counts[attr]
        n = np.maximum(n, 1.0)
        rate = np.clip(np.maximum(r, 0.0) / n, 0.0, 1.0)
        tau2 = pooled * (1 - pooled) / prior_n
        var = pooled * (1 - pooled) / n + max(var_dp, 0.0) / n ** 2
        return tau2 / (tau2 + var), rate

    g = 0.0

    def current(extra: float = 0.0) -> CalibratedResponse:
        return replace(resp, offsets={**resp.offsets, kind: offs},
                       shift0={**resp.shift0, kind: g + extra})

    for _ in range(iterations):
        for a, (n, _, _) in fact.level_counts.items():
            if a not in codes:
                continue
            rate = _window_rate(params, offer, current(), hold)
            model = np.array([rate[(codes[a] == lv) & active].mean()
                              if ((codes[a] == lv) & active).any() else np.nan
                              for lv in range(len(n))])
            # without information a level keeps the model's own pattern, at the pooled rate
            w, observed = level_weight(a)
            scaled = model * pooled / max(float(rate[active].mean()), 1e-9)
            target = w * observed + (1 - w) * np.nan_to_num(scaled, nan=pooled)
            step = np.where(np.isnan(model), 0.0, _logit(target) - _logit(model))
            offs[a] = offs[a] + step
            centre = float(offs[a][codes[a]].mean())  # keep the level in the constant
            offs[a] = np.clip(offs[a] - centre, -LEVEL_OFFSET_MAX, LEVEL_OFFSET_MAX)
            g += centre
        g += _solve_shift(pooled, lambda x: float(
            _window_rate(params, offer, current(x), hold)[active].mean()))
    return offs, g, pooled, sd_logit


def _spread(values: np.ndarray, weights: np.ndarray, floor: float) -> float:
    """Weighted sd of campaign-level estimates around their mean, at least ``floor``."""
    w = weights / weights.sum()
    m = float(w @ values)
    return max(float(np.sqrt(w @ (values - m) ** 2)), floor)


def _relevance_fit(items: list[tuple[float, float, float]],
                   bounds: tuple[float, float] = (-0.5, 3.0)) -> tuple[float, float, float]:
    """(constant, slope, reference) of the campaigns' shifts against their mean log relevance.

    ``items`` are (weight, mean log relevance, shift). With campaigns of clearly different
    relevance the slope says how much more strongly uptake follows relevance than the base
    model assumes; otherwise the slope is 0 and the constant the weighted mean shift.
    """
    w = np.array([i[0] for i in items])
    x = np.array([i[1] for i in items])
    y = np.array([i[2] for i in items])
    w = w / w.sum()
    xm, ym = float(w @ x), float(w @ y)
    sxx = float(w @ (x - xm) ** 2)
    if len(items) < 2 or sxx < 0.25:
        return ym, 0.0, xm
    slope = float(np.clip(w @ ((x - xm) * (y - ym)) / sxx, *bounds))
    return ym, slope, xm


def _lift_and_cost(params: TwinParams, offer: Offer, fact: CampaignFacts,
                   resp: CalibratedResponse, seed: int, hold: np.ndarray | None = None
                   ) -> tuple[float, float, float, float]:
    """The lift factor ``f`` and cost factor ``κ`` reproducing the campaign's incremental
    spend and discount cost per exposed customer, and how informative the campaign is
    about each (effect² / noise variance of the observed quantity).

    Both observed quantities are close to linear in (f, κ) (cost exactly in κ), so two
    Newton steps on finite differences of short runs of the campaign on the twins solve them;
    without a released cost (or an offer that costs nothing) κ stays 1.
    """
    kind = offer.kind
    ct = MarketModel(params, effect=build_effect(offer, params, response=resp,
                                                 trigger_hold=hold).as_control(),
                     seed=seed, agent_limit=0).run(offer.days)
    control = float(ct.totals.revenue.sum())
    # sampling sd of one customer's window spend: the twins' own spread (clamped as released)
    clamp = spend_clamp(params.merchant_type)
    sd_spend = float(np.std(np.minimum(ct.totals.revenue[ct.exposed], clamp)))
    sd_cost = [0.0]

    def run(f: float, k: float) -> np.ndarray:
        r = replace(resp, lift={**resp.lift, kind: f}, cost={**resp.cost, kind: k})
        eff = build_effect(offer, params, response=r, trigger_hold=hold)
        tr = MarketModel(params, effect=eff, seed=seed, agent_limit=0).run(offer.days)
        exposed = max(int(tr.exposed.sum()), 1)  # observed gaps are per exposed customer
        sd_cost[0] = float(np.std(tr.totals.cost[tr.exposed])) if exposed > 1 else 0.0
        return np.array([(float(tr.totals.revenue.sum()) - control) / exposed,
                         float(tr.totals.cost.sum()) / exposed])

    nt, nc = max(fact.n_treated, 1.0), max(fact.n_control, 1.0)
    se_spend = math.sqrt(sd_spend ** 2 * (1 / nt + 1 / nc) + fact.var_incremental_spend) + 1e-9
    obs_spend = fact.incremental_spend
    has_cost = fact.cost_treated is not None and kind != "partner"
    obs_cost = max(fact.cost_treated or 0.0, 0.0) / nt
    f, k = 1.0, 1.0
    d_f = d_k = 0.0
    se_cost = 0.0
    for step_no in range(2):
        y = run(f, k)
        if step_no == 0:  # the twins' spread of one customer's cost at the prior factors
            se_cost = math.sqrt(sd_cost[0] ** 2 / nt + fact.var_cost / nt ** 2) + 1e-9
        d_f_vec = run(f + 0.5, k) - y
        d_f = float(d_f_vec[0]) / 0.5
        if not has_cost:
            if abs(d_f) < 1e-6:
                return 1.0, 0.0, 1.0, 0.0
            f = float(np.clip(f + (obs_spend - y[0]) / d_f, 0.05, 10.0))
            continue
        d_k_vec = run(f, k + 0.5) - y
        jac = np.column_stack([d_f_vec, d_k_vec]) / 0.5
        d_k = float(jac[1, 1])
        # weight the two equations by their noise, then solve (least squares if singular)
        wts = np.array([1.0 / se_spend, 1.0 / se_cost])
        step = np.linalg.lstsq(jac * wts[:, None], (np.array([obs_spend, obs_cost]) - y) * wts,
                               rcond=None)[0]
        f = float(np.clip(f + step[0], 0.05, 10.0))
        k = float(np.clip(k + step[1], 0.25, 8.0))
    info_f = (d_f * f) ** 2 / se_spend ** 2
    info_k = (d_k * k) ** 2 / se_cost ** 2 if has_cost else 0.0
    return f, info_f, k, info_k


@dataclass(frozen=True, kw_only=True)
class _CampaignFit:
    """What one past campaign says about its kind (see :func:`calibrate_response`)."""

    redeemers: float  # treated customers who redeemed (posterior mean)
    x: float  # mean log relevance of the twins it went to
    offsets: dict[str, np.ndarray]
    shift: float
    sd_logit: float  # posterior sd of its logit redemption rate
    lift: float
    info_lift: float
    cost: float
    info_cost: float
    tiered: bool = False  # the campaign's offer covered some price tiers only


def _campaign_cohort(params: TwinParams, offer: Offer, rng: np.random.Generator
                     ) -> tuple[TwinParams, np.ndarray | None]:
    """The twins a past campaign went to, and for a cross-sell each one's probability of
    holding its coupon. A cross-sell goes to recent buyers of its trigger categories: each
    twin is drawn in with its probability of a trigger purchase in the last
    ``TRIGGER_LOOKBACK_DAYS``, and holds the coupon (a purchase within ``COUPON_DAYS``) with
    the conditional probability; other kinds went to the recent twins as they are."""
    if offer.kind != "cross_sell":
        return params, None
    trig = np.array([c in offer.trigger_categories for c in params.categories], dtype=float)
    recent = trigger_recent(params, trig, TRIGGER_LOOKBACK_DAYS).astype(float)
    hold = trigger_recent(params, trig, COUPON_DAYS).astype(float)
    pick = np.flatnonzero(rng.random(params.n) < recent)
    if pick.size < 100:
        return params, None
    return params.subset(pick), np.clip(hold[pick] / np.maximum(recent[pick], 1e-9), 0, 1)


def _factor_fits(items: list[_CampaignFit]) -> FactorFits:
    return FactorFits(x=tuple(i.x for i in items),
                      log_lift=tuple(math.log(i.lift) for i in items),
                      info_lift=tuple(i.info_lift for i in items),
                      log_cost=tuple(math.log(i.cost) for i in items),
                      info_cost=tuple(i.info_cost for i in items))


def calibrate_response(table: pl.DataFrame, params: TwinParams, *,
                       offers: Mapping[int, Offer] | None = None, owner: str | None = None,
                       base: ParametricResponse | None = None, prior_n: float = 200.0,
                       seed: int = 0) -> CalibratedResponse:
    """Fit a :class:`CalibratedResponse` to the campaigns of ``table`` (see module doc).

    ``offers`` maps a campaign's 1-based position to its terms; ``params`` are the owner's
    twins (with their attribute table), of which recently active ones are used.
    """
    if params.attributes is None:
        raise ValueError("params: calibration needs twins with an attribute table")
    recent = np.flatnonzero(params.attributes["recency"].to_numpy() <= _RECENT) \
        if "recency" in params.attributes.columns else np.arange(params.n)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xCA1]))
    if recent.size > _MAX_TWINS:
        recent = np.sort(rng.choice(recent, _MAX_TWINS, replace=False))
    twins = params.subset(recent if recent.size else np.arange(params.n))
    resp = CalibratedResponse(base=base or ParametricResponse())
    by_kind: dict[str, list[_CampaignFit]] = {}
    facts = campaign_facts(table, owner)
    for fact in facts:
        if fact.kind not in resp.base.intercept or fact.n_treated < 1:
            continue
        known = (offers or {}).get(fact.campaign)
        offer = known if known is not None else reference_offer(fact.kind, params.merchant_type)
        offer = replace(offer, start_day=0, target=())
        cohort, hold = _campaign_cohort(twins, offer, rng)
        offs, g, rate, sd_logit = _calibrate_campaign(cohort, offer, fact, resp, prior_n,
                                                      hold=hold)
        one = replace(resp, offsets={**resp.offsets, fact.kind: offs},
                      shift0={**resp.shift0, fact.kind: g})
        lift, info, cost, info_c = _lift_and_cost(cohort, offer, fact, one, seed, hold)
        rel = build_effect(offer, cohort).eligible_share if fact.kind == "discount" else (
            np.ones(cohort.n))
        by_kind.setdefault(fact.kind, []).append(_CampaignFit(
            redeemers=rate * max(fact.n_treated, 1.0), x=float(_log_rel(rel).mean()),
            offsets=offs,
            shift=g, sd_logit=sd_logit, lift=lift, info_lift=info, cost=cost,
            info_cost=info_c, tiered=bool(offer.tiers)))
    offsets, shift0, slope, ref, lifts, sd_g, sd_f = {}, {}, {}, {}, {}, {}, {}
    costs, sd_c, fits = {}, {}, {}
    for kind, items in by_kind.items():
        # who takes a kind's offers up: the campaigns' level patterns by their redeemers (a
        # campaign few took up says little about who does, however many it reached)
        r = np.array([i.redeemers for i in items])
        offsets[kind] = {a: sum(ri * i.offsets[a] for ri, i in zip(r / r.sum(), items,
                                                                     strict=True))
                         for a in items[0].offsets}
        # how much: the campaigns' shifts by their precision, the assumed spread of
        # campaigns around the kind's model (SHIFT_SD_FLOOR) added to their own noise
        w = np.array([1.0 / (i.sd_logit ** 2 + SHIFT_SD_FLOOR ** 2) for i in items])
        w = w / w.sum()
        shift0[kind], slope[kind], ref[kind] = _relevance_fit(
            [(wi, i.x, i.shift) for wi, i in zip(w, items, strict=True)])
        # how much the kind's campaigns disagree once relevance is accounted for (the
        # response model's error on a new offer of that kind) and how uncertain each
        # campaign's own rate is (sampling + DP noise); the floor is an assumed minimum
        resid = np.array([i.shift - (shift0[kind] + slope[kind] * (i.x - ref[kind]))
                          for i in items])
        own = float(np.sum(w ** 2 * np.array([i.sd_logit for i in items]) ** 2))
        sd_g[kind] = max(math.sqrt(_spread(resid, w, 0.0) ** 2 + own), SHIFT_SD_FLOOR)
        # lift and cost factors: per campaign, combined for a new offer by relevance
        # (FactorFits.local); the pooled values (all campaigns, no kernel) are reported
        fits[kind] = _factor_fits(items)
        for tiered in (False, True):  # a tiered and an untiered group, where both exist
            group = [i for i in items if i.tiered == tiered]
            if group and len(group) < len(items):
                fits[factor_group(kind, tiered)] = _factor_fits(group)
        pooled = replace(fits[kind], x=(0.0,) * len(items))
        m, sd_f[kind] = pooled.local(0.0, "lift")
        lifts[kind] = math.exp(m)
        m, sd_c[kind] = pooled.local(0.0, "cost")
        costs[kind] = math.exp(m)
    return CalibratedResponse(base=resp.base, offsets=offsets, shift0=shift0, rel_slope=slope,
                              rel_ref=ref, lift=lifts, shift_sd=sd_g, lift_sd=sd_f,
                              cost=costs, cost_sd=sd_c, fits=fits)
