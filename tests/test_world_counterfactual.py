"""Nature's counterfactuals: common random numbers and a true effect for every offer kind."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from retail.offers import Offer
from retail.world.counterfactual import OUTCOME_COLUMNS, counterfactual, forecast_truth

BLANKET = Offer(name="10 % on everything", kind="discount", pct=10, days=30)


def _truth_customers(world: Path, mid: str) -> pl.DataFrame:
    persons = pl.read_parquet(world / "_truth" / "persons.parquet")
    cust = pl.read_parquet(world / "_truth" / mid / "customers.parquet",
                           columns=["customer_id", "person"])
    region = pl.read_parquet(world / mid / "customers.parquet", columns=["customer_id",
                                                                         "region"])
    return cust.join(persons, left_on="person", right_on="person_id").join(
        region, on="customer_id", suffix="_merchant")


def test_an_offer_that_touches_nobody_gives_identical_arms(small_world: Path) -> None:
    no_pet = _truth_customers(small_world, "grocery_1").filter(~pl.col("pet"))["customer_id"]
    tiny = Offer(name="tiny", kind="discount", pct=0.01, categories=("pet_food",), days=30)
    cf = counterfactual(small_world, "grocery_1", tiny, customer_ids=no_pet, days=40)
    assert cf.treated.equals(cf.baseline)
    assert cf.incremental()["incremental_spend"] == 0.0
    assert tuple(cf.treated.columns) == OUTCOME_COLUMNS


def test_blanket_discount_redeems_and_thins_the_margin(small_world: Path) -> None:
    cf = counterfactual(small_world, "grocery_1", BLANKET, days=45)
    t, b = cf.totals()["treated"], cf.totals()["baseline"]
    inc = cf.incremental()
    assert inc["redemption_rate"] > 0.05 and t["discount_cost"] > 0
    assert t["gross_margin"] / t["spend"] < b["gross_margin"] / b["spend"]
    assert inc["incremental_revenue"] > 0
    daily = cf.daily.filter(pl.col("arm") == "treated")
    assert daily.height == 45 and abs(daily["spend"].sum() - t["spend"]) < 1.0


def test_same_seed_same_answer_and_subsets_agree(small_world: Path) -> None:
    a = counterfactual(small_world, "grocery_1", BLANKET, days=20, seed=3)
    b = counterfactual(small_world, "grocery_1", BLANKET, days=20, seed=3)
    assert a.treated.equals(b.treated)
    ids = a.treated["customer_id"].head(300)
    sub = counterfactual(small_world, "grocery_1", BLANKET, customer_ids=ids, days=20, seed=3)
    assert sub.treated.equals(a.treated.head(300))  # a customer's draws are its own
    other = counterfactual(small_world, "grocery_1", BLANKET, days=20, seed=4)
    assert not other.baseline.equals(a.baseline)
    assert forecast_truth(small_world, "grocery_1", days=20, seed=3).equals(a.baseline)


def test_a_gothenburg_offer_is_worth_little_in_stockholm(small_world: Path) -> None:
    offer = Offer(name="Liseberg", kind="discount", pct=30, location="Göteborg", days=45)
    cf = counterfactual(small_world, "grocery_1", offer, days=45)
    region = pl.read_parquet(small_world / "grocery_1" / "customers.parquet",
                             columns=["customer_id", "region"])
    joined = cf.treated.join(cf.baseline, on="customer_id", suffix="_b").join(
        region, on="customer_id")
    uplift = dict(joined.group_by("region").agg(
        (pl.col("spend") - pl.col("spend_b")).mean()).iter_rows())
    assert uplift["Göteborg"] > 5 * max(uplift["Stockholm"], 1.0)


def test_partner_car_offer_reaches_owners_of_three_year_old_cars(small_world: Path) -> None:
    offer = Offer(name="Nordbil", kind="partner", partner="car_1", partner_value=2000,
                  fee_per_exposure=1.0, fee_per_redemption=150, days=60)
    cf = counterfactual(small_world, "grocery_1", offer, days=60)
    people = _truth_customers(small_world, "grocery_1")
    red = cf.treated.filter(pl.col("redeemed")).join(people, on="customer_id")
    owners = red.filter(pl.col("car_1"))
    assert red.height > 0 and owners.height >= 0.6 * red.height
    assert (owners["vehicle_age_at_end_years"] - 3).abs().median() < 1.0
    inc = cf.incremental()
    assert inc["incremental_income"] == pytest.approx(
        cf.treated["partner_income"].sum(), abs=0.01)
    assert inc["incremental_income"] > 150 * red.height


def test_membership_earns_fees_and_keeps_customers(small_world: Path) -> None:
    offer = Offer(name="Prime", kind="membership", monthly_fee=49, pct=10, days=90)
    cf = counterfactual(small_world, "grocery_1", offer, days=90)
    t, b = cf.totals()["treated"], cf.totals()["baseline"]
    assert t["income"] > 0 and t["visits"] > b["visits"]
    assert t["active_at_end"] > b["active_at_end"]


def test_only_customers_who_take_an_offer_up_are_changed_by_it(small_world: Path) -> None:
    """Non-members of a membership offer (no fee ever paid, nothing redeemed) keep their
    baseline outcome exactly: the offer's lower churn is the members', no one else's."""
    offer = Offer(name="Prime", kind="membership", monthly_fee=49, pct=10, days=60)
    cf = counterfactual(small_world, "grocery_1", offer, days=90)
    joined = cf.treated.join(cf.baseline, on="customer_id", suffix="_b")
    outsiders = joined.filter((pl.col("fee_income") == 0) & ~pl.col("redeemed"))
    assert outsiders.height > 0.5 * joined.height
    for col in ("visits", "spend", "gross_margin", "active_at_end"):
        assert (outsiders[col] == outsiders[f"{col}_b"]).all(), col
    members = joined.filter(pl.col("fee_income") > 0)
    assert members["active_at_end"].sum() >= members["active_at_end_b"].sum()


@pytest.mark.parametrize("offer", [
    Offer(name="points", kind="points", earn_rate=1, point_value=0.03, days=60),
    Offer(name="baby to household", kind="cross_sell", pct=25, trigger_categories=("baby",),
          categories=("household",), days=60),
])
def test_points_and_cross_sell_have_an_effect(small_world: Path, offer: Offer) -> None:
    cf = counterfactual(small_world, "grocery_1", offer, days=60)
    inc = cf.incremental()
    assert inc["redemption_rate"] > 0 and inc["incremental_spend"] > 0


def test_unknown_customers_are_named(small_world: Path) -> None:
    with pytest.raises(ValueError, match="unknown to this merchant"):
        counterfactual(small_world, "grocery_1", BLANKET, customer_ids=["nobody"], days=5)
