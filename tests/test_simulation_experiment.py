"""Controlled experiments (treatment vs control, CRN, CIs, segments) and the forecast."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from retail.offers import Offer
from simulation.experiment import METRICS, ExperimentResult, run_experiment, t_interval
from simulation.forecast import forecast
from simulation.params import TwinParams
from twinsim.errors import CohortTooSmall, OfferError


@pytest.fixture(scope="module")
def twins() -> TwinParams:
    return TwinParams.synthetic(4000, "grocery", seed=31)


@pytest.fixture(scope="module")
def meat(twins: TwinParams) -> ExperimentResult:
    offer = Offer.from_dict({"name": "Quality meat", "kind": "discount", "pct": 20,
                             "categories": ["meat"], "days": 30, "target": ["meat=yes"]})
    return run_experiment(twins, offer, days=60, replications=6, seed=1, segments="persona")


def test_every_metric_has_an_ordered_interval(meat: ExperimentResult) -> None:
    assert set(meat.overall) == set(METRICS)
    for name, e in meat.overall.items():
        if name in ("roi", "partner_income", "membership_fees") and not e.sd:
            continue
        assert e.low <= e.mean <= e.high, name
    assert meat.overall["incremental_revenue"].low > 0  # 20% off meat sells more meat
    assert meat.overall["offer_cost"].mean > meat.overall["cannibalisation"].mean > 0


def test_reach_is_the_targeted_cohort_still_active(twins: TwinParams,
                                                   meat: ExperimentResult) -> None:
    t = twins.attributes
    assert t is not None
    targeted = (t["meat"] == 1).to_numpy()
    assert meat.overall["reach"].mean == (targeted & twins.active).sum()


def test_roi_is_net_profit_over_cost(meat: ExperimentResult) -> None:
    o = meat.overall
    assert o["net_profit"].mean == pytest.approx(o["incremental_margin"].mean)
    # ROI is computed per replication; on these tight runs the ratio of means is close
    assert o["roi"].mean == pytest.approx(o["net_profit"].mean / o["offer_cost"].mean,
                                          rel=0.02)


def test_segments_add_up_to_the_whole(meat: ExperimentResult) -> None:
    assert meat.segment_by == "persona" and "anna" in meat.segments
    for k in ("reach", "incremental_revenue", "offer_cost"):
        total = sum(seg[k].mean for seg in meat.segments.values())
        assert total == pytest.approx(meat.overall[k].mean, rel=1e-6)


def test_result_exports_json_and_polars(meat: ExperimentResult) -> None:
    d = json.loads(meat.to_json())
    assert d["offer"]["name"] == "Quality meat" and d["replications"] == 6
    assert d["overall"]["incremental_revenue"]["mean"] > 0
    table = meat.to_polars()
    assert table.columns == ["segment", "metric", "mean", "low", "high"]
    assert table.filter(pl.col("segment") == "all").height == len(METRICS)
    daily = meat.daily
    assert set(daily["arm"].unique()) == {"treatment", "control"} and daily.height == 120


def test_partner_income_is_exact_fees(twins: TwinParams) -> None:
    offer = Offer(name="service", kind="partner", partner="Volvo", partner_value=500,
                  fee_per_exposure=3.0, fee_per_redemption=40.0, days=20)
    r = run_experiment(twins, offer, days=30, replications=3, seed=2)
    o = r.overall
    assert o["partner_income"].mean == pytest.approx(3.0 * o["reach"].mean
                                                     + 40.0 * o["redemptions"].mean)
    assert o["offer_cost"].mean == 0 and math.isnan(o["roi"].mean)
    assert o["incremental_revenue"].mean == 0  # redeemed at the partner, not here


def test_membership_keeps_members_and_charges_fees() -> None:
    p = TwinParams.synthetic(3000, "grocery", seed=5)
    offer = Offer(name="Plus", kind="membership", monthly_fee=39, pct=5, days=60)
    r = run_experiment(p, offer, days=120, replications=4, seed=3)
    o = r.overall
    assert o["membership_fees"].low > 0 and o["partner_income"].mean == 0
    assert o["incremental_retention"].mean > 0
    assert o["retention_treatment"].mean > o["retention_control"].mean


def test_deeper_discount_more_redemptions_with_common_random_numbers(twins: TwinParams) -> None:
    rates = [run_experiment(twins, Offer(name="d", kind="discount", pct=pct, days=20),
                            days=20, replications=2, seed=4).overall["redemption_rate"].mean
             for pct in (5, 25)]
    assert rates[0] < rates[1]


def test_geo_targeting_by_segment(twins: TwinParams) -> None:
    park = Offer(name="Liseberg", kind="partner", partner="Liseberg", partner_value=400,
                 fee_per_redemption=30, location="Göteborg", days=30)
    r = run_experiment(twins, park, days=30, replications=3, seed=5, segments="region")
    gbg, sthlm = r.segments["Göteborg"], r.segments["Stockholm"]
    assert gbg["redemption_rate"].mean > 10 * sthlm["redemption_rate"].mean


def test_bad_requests_speak_clearly(twins: TwinParams) -> None:
    offer = Offer(name="x", kind="discount", pct=10)
    with pytest.raises(ValueError, match="replications"):
        run_experiment(twins, offer, replications=1)
    with pytest.raises(OfferError, match="after the 30-day horizon"):
        run_experiment(twins, Offer(name="late", kind="discount", pct=5, start_day=40),
                       days=30, replications=2)
    with pytest.raises(CohortTooSmall):
        run_experiment(twins, Offer(name="x", kind="discount", pct=5,
                                    target=("vehicle_age=3y",)), replications=2)
    with pytest.raises(ValueError, match="segments"):
        run_experiment(twins, offer, days=5, replications=2, segments="shoe_size")


def test_t_interval_covers_at_the_nominal_rate() -> None:
    rng = np.random.default_rng(0)
    covered = 0
    for _ in range(2000):
        e = t_interval(rng.normal(5.0, 2.0, 5))
        covered += e.low <= 5.0 <= e.high
    assert 0.93 < covered / 2000 < 0.97  # binomial sd 0.005 around 0.95


def test_forecast_matches_the_expected_purchase_days() -> None:
    p = TwinParams.synthetic(3000, "grocery", seed=6)
    f = forecast(p, days=28, replications=4, seed=1)
    days = np.arange(28)
    rhythm = 1 + p.rhythm_amp[:, None] * np.cos(2 * np.pi * (days - p.rhythm_phase[:, None]) / 14)
    p_day = np.minimum(p.visit_rate[:, None] * p.weekday[:, days % 7] * rhythm, 1.0)
    upper = (p_day.sum(axis=1) * p.active).sum()  # as if nobody churned
    survive = np.exp(-p.churn_hazard.max() * 28)
    assert upper * survive * 0.97 < f.transactions.mean < upper * 1.03
    assert f.transactions.low < f.transactions.mean < f.transactions.high
    assert f.active_at_horizon.mean <= p.active.sum()
    assert json.loads(f.to_json())["days"] == 28 and f.daily.height == 28


def test_cli_trial_and_forecast(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from twinsim.cli import app

    offer = tmp_path / "offer.json"
    offer.write_text(json.dumps({"name": "Meat", "kind": "discount", "pct": 20,
                                 "categories": ["meat"], "days": 10}))
    run = CliRunner().invoke(app, ["simulate", "--offer", str(offer), "--demo", "500", "--days",
                                   "15", "--replications", "2", "--json"])
    assert run.exit_code == 0, run.output
    assert json.loads(run.output)["overall"]["reach"]["mean"] > 0
    offer.write_text(json.dumps({"name": "Ties", "kind": "discount", "pct": 5,
                                 "categories": ["ties"]}))
    bad = CliRunner().invoke(app, ["simulate", "--offer", str(offer), "--demo", "50"])
    assert bad.exit_code == 2 and "unknown category" in bad.output
    fc = CliRunner().invoke(app, ["forecast", "--demo", "300", "--days", "10",
                                  "--replications", "2", "--json"])
    assert fc.exit_code == 0 and json.loads(fc.output)["days"] == 10
