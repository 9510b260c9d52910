"""Each persona's signature is visible in the raw transactions (nature's ground truth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest

from retail.world.personas import PERSONAS


@pytest.fixture(scope="module")
def grocery(small_world: Path) -> pl.DataFrame:
    names = pl.Series("pname", [p.name for p in PERSONAS])
    truth = pl.read_parquet(small_world / "_truth" / "grocery_1" / "customers.parquet",
                            columns=["customer_id", "persona"])
    truth = truth.with_columns(names.gather(truth["persona"].cast(pl.Int64)).alias("pname"))
    tx = pl.read_parquet(small_world / "grocery_1" / "transactions.parquet")
    return tx.join(truth.select("customer_id", "pname"), on="customer_id")


@pytest.fixture(scope="module")
def per_customer(grocery: pl.DataFrame) -> pl.DataFrame:
    return grocery.group_by("customer_id", "pname").agg(
        pl.col("timestamp").dt.date().n_unique().alias("visits"),
        pl.col("organic").mean().alias("organic"),
        (pl.col("tier") == "budget").mean().alias("budget"),
        (pl.col("category") == "pet_food").any().alias("pet_food"),
        (pl.col("category") == "baby").any().alias("baby"))


def _by_persona(df: pl.DataFrame, col: str, how: str = "mean") -> dict[str, float]:
    agg = getattr(pl.col(col), how)()
    return dict(df.group_by("pname").agg(agg).iter_rows())


def test_eco_premium_buys_far_more_organic(per_customer: pl.DataFrame) -> None:
    share = _by_persona(per_customer, "organic")
    eco = share.pop("eco_premium")
    assert eco > 0.4 and eco > 2.5 * max(share.values())


def test_budget_daily_shops_nearly_daily_and_cheapest(per_customer: pl.DataFrame) -> None:
    visits = _by_persona(per_customer, "visits", "median")
    budget = _by_persona(per_customer, "budget")
    daily = visits.pop("budget_daily")
    assert daily > 120 and daily > 3 * max(visits.values())
    assert budget["budget_daily"] > 0.6 and budget["eco_premium"] < 0.05


def test_erratic_baskets_vary_most(grocery: pl.DataFrame) -> None:
    baskets = grocery.group_by("customer_id", "pname", pl.col("timestamp").dt.date()).agg(
        pl.col("amount").sum())
    cv = baskets.group_by("customer_id", "pname").agg(
        (pl.col("amount").std() / pl.col("amount").mean()).alias("cv"))
    med = _by_persona(cv, "cv", "median")
    erratic = med.pop("erratic")
    assert erratic > max(med.values()) + 0.1


def test_life_situations_show_in_categories(per_customer: pl.DataFrame) -> None:
    pet = _by_persona(per_customer, "pet_food")
    baby = _by_persona(per_customer, "baby")
    assert pet["dog_owner"] > 0.9 and pet["eco_premium"] < 0.3
    assert baby["new_parents"] > 0.9 and baby["student"] == 0.0


def _weekly_autocorrelation(grocery: pl.DataFrame, persona: str) -> tuple[float, float]:
    """Mean lag-1 and lag-2 autocorrelation of weekly spend across a persona's customers."""
    wk = (grocery.filter(pl.col("pname") == persona)
          .with_columns(((pl.col("timestamp").dt.ordinal_day() - 1) // 7).alias("week"))
          .filter(pl.col("week") < 52)
          .group_by("customer_id", "week").agg(pl.col("amount").sum()))
    ids = wk["customer_id"].unique().sort()
    row = pl.DataFrame({"customer_id": ids}).with_row_index("r")
    wk = wk.join(row, on="customer_id")
    m = np.zeros((ids.len(), 52))
    m[wk["r"].to_numpy(), wk["week"].to_numpy()] = wk["amount"].to_numpy()
    m = m[(m > 0).sum(axis=1) >= 20]
    m = m - m.mean(axis=1, keepdims=True)
    v = (m * m).sum(axis=1)
    r1 = (m[:, 1:] * m[:, :-1]).sum(axis=1) / v
    r2 = (m[:, 2:] * m[:, :-2]).sum(axis=1) / v
    return float(r1.mean()), float(r2.mean())


def test_bonus_children_show_a_two_week_rhythm(grocery: pl.DataFrame) -> None:
    lag1, lag2 = _weekly_autocorrelation(grocery, "bonus_children")
    assert lag1 < -0.1 and lag2 > 0.1
    f1, f2 = _weekly_autocorrelation(grocery, "family")  # weekly shoppers: no such rhythm
    assert f1 > -0.05 and f2 < 0.05
