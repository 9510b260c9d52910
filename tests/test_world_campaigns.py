"""Past campaigns: random control groups and a true effect of the offer."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from scipy.stats import chi2_contingency

from retail.offers import Offer
from retail.world.personas import MERCHANTS


def _exposures(world: Path, mid: str) -> pl.DataFrame:
    exp = pl.read_parquet(world / mid / "exposures.parquet")
    truth = pl.read_parquet(world / "_truth" / mid / "customers.parquet",
                            columns=["customer_id", "persona"])
    region = pl.read_parquet(world / mid / "customers.parquet", columns=["customer_id",
                                                                         "region"])
    return exp.join(truth, on="customer_id").join(region, on="customer_id")


def _balanced(df: pl.DataFrame, col: str) -> float:
    table = df.group_by(col, "arm").len().pivot(on="arm", index=col, values="len").fill_null(0)
    counts = table.drop(col).to_numpy()
    counts = counts[counts.sum(axis=1) > 0]
    return float(chi2_contingency(counts).pvalue) if counts.shape[0] > 1 else 1.0


@pytest.mark.parametrize("mid", [m.merchant_id for m in MERCHANTS])
def test_control_groups_are_random(small_world: Path, mid: str) -> None:
    exp = _exposures(small_world, mid)
    campaigns = pl.read_parquet(small_world / mid / "campaigns.parquet")
    assert 3 <= campaigns.height <= 5
    assert (campaigns["end"] >= campaigns["start"]).all()
    for cid in campaigns["campaign_id"]:
        one = exp.filter(pl.col("campaign_id") == cid)
        assert one.height > 20, cid
        share = (one["arm"] == "treatment").mean()
        assert 0.35 < share < 0.65, (cid, share)
        if one.height >= 200:
            assert _balanced(one, "persona") > 1e-3, cid
            assert _balanced(one, "region") > 1e-3, cid
        # only the treatment arm can redeem
        assert one.filter(pl.col("arm") == "control")["redemptions"].sum() == 0


def test_offers_are_stored_as_offer_json(small_world: Path) -> None:
    campaigns = pl.read_parquet(small_world / "grocery_1" / "campaigns.parquet")
    offers = [Offer.from_json(s, merchant_type="grocery") for s in campaigns["offer"]]
    assert {o.kind for o in offers} == {"discount", "partner", "cross_sell", "points"}


def test_discount_campaign_lifts_spend(small_world: Path) -> None:
    campaigns = pl.read_parquet(small_world / "grocery_1" / "campaigns.parquet")
    cid = campaigns.filter(pl.col("name") == "10 % on everything")["campaign_id"][0]
    one = pl.read_parquet(small_world / "grocery_1" / "exposures.parquet").filter(
        pl.col("campaign_id") == cid)
    mean = dict(one.group_by("arm").agg(pl.col("spend").mean()).iter_rows())
    visits = dict(one.group_by("arm").agg(pl.col("visits").mean()).iter_rows())
    assert mean["treatment"] > 1.03 * mean["control"]
    assert visits["treatment"] > visits["control"]
    treated = one.filter(pl.col("arm") == "treatment")
    assert 0.05 < treated["redeemed"].mean() < 0.9
    assert (treated.filter(pl.col("redeemed"))["discount_cost"] > 0).all()


def test_exposure_outcomes_match_the_transactions(small_world: Path) -> None:
    folder = small_world / "grocery_1"
    camp = pl.read_parquet(folder / "campaigns.parquet").row(1, named=True)
    exp = pl.read_parquet(folder / "exposures.parquet").filter(
        pl.col("campaign_id") == camp["campaign_id"])
    tx = pl.read_parquet(folder / "transactions.parquet").filter(
        pl.col("timestamp").dt.date().is_between(camp["start"], camp["end"]))
    seen = tx.group_by("customer_id").agg(
        pl.col("amount").sum().alias("tx_spend"),
        pl.col("timestamp").dt.date().n_unique().alias("tx_visits"))
    joined = exp.join(seen, on="customer_id", how="left").fill_null(0)
    assert (joined["visits"] == joined["tx_visits"]).all()
    assert (joined["spend"] - joined["tx_spend"]).abs().max() < 0.05
