"""Calibration from DP campaign tables and the validity harness on the small world."""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from retail.offers import Offer, load_offer
from simulation.calibration import (
    FACTOR_PRIOR_SD,
    LEVEL_OFFSET_MAX,
    LIFT_SD_FLOOR,
    PRIOR_LOGIT_SD,
    PULL_FORWARD_SD,
    RELEVANCE_POWER_RANGE,
    TAKER_RETENTION_SD,
    CalibratedResponse,
    FactorFits,
    _campaign_cohort,
    calibrate_response,
    posterior_rate,
)
from simulation.effects import build_effect, trigger_recent
from simulation.params import TwinParams
from simulation.response import ParametricResponse
from twins.schema import CohortFilter
from twinsim.evaluation import (
    evaluate_offer,
    load_suite,
    monte_carlo_se,
    owner_release,
    prepare_owner,
    summarise,
    truth_mask,
)

ROOT = Path(__file__).resolve().parent.parent
DISCOUNT = Offer(name="10 %", kind="discount", pct=10, days=21)


def _table(rate: float, n: int, *, spend_gap: float = 0.0, var: float = 0.0,
           cost: float | None = None) -> pl.DataFrame:
    """A response table (``twins.hub.response_table`` layout) of one discount campaign:
    ``rate`` of ``n`` treated redeemed, spread evenly over the frequency levels; ``cost`` SEK
    of discount per treated customer (None: not released)."""
    def row(attribute: str, level: int, k: float, **extra: float | None) -> dict[str, object]:
        return {"owner": "o", "merchant_type": "grocery", "campaign": 1,
                "offer_kind": "discount", "attribute": attribute, "level": level,
                "n_treated": k, "n_control": k, "redeemed_treated": rate * k,
                "redeemed_control": 0.0, "spend_treated_cents": None,
                "spend_control_cents": None, "cost_treated_cents": None,
                "cost_control_cents": None, "var_n": 2 * var, "var_redeemed": var,
                "var_spend_cents": None, "var_cost_cents": None, **extra}

    rows = [row("all", 0, n, spend_treated_cents=(300 + spend_gap) * n * 100,
                spend_control_cents=300 * n * 100,
                cost_treated_cents=None if cost is None else cost * n * 100,
                cost_control_cents=None if cost is None else 0.0, var_spend_cents=2 * var,
                var_cost_cents=var)]
    rows += [row("frequency", f, n / 7) for f in range(7)]
    return pl.DataFrame(rows, infer_schema_length=None)


@pytest.fixture(scope="module")
def params() -> TwinParams:
    return TwinParams.synthetic(2000, "grocery", seed=2)


def _p(resp: object, params: TwinParams) -> float:
    return float(build_effect(DISCOUNT, params, response=resp).p_event.mean())  # type: ignore[arg-type]


def test_calibration_follows_the_observed_rate(params: TwinParams) -> None:
    base = _p(ParametricResponse(), params)
    high = calibrate_response(_table(0.6, 20_000), params, offers={1: DISCOUNT})
    low = calibrate_response(_table(0.02, 20_000), params, offers={1: DISCOUNT})
    assert isinstance(high, CalibratedResponse) and high.shift0["discount"] > 0
    assert _p(low, params) < base < _p(high, params)
    # other kinds are untouched
    assert "partner" not in high.shift0 and high.lift.get("partner", 1.0) == 1.0


def test_noisy_or_tiny_campaigns_are_shrunk_toward_the_model(params: TwinParams) -> None:
    base = _p(ParametricResponse(), params)
    moved = [abs(_p(calibrate_response(_table(0.6, n), params, offers={1: DISCOUNT}), params)
                 - base) for n in (2, 30, 20_000)]
    assert moved[0] < moved[1] < moved[2]  # the more customers, the closer to what they did
    assert moved[0] < 0.6 * moved[2]
    noisy = calibrate_response(_table(0.6, 20_000, var=1e8), params, offers={1: DISCOUNT})
    assert abs(_p(noisy, params) - base) < 0.5 * moved[2]


def test_posterior_rate_weighs_the_count_against_its_noise() -> None:
    clear, sd_clear = posterior_rate(6_000, 20_000, 0.0, prior_rate=0.05)
    assert clear == pytest.approx(0.3, abs=0.003) and sd_clear < 0.02
    # DP noise far above the count: the (weak) prior decides, with its own uncertainty
    lost, sd_lost = posterior_rate(6_000, 20_000, 1e10, prior_rate=0.05)
    assert lost == pytest.approx(0.05 * math.exp(PRIOR_LOGIT_SD ** 2 / 2), rel=0.6)
    assert sd_lost == pytest.approx(PRIOR_LOGIT_SD, rel=0.05)
    # a count pushed below zero by noise is a small rate, not zero, and an uncertain one
    neg, sd_neg = posterior_rate(-40, 2_000, 45.0 ** 2, prior_rate=0.01)
    assert 1e-4 < neg < 0.01 and sd_neg > 0.5
    # noise of a few percent of the count moves the rate, not toward the prior
    noisy, _ = posterior_rate(340, 4_250, 44.0 ** 2, prior_rate=0.01)
    assert noisy == pytest.approx(340 / 4_250, rel=0.05)


def test_level_offsets_stay_bounded_when_a_level_is_extreme(params: TwinParams) -> None:
    table = _table(0.2, 20_000)
    # the lowest frequency level: (almost) everyone redeemed, a rate no twin level can match
    table = table.with_columns(pl.when((pl.col("attribute") == "frequency")
                                       & (pl.col("level") == 0))
                               .then(pl.col("n_treated") * 0.99)
                               .otherwise(pl.col("redeemed_treated")).alias("redeemed_treated"))
    fit = calibrate_response(table, params, offers={1: DISCOUNT})
    off = fit.offsets["discount"]["frequency"]
    assert np.abs(off).max() <= LEVEL_OFFSET_MAX + 1e-9
    assert off[0] == pytest.approx(off.max())  # the extreme level still leads


def test_spend_gap_scales_the_lifts(params: TwinParams) -> None:
    more = calibrate_response(_table(0.3, 20_000, spend_gap=300), params, offers={1: DISCOUNT})
    less = calibrate_response(_table(0.3, 20_000, spend_gap=-100), params, offers={1: DISCOUNT})
    assert more.lift["discount"] > 1.0 > less.lift["discount"]


def test_released_discount_cost_scales_the_cost_factor(params: TwinParams) -> None:
    def fit(cost: float | None) -> CalibratedResponse:
        return calibrate_response(_table(0.3, 20_000, cost=cost, spend_gap=60.0), params,
                                  offers={1: DISCOUNT})

    dear, cheap, unknown = fit(150.0), fit(15.0), fit(None)
    assert dear.cost["discount"] > 1.0 > cheap.cost["discount"]
    assert unknown.cost["discount"] == 1.0  # no released cost: the factor stays at its prior
    # the factor reaches the engine: a redeemed visit costs more under the dearer response
    eff_dear = build_effect(DISCOUNT, params, response=dear)
    eff_cheap = build_effect(DISCOUNT, params, response=cheap)
    assert float(eff_dear.cost_mult.mean()) > float(eff_cheap.cost_mult.mean())


def test_factors_come_from_the_campaigns_most_like_the_offer() -> None:
    fits = FactorFits(x=(-3.5, 0.0), log_lift=(math.log(3.0), math.log(0.8)),
                      info_lift=(50.0, 50.0), log_cost=(math.log(0.3), math.log(1.3)),
                      info_cost=(500.0, 500.0))
    blanket, narrow = fits.local(0.0, "cost")[0], fits.local(-3.5, "cost")[0]
    assert blanket == pytest.approx(math.log(1.3), abs=0.05)
    assert narrow == pytest.approx(math.log(0.3), abs=0.05)
    # between them: interpolated along log relevance, not the better-measured one's
    middle, sd_middle = fits.local(-1.75, "cost")
    assert middle == pytest.approx((math.log(0.3) + math.log(1.3)) / 2, abs=0.05)
    assert sd_middle >= LIFT_SD_FLOOR - 1e-9
    lopsided = FactorFits(x=fits.x, log_lift=fits.log_lift, info_lift=fits.info_lift,
                          log_cost=fits.log_cost, info_cost=(50.0, 5000.0))
    assert lopsided.local(-1.75, "cost")[0] == pytest.approx(middle, abs=0.1)
    # far from every campaign: back toward the prior (factor 1), with a larger sd
    far, sd_far = fits.local(-12.0, "lift")
    assert abs(far) < 0.05 and sd_far >= FACTOR_PRIOR_SD - 1e-9
    resp = CalibratedResponse(fits={"discount": fits}, lift={"discount": 1.0},
                              cost={"discount": 1.0})
    assert resp.factors("discount", np.ones(10))[1] == pytest.approx(math.exp(blanket))


def test_a_tier_discount_learns_from_tier_campaigns_and_a_category_one_from_the_rest(
        params: TwinParams) -> None:
    """Takers of a tier discount trade up, so its covered spend far exceeds the tier's
    share: a new tier offer takes the factors the tier campaign alone gives, a category
    discount those the category campaign alone gives, however near their relevance."""
    premium = Offer(name="premium 15 %", kind="discount", pct=15, tiers=("premium",), days=28)
    meat = Offer(name="meat 20 %", kind="discount", pct=20, categories=("meat",), days=28)
    t_meat = _table(0.2, 20_000, cost=8.0, spend_gap=20.0)
    t_prem = _table(0.1, 20_000, cost=60.0, spend_gap=40.0)
    both = calibrate_response(pl.concat([t_meat, t_prem.with_columns(
        campaign=pl.lit(2, dtype=pl.Int64))]), params, offers={1: meat, 2: premium})
    assert {"discount", "discount:plain", "discount:tiered"} <= set(both.fits)
    alone_meat = calibrate_response(t_meat, params, offers={1: meat})
    alone_prem = calibrate_response(t_prem, params, offers={1: premium})
    assert set(alone_meat.fits) == {"discount"}  # one kind of campaign: every offer uses it
    for rel in (np.full(50, 0.05), np.full(50, 0.3)):
        assert both.factors("discount", rel, tiered=False) == pytest.approx(
            alone_meat.factors("discount", rel))
        assert both.factors("discount", rel, tiered=True) == pytest.approx(
            alone_prem.factors("discount", rel))
    assert both.factors("discount", rel, tiered=True)[1] > 2 * both.factors(
        "discount", rel, tiered=False)[1]


def test_drawn_responses_vary_the_priors_within_their_ranges(params: TwinParams) -> None:
    fit = calibrate_response(_table(0.3, 20_000, cost=30.0, spend_gap=60.0), params,
                             offers={1: DISCOUNT})
    draws = [fit.draw(np.random.default_rng(s)) for s in range(40)]
    retention = np.array([d.base.taker_retention for d in draws])
    pull = np.array([d.base.pull_forward for d in draws])
    assert np.all((pull >= 0) & (pull <= 1)) and pull.std() > 0.05
    assert abs(pull.mean() - fit.base.pull_forward) < 3 * PULL_FORWARD_SD / 6
    power = np.array([d.base.relevance_power for d in draws])
    assert np.all((retention >= 0) & (retention <= 1)) and retention.std() > 0.05
    assert abs(retention.mean() - fit.base.taker_retention) < 3 * TAKER_RETENTION_SD / 6
    assert np.all((power >= RELEVANCE_POWER_RANGE[0]) & (power <= RELEVANCE_POWER_RANGE[1]))
    lifts = np.array([d.factors("discount")[0] for d in draws])
    assert lifts.std() > 0 and fit.factors("discount")[0] == pytest.approx(
        fit.lift["discount"], rel=1e-6)


def test_antithetic_draws_mirror_each_other_and_shrink_the_monte_carlo_error(
        params: TwinParams) -> None:
    fit = calibrate_response(_table(0.3, 20_000, cost=30.0, spend_gap=60.0), params,
                             offers={1: DISCOUNT})
    a = fit.draw(np.random.default_rng(3))
    b = fit.draw(np.random.default_rng(3), antithetic=True)
    assert a.z["discount"] == pytest.approx(-b.z["discount"]) and a.z["discount"] != 0
    assert a.shift0["discount"] - fit.shift0["discount"] == pytest.approx(
        fit.shift0["discount"] - b.shift0["discount"])
    lo, hi = RELEVANCE_POWER_RANGE
    assert a.base.relevance_power + b.base.relevance_power == pytest.approx(lo + hi)
    # the factors of a pair straddle the fitted one (log scale: exactly mirrored)
    mid = math.log(fit.factors("discount")[0])
    assert math.log(a.factors("discount")[0]) - mid == pytest.approx(
        mid - math.log(b.factors("discount")[0]))
    # paired rounds: the error of the mean comes from the pairs' means
    rounds = np.array([1.0, 3.0, 2.5, 1.5, 2.2, 1.8])  # pair means 2, 2, 2
    assert monte_carlo_se(rounds) == 0.0
    assert monte_carlo_se(np.array([1.0, 3.0, 4.0, 6.0])) == pytest.approx(
        np.std([2.0, 5.0], ddof=1) / math.sqrt(2))


def test_a_cross_sell_campaign_went_to_recent_trigger_buyers() -> None:
    apparel = TwinParams.synthetic(4000, "apparel", seed=5)
    offer = Offer(name="ties", kind="cross_sell", pct=20, categories=("ties",),
                  trigger_categories=("suits",))
    cohort, hold = _campaign_cohort(apparel, offer, np.random.default_rng(1))
    assert hold is not None and len(hold) == cohort.n < apparel.n
    trig = np.array([c == "suits" for c in apparel.categories], dtype=float)
    assert trigger_recent(cohort, trig, 90).mean() > 1.5 * trigger_recent(apparel, trig,
                                                                          90).mean()
    # having bought within 90 days, most still hold a 60-day coupon
    assert 0.5 < hold.mean() <= 1.0
    same, none = _campaign_cohort(apparel, DISCOUNT, np.random.default_rng(1))
    assert same is apparel and none is None


def test_suite_ships_at_least_eight_valid_offers() -> None:
    suite = load_suite(ROOT / "offers" / "suite.json")
    assert len(suite) >= 8
    types = {"grocery_1": "grocery", "apparel_1": "apparel", "cafe_1": "cafe"}
    kinds = set()
    for entry in suite:
        load_offer(ROOT / "offers" / entry.file, merchant_type=types[entry.merchant_id])
        kinds.add(entry.offer.kind)
    assert {"discount", "cross_sell", "partner", "membership"} <= kinds


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    old = os.environ.get("TWINSIM_CACHE")
    os.environ["TWINSIM_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if old is None:
        os.environ.pop("TWINSIM_CACHE")
    else:
        os.environ["TWINSIM_CACHE"] = old


@pytest.fixture(scope="module")
def world(small_world: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the small world (ledgers may be created in it)."""
    dst = tmp_path_factory.mktemp("w") / "small"
    shutil.copytree(small_world, dst)
    return dst


def test_scratch_release_never_touches_the_owner_ledger(world: Path, cache: None) -> None:
    from privacy.budget import PrivacyBudget

    owner = world / "apparel_1"
    budget = PrivacyBudget.init_owner(owner, period="2025", cap_epsilon=2.0)
    spent = budget.state().spent_epsilon
    release, ft = owner_release(world, "apparel_1", epsilon=1.0)
    assert release.privacy_loss["epsilon"] > 0 and ft.height > 0
    assert PrivacyBudget.for_owner(owner).state().spent_epsilon == spent
    exact, _ = owner_release(world, "apparel_1", epsilon=math.inf)
    assert exact.owner.startswith("nonprivate:")
    with pytest.raises(ValueError, match="epsilon"):
        owner_release(world, "apparel_1", epsilon=0.0)


QUICK = {"classes": (16,), "steps": 200}


@pytest.fixture(scope="module")
def apparel(world: Path, cache: None):  # type: ignore[no-untyped-def]
    return prepare_owner(world, "apparel_1", epsilon=math.inf, fit_options=QUICK)


def test_uplift_selects_the_same_customers_and_brackets_its_prediction(apparel) -> None:  # type: ignore[no-untyped-def]
    offer = load_offer(ROOT / "offers" / "suit_buyers_another_suit.json",
                       merchant_type="apparel")
    mask = truth_mask(apparel.feature_table, offer.target)
    assert mask.sum() == CohortFilter.parse(["menswear=yes"]).mask(
        apparel.feature_table).sum() > 0
    res = evaluate_offer(apparel, offer, days=45, replications=4)
    assert res.targeted_real == int(mask.sum())
    assert res.pred_low <= res.pred_profit <= res.pred_high
    assert res.pred_cost > 0
    # the twins' no-offer margin of the cohort is in the truth's ballpark
    assert 0.5 < res.pred_baseline_margin / res.true_baseline_margin < 2.0
    d = res.to_dict()
    assert {"true_profit", "pred_profit", "covered", "rel_error"} <= set(d)


def test_owner_calibration_covers_its_campaign_kinds(apparel) -> None:  # type: ignore[no-untyped-def]
    """apparel_1 ran discounts and a cross-sell: exactly those kinds are calibrated, with
    centred, finite level offsets and non-negative lift factors."""
    resp = apparel.response
    assert set(resp.shift0) == {"discount", "cross_sell"} == set(resp.lift)
    for kind, offs in resp.offsets.items():
        for attr, off in offs.items():
            assert np.isfinite(off).all(), (kind, attr)
    assert all(f >= 0 for f in resp.lift.values())


def test_summary_metrics() -> None:
    from twinsim.evaluation import OfferEvaluation

    def row(true: float, pred: float) -> OfferEvaluation:
        return OfferEvaluation(merchant_id="m", offer="o", epsilon=1.0, targeted_real=10,
                               targeted_twins=10, true_profit=true, pred_profit=pred,
                               pred_low=pred - 5, pred_high=pred + 5, true_margin=true,
                               pred_margin=pred, true_baseline_margin=1000,
                               pred_baseline_margin=1000, true_redemption_rate=0.1,
                               pred_redemption_rate=0.1)

    s = summarise([row(100, 110), row(-50, -52), row(20, 40), row(200, 150)])
    assert s["median_rel_error"] == pytest.approx(np.median([0.1, 0.04, 1.0, 0.25]))
    assert s["ci_coverage"] == 0.25 and s["spearman"] == pytest.approx(1.0)


def _row(true: float, pred: float, half: float = 5.0, offer: str = "o"):  # type: ignore[no-untyped-def]
    from twinsim.evaluation import OfferEvaluation

    return OfferEvaluation(merchant_id="m", offer=offer, epsilon=1.0, targeted_real=10,
                           targeted_twins=10, true_profit=true, pred_profit=pred,
                           pred_low=pred - half, pred_high=pred + half, true_margin=true,
                           pred_margin=pred, true_baseline_margin=1000,
                           pred_baseline_margin=1000, true_redemption_rate=0.1,
                           pred_redemption_rate=0.1)


def test_pooled_releases_summarise_every_offer_and_release() -> None:
    from twinsim.evaluation import ValidityReport, meets_targets, pool_releases

    def report(preds: list[float], half: float) -> ValidityReport:
        rows = tuple(_row(t, p, half, offer=f"o{i}")
                     for i, (t, p) in enumerate(zip((100, 200, 300, 2), preds, strict=True)))
        return ValidityReport(epsilon=1.0, rows=rows, summary=summarise(rows))

    good = report([105, 190, 310, -40], half=50)  # rel errors .05 .05 .03 21: median .05
    bad = report([150, 120, 330, 30], half=5)  # .5 .4 .1 14: median .45; covers none
    assert meets_targets(good.summary) and not meets_targets(bad.summary)
    pooled = pool_releases([good, bad])
    s = pooled["summary"]
    assert s["releases"] == 2 and s["releases_meeting_targets"] == 1
    assert s["median_rel_error"] == pytest.approx(np.median(
        [0.05, 0.05, 1 / 30, 21, 0.5, 0.4, 0.1, 14]))
    assert s["ci_coverage"] == pytest.approx((4 + 0) / 8)
    o0 = pooled["offers"][0]
    assert o0["pred_mean"] == pytest.approx(127.5)
    assert o0["pred_sd_releases"] == pytest.approx(np.std([105, 150], ddof=1))
    assert o0["dp_sd"] == pytest.approx(o0["pred_sd_releases"])  # no Monte-Carlo error given
    assert o0["dp_sd_over_truth"] == pytest.approx(o0["pred_sd_releases"] / 100)
    # the rounds' own Monte-Carlo error is not the releases' DP noise
    noisy = [ValidityReport(epsilon=1.0, rows=tuple(replace(r, pred_se=20.0) for r in rep.rows),
                            summary=rep.summary) for rep in (good, bad)]
    o0 = pool_releases(noisy)["offers"][0]
    assert o0["dp_sd"] == pytest.approx(math.sqrt(o0["pred_sd_releases"] ** 2 - 20.0 ** 2))
    assert pooled["offers"][3]["dp_sd_over_truth"] > 10  # a near-zero truth: hopeless


def test_evaluate_cli_errors_and_validity_json(world: Path, apparel, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from twinsim.cli import app

    runner = CliRunner()
    bad = runner.invoke(app, ["evaluate", "uplift", "--world", str(world), "--merchant",
                              "nope", "--offer", str(ROOT / "offers" / "blanket_10pct.json")])
    assert bad.exit_code == 2 and bad.stderr.startswith("error: ")
    bad = runner.invoke(app, ["evaluate", "validity", "--world", str(world), "--epsilon", "-1"])
    assert bad.exit_code == 2 and "epsilon" in bad.stderr
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"offers": [
        {"file": str(ROOT / "offers" / f), "merchant": "apparel_1"}
        for f in ("suit_buyers_ties_shirts.json", "suit_buyers_another_suit.json",
                  "blanket_10pct.json")]}))
    res = runner.invoke(app, ["evaluate", "validity", "--world", str(world), "--epsilon", "inf",
                              "--suite", str(suite), "--days", "20", "--replications", "2",
                              "--quick-fit", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["non_private"] and len(out["offers"]) == 3
    assert {"median_rel_error", "ci_coverage", "spearman"} <= set(out["summary"])
    # several releases: only at a finite ε; each its own report, then the pooled figures
    bad = runner.invoke(app, ["evaluate", "validity", "--world", str(world), "--epsilon", "inf",
                              "--suite", str(suite), "--repeats", "2"])
    assert bad.exit_code == 2 and "finite epsilon" in bad.stderr
    res = runner.invoke(app, ["evaluate", "validity", "--world", str(world), "--epsilon", "1",
                              "--suite", str(suite), "--days", "20", "--replications", "2",
                              "--repeats", "2", "--quick-fit", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["repeats"] == 2 and len(out["releases"]) == 2
    assert out["pooled"]["summary"]["releases"] == 2 and len(out["pooled"]["offers"]) == 3
    preds = [[o["pred_profit"] for o in r["offers"]] for r in out["releases"]]
    assert preds[0] != preds[1]  # two draws of the DP noise
