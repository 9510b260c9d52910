"""Pure decision rules, twin parameters from the public schema, offer effects, response."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retail.catalogue import default_catalogue
from retail.offers import Offer
from simulation.behaviour import (
    AgentInputs,
    AgentState,
    DayDraws,
    OfferTerms,
    agent_day,
    basket_log_params,
    basket_value,
    consume_stock,
    offer_purchase,
    partner_daily_probability,
    visit_probability,
)
from simulation.effects import (
    build_effect,
    covered_visit_probability,
    item_shares,
    margin_rate,
    target_mask,
    trigger_recent,
)
from simulation.params import TwinParams, params_from_twins
from simulation.response import (
    OfferFeatures,
    ParametricResponse,
    ResponseModel,
    get_response_model,
    register,
    response_models,
)
from simulation.synthetic import synthetic_twins
from twins.schema import SCHEMA, plausible_basket_max
from twinsim.errors import CohortTooSmall, OfferError


@pytest.fixture(scope="module")
def grocery() -> TwinParams:
    return TwinParams.synthetic(3000, "grocery", seed=11)


# --- pure rules -----------------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(rate=st.floats(0, 1), w=st.floats(0, 7), amp=st.floats(0, 1), phase=st.floats(0, 14),
       day=st.integers(0, 400), lift=st.floats(0, 5))
def test_visit_probability_is_a_probability(rate: float, w: float, amp: float, phase: float,
                                            day: int, lift: float) -> None:
    p = visit_probability(rate, w, amp, phase, day, lift)
    assert 0.0 <= p <= 1.0
    assert p >= visit_probability(rate, w, amp, phase, day) - 1e-12  # a lift never lowers it


def test_two_week_rhythm_averages_out_and_alternates() -> None:
    days = np.arange(28)
    p = visit_probability(0.2, 1.0, 0.8, 3.0, days)
    assert p.mean() == pytest.approx(0.2, rel=1e-9)
    assert p[3] == pytest.approx(0.36) and p[10] == pytest.approx(0.04)


def test_basket_lognormal_has_the_twins_mean_and_cv() -> None:
    mu, sigma = basket_log_params(np.float64(400.0), np.float64(0.5))
    z = np.random.default_rng(0).standard_normal(400_000)
    b = basket_value(mu, sigma, z)
    assert b.mean() == pytest.approx(400, rel=0.01)
    assert b.std() / b.mean() == pytest.approx(0.5, rel=0.02)


def test_pull_forward_stock_lowers_later_baskets() -> None:
    basket, stock = consume_stock(100.0, 0.3, 50.0)
    assert (basket, stock) == (70.0, 20.0)
    assert consume_stock(100.0, 0.3, 0.0) == (100.0, 0.0)


def test_offer_purchase_accounting() -> None:
    p = offer_purchase(basket=200.0, eligible_share=0.5, rate=0.2, basket_lift=0.3,
                       pull_forward=0.5, cross_item=40.0)
    assert p.extra == pytest.approx(30 + 40)
    assert p.cost == pytest.approx(0.2 * (100 + 70))
    assert p.cannibal == pytest.approx(20.0)
    assert p.stock_add == pytest.approx(15.0)


@pytest.mark.parametrize("p,days", [(0.3, 30), (0.9, 7), (0.01, 90)])
def test_partner_daily_probability_compounds_to_the_window_probability(p: float,
                                                                       days: int) -> None:
    q = partner_daily_probability(p, days)
    assert 1 - (1 - q) ** days == pytest.approx(p)


def _inputs(**kw: float) -> AgentInputs:
    base = dict(rate=1.0, weekday=(1.0,) * 7, amp=0.0, phase=0.0, hazard=0.0, mu=math.log(100),
                sigma=0.0, margin_rate=0.3)
    return AgentInputs(**{**base, **kw})  # type: ignore[arg-type]


def test_agent_day_discount_visit_books_cost_and_margin() -> None:
    x = _inputs(targeted=True, eligible_share=0.5, discount_rate=0.2, p_event=1.0,
                margin_eligible=0.25)
    terms = OfferTerms(mode="per_visit", start=0, end=10)
    s, out = agent_day(x, AgentState(active=True, days_since=5), terms, 0,
                       DayDraws(0.5, 0.5, 0.0, 0.5))
    assert s.exposed and s.redeemed and s.days_since == 0
    assert out.visit and out.redemptions == 1
    assert out.cost == pytest.approx(10.0)  # 20% of the 50 SEK eligible
    assert out.revenue == pytest.approx(90.0)
    assert out.margin == pytest.approx(30.0 - 10.0)


def test_agent_day_churned_twin_does_nothing_and_members_pay() -> None:
    x = _inputs(hazard=1.0)
    s, out = agent_day(x, AgentState(active=True, days_since=0), OfferTerms(), 3,
                       DayDraws(0.5, 0.0, 0.0, 0.0))
    assert not s.active and not out.visit and s.days_since == 1
    m = _inputs(rate=0.0, churn_mult=0.5, targeted=True, p_event=0.5)
    terms = OfferTerms(mode="persistent", start=0, end=5, fee_daily=2.0)
    member = AgentState(active=True, days_since=0, exposed=True, enrolled=True)
    s, out = agent_day(m, member, terms, 3, DayDraws(0.9, 0.9, 0.0, 0.9))
    assert s.active and out.income == 2.0 and not out.visit
    # the offer acts for its days only: no fee (nor benefit) after the window
    s, out = agent_day(m, member, terms, 7, DayDraws(0.9, 0.9, 0.0, 0.9))
    assert s.active and s.enrolled and out.income == 0.0
    # members join on the start day when the offer arrives, visit or not, and pay that day
    fresh = AgentState(active=True, days_since=0)
    s, out = agent_day(m, fresh, terms, 0, DayDraws(0.9, 0.9, 0.0, 0.4))
    assert s.exposed and s.enrolled and out.redemptions == 1 and out.income == 2.0
    s, out = agent_day(m, fresh, terms, 0, DayDraws(0.9, 0.9, 0.0, 0.6))
    assert s.exposed and not s.enrolled and out.redemptions == 0 and out.income == 0.0


# --- parameters from the public schema -----------------------------------------------------

def test_params_follow_the_level_representatives(grocery: TwinParams) -> None:
    t = grocery.attributes
    assert t is not None
    freq = t["frequency"].to_numpy()
    edges = np.array((0.0, *SCHEMA["frequency"].edges, 40.0))  # type: ignore[misc]
    per30 = grocery.visit_rate * 30
    # latent rates (regression to the mean): ordered like the levels; a frequent shopper's
    # rate stays near its bin, a rare one's moves toward the population
    means = [per30[freq == lv].mean() for lv in np.unique(freq)]
    assert np.all(np.diff(means) > 0)
    busy = freq >= SCHEMA["frequency"].code("4_8")
    inside = (per30[busy] >= 0.8 * edges[freq[busy]]) & (per30[busy] <= 1.2 * edges[freq[busy] + 1])
    assert inside.mean() > 0.95
    rare = freq == SCHEMA["frequency"].code("0.25_1")
    assert per30[rare].mean() > 0.625  # above the bin's own midpoint, toward the others
    np.testing.assert_allclose(grocery.weekday.mean(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(grocery.category_w.sum(axis=1), 1.0, rtol=1e-5)
    pet = grocery.category_w[:, grocery.categories.index("pet_food")]
    is_pet = t["pet"].to_numpy() == 1
    assert pet[is_pet].min() >= 0.03 > pet[~is_pet].max()  # the schema's public 3% rule
    two_week = t["rhythm"].to_numpy() == SCHEMA["rhythm"].code("two_week")
    assert grocery.rhythm_amp[two_week].min() > 0.3 and grocery.rhythm_amp[~two_week].max() == 0


def test_params_are_seeded_and_missing_columns_get_neutral_levels() -> None:
    t = synthetic_twins(500, "cafe", seed=2)
    a = params_from_twins(t, "cafe", seed=5)
    b = params_from_twins(t, "cafe", seed=5)
    np.testing.assert_array_equal(a.basket_mean, b.basket_mean)
    slim = params_from_twins(t.select("region", "frequency"), "cafe", seed=5)
    assert slim.n == 500 and slim.rhythm_amp.max() == 0


def test_params_clip_impossible_basket_levels_and_skew_inside_bins() -> None:
    bv = SCHEMA["basket_value"]
    codes = [bv.code("100k_plus"), bv.code("20k_100k"), bv.code("200_400")] * 2000
    t = pl.DataFrame({"basket_value": codes}, schema={"basket_value": pl.UInt8})
    cafe = params_from_twins(t, "cafe", seed=1)
    assert cafe.basket_mean.max() <= plausible_basket_max("cafe") * 1.0001  # no 60k café baskets
    car = params_from_twins(t, "car_brand", seed=1)
    assert car.basket_mean.max() > 100_000  # a car purchase day may well cost that
    mid = cafe.basket_mean[2::3]
    assert mid.min() >= 200 and mid.max() <= 400
    # log-uniform inside [200, 400): mean (400 - 200) / ln 2 ≈ 288.5, below the midpoint 300
    assert abs(float(mid.mean()) - 200 / np.log(2)) < 4


def test_bins_above_the_mode_lean_to_their_lower_edge() -> None:
    bv = SCHEMA["basket_value"]
    codes = ([bv.code("800_1600")] * 3000 + [bv.code("1600_5k")] * 4000
             + [bv.code("5k_20k")] * 200)
    t = pl.DataFrame({"basket_value": codes}, schema={"basket_value": pl.UInt8})
    p = params_from_twins(t, "apparel", seed=2)
    wide = p.basket_mean[3000:7000]
    assert wide.min() >= 1600 and wide.max() <= 5000
    log_uniform_mean = 3400 / np.log(5000 / 1600)  # ≈ 2986: what a flat-in-log draw gives
    assert wide.mean() < log_uniform_mean - 200  # the falling counts pull the draws down
    few = params_from_twins(t[3000:3199], "apparel", seed=2).basket_mean  # too few to shape
    assert abs(float(few.mean()) - log_uniform_mean) < 200  # 3 standard errors


def test_recency_inside_its_bin_follows_the_visit_rate() -> None:
    f, r = SCHEMA["frequency"], SCHEMA["recency"]
    n = 3000
    t = pl.DataFrame({"frequency": [f.code("15_plus")] * n + [f.code("lt_0.25")] * n,
                      "recency": [r.code("lt_7d")] * (2 * n)},
                     schema={"frequency": pl.UInt8, "recency": pl.UInt8})
    p = params_from_twins(t, "grocery", seed=4)
    daily, rare = p.days_since_visit[:n], p.days_since_visit[n:]
    assert daily.min() >= 0 and rare.max() <= 6  # inside the bin [0, 7)
    # a near-daily shopper seen within the week was most likely seen yesterday, and is alive
    assert np.median(daily) <= 1 and p.active[:n].mean() > 0.9
    assert 2.5 < rare.mean() < 3.5  # a rare shopper's last day is spread over the week


def test_twin_params_validation_names_the_field(grocery: TwinParams) -> None:
    with pytest.raises(ValueError, match=r"TwinParams\.weekday"):
        TwinParams(**{**_fields(grocery), "weekday": np.ones((grocery.n, 6), np.float32)})
    with pytest.raises(ValueError, match=r"TwinParams\.visit_rate"):
        TwinParams(**{**_fields(grocery), "visit_rate": grocery.visit_rate + 2})
    with pytest.raises(ValueError, match="code"):
        params_from_twins(pl.DataFrame({"frequency": [9]}, schema={"frequency": pl.UInt8}),
                          "grocery", seed=0)


def _fields(p: TwinParams) -> dict[str, object]:
    from dataclasses import fields
    return {f.name: getattr(p, f.name) for f in fields(p)}


def test_subset_keeps_rows_aligned(grocery: TwinParams) -> None:
    sub = grocery.subset(np.array([5, 2]))
    assert sub.n == 2 and sub.basket_mean[1] == grocery.basket_mean[2]
    assert sub.attributes is not None and sub.attributes.row(1) == grocery.attributes.row(2)


# --- offer effects --------------------------------------------------------------------------

def test_eligible_share_and_margins_follow_the_catalogue(grocery: TwinParams) -> None:
    offer = Offer(name="meat", kind="discount", pct=20, categories=("meat",),
                  tiers=("premium",))
    e = build_effect(offer, grocery)
    meat = grocery.category_w[:, grocery.categories.index("meat")]
    np.testing.assert_allclose(e.eligible_share, meat * grocery.tier_p[:, 2], rtol=1e-5)
    assert np.all(e.margin_eligible == pytest.approx(default_catalogue("grocery")
                                                     .margin("meat", "premium"), rel=1e-5))
    mr = margin_rate(grocery, default_catalogue("grocery"))
    assert 0.2 < mr.mean() < 0.4
    assert np.allclose(e.discount_rate, 0.2)


def test_targeting_filters_and_their_errors(grocery: TwinParams) -> None:
    t = grocery.attributes
    assert t is not None
    m = target_mask(grocery, Offer.from_dict({"name": "x", "kind": "discount", "pct": 5,
                                              "target": ["pet=yes", "region in Malmö|Umeå",
                                                         "organic_share>=high"]}).target)
    want = ((t["pet"] == 1) & t["region"].is_in([2, 7]) & (t["organic_share"] >= 3)).to_numpy()
    np.testing.assert_array_equal(m, want)
    by_persona = Offer.from_dict({"name": "x", "kind": "discount", "pct": 5,
                                  "target": ["persona=anna"]})
    assert target_mask(grocery, by_persona.target).sum() == (t["persona"] == "anna").sum()
    with pytest.raises(OfferError, match="unknown attribute 'shoe_size'"):
        build_effect(Offer(name="x", kind="discount", pct=5, target=("shoe_size=42",)), grocery)
    with pytest.raises(OfferError, match="unknown level"):
        build_effect(Offer(name="x", kind="discount", pct=5, target=("pet=maybe",)), grocery)
    with pytest.raises(OfferError, match="unknown category"):
        build_effect(Offer(name="x", kind="discount", pct=5, categories=("ties",)), grocery)


def test_empty_cohort_is_refused_with_a_clear_message() -> None:
    cafe = TwinParams.synthetic(200, "cafe", seed=1)
    offer = Offer(name="dogs", kind="discount", pct=10, target=("pet=yes",))
    with pytest.raises(CohortTooSmall, match=r"select 0 of 200 twins"):
        build_effect(offer, cafe)


def test_geo_far_away_offers_are_rarely_taken(grocery: TwinParams) -> None:
    park = Offer(name="park", kind="partner", partner="Liseberg", partner_value=300,
                 location="Göteborg")
    e = build_effect(park, grocery)
    gbg, sthlm = grocery.region == 1, grocery.region == 0
    assert e.p_event[gbg].mean() > 20 * e.p_event[sthlm].mean()


def test_cross_sell_needs_the_trigger_and_adds_an_item() -> None:
    apparel = TwinParams.synthetic(2000, "apparel", seed=3)
    offer = Offer(name="ties", kind="cross_sell", pct=20, categories=("ties", "shirts"),
                  trigger_categories=("suits",))
    e = build_effect(offer, apparel)
    suits = apparel.category_w[:, apparel.categories.index("suits")]
    hi, lo = suits > np.quantile(suits, 0.9), suits < np.quantile(suits, 0.1)
    assert e.p_event[hi].mean() > 3 * e.p_event[lo].mean()
    assert 200 < e.cross_item.mean() < 1000  # a tie or a shirt, not a suit


def test_item_shares_make_dear_categories_rare_purchases() -> None:
    apparel = TwinParams.synthetic(2000, "apparel", seed=3)
    items = item_shares(apparel)
    np.testing.assert_allclose(items.sum(axis=1), 1.0, rtol=1e-6)
    suits, ties = apparel.categories.index("suits"), apparel.categories.index("ties")
    # a suit costs many ties: its share of items is far below its share of spend
    assert items[:, suits].mean() < 0.5 * apparel.category_w[:, suits].mean()
    assert items[:, ties].mean() > apparel.category_w[:, ties].mean()
    suit_sale = Offer(name="s", kind="discount", pct=20, categories=("suits",))
    tie_sale = Offer(name="t", kind="discount", pct=20, categories=("ties",))
    p_suit = covered_visit_probability(apparel, suit_sale)
    assert np.all((p_suit >= 0) & (p_suit <= 1))
    everything = covered_visit_probability(apparel, Offer(name="a", kind="discount", pct=5))
    np.testing.assert_allclose(everything, 1.0)
    assert p_suit.mean() < covered_visit_probability(apparel, tie_sale).mean() * 3
    # more days, more chances of a trigger purchase
    trig = np.array([c == "suits" for c in apparel.categories], dtype=float)
    assert np.all(trigger_recent(apparel, trig, 90) >= trigger_recent(apparel, trig, 30))


def test_cross_sell_coupon_holders_override() -> None:
    apparel = TwinParams.synthetic(500, "apparel", seed=3)
    offer = Offer(name="ties", kind="cross_sell", pct=20, categories=("ties", "shirts"),
                  trigger_categories=("suits",))
    base = build_effect(offer, apparel)
    held = build_effect(offer, apparel, trigger_hold=np.ones(apparel.n))
    # everyone holding a coupon: uptake and visit lift at least as high as by chance
    assert np.all(held.p_event >= base.p_event - 1e-7)
    assert held.visit_lift.mean() > base.visit_lift.mean() > 0
    with pytest.raises(ValueError, match="trigger_hold"):
        build_effect(offer, apparel, trigger_hold=np.ones(3))


# --- response models ------------------------------------------------------------------------

def test_response_registry_and_protocol(grocery: TwinParams) -> None:
    model = get_response_model("parametric")
    assert isinstance(model, ResponseModel)
    register("constant_test", ParametricResponse)
    assert "constant_test" in response_models()
    with pytest.raises(ValueError, match="unknown"):
        get_response_model("nope")


def test_deeper_discounts_are_taken_more_often(grocery: TwinParams) -> None:
    ps = [build_effect(Offer(name="d", kind="discount", pct=pct), grocery).p_event.mean()
          for pct in (5, 15, 30)]
    assert ps[0] < ps[1] < ps[2]


def test_a_membership_fee_deters_but_saturates(grocery: TwinParams) -> None:
    n = grocery.n
    model = ParametricResponse()

    def p(burden: float) -> float:
        f = OfferFeatures(kind="membership", days=60, depth=np.full(n, 0.1, np.float32),
                          relevance=np.full(n, 0.5, np.float32), geo=np.ones(n, np.float32),
                          fee_burden=np.full(n, burden, np.float32))
        return float(model.probability(grocery, f).mean())

    assert p(0.0) > p(0.5) > p(2.0) > p(10.0)
    # a fee ten times the monthly spend deters about as much as one five times it: the
    # odds fall by less than a factor 2, not by e^30 as a linear burden term would give
    assert p(10.0) > 0.5 * p(5.0) > 0


def test_calibrate_reproduces_an_observed_rate(grocery: TwinParams) -> None:
    n = grocery.n
    feats = OfferFeatures(kind="discount", days=30, depth=np.full(n, 0.1, np.float32),
                          relevance=np.full(n, 0.2, np.float32), geo=np.ones(n, np.float32),
                          fee_burden=np.zeros(n, np.float32))
    chances = grocery.visit_rate * 30
    model = ParametricResponse().calibrate(grocery, feats, observed_rate=0.12,
                                           opportunities=chances)
    p = model.probability(grocery, feats).astype(float)
    assert np.mean(1 - (1 - p) ** chances) == pytest.approx(0.12, abs=1e-3)
    assert model.intercept["partner"] == ParametricResponse().intercept["partner"]
