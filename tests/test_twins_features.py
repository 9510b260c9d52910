"""Owner-side features and campaign outcome tables on small hand-built merchants."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import polars as pl
import pytest

from retail.schema import customers_schema, transactions_schema
from twins.features import features
from twins.outcomes import campaign_outcomes
from twins.schema import SCHEMA

END = dt.date(2024, 12, 31)
START = END - dt.timedelta(days=364)
WEEKS = [START + dt.timedelta(days=7 * i + 2) for i in range(52)]


def _tx(cid: str, dates: list[dt.date], amounts: list[float], **kw: Any) -> list[dict]:
    return [dict(transaction_id=0, customer_id=cid, store_id=1,
                 timestamp=dt.datetime.combine(d, dt.time(12)),
                 channel=kw.get("channel", "store"), category=kw.get("category", "produce"),
                 tier=kw.get("tier", "standard"), organic=kw.get("organic", False),
                 quantity=3, unit_price=a / 3, amount=a, promo=False)
            for d, a in zip(dates, amounts, strict=True)]


def _customers(ids: list[str], consent: list[bool], merchant: str = "grocery",
               **extra: list[Any]) -> pl.DataFrame:
    n = len(ids)
    return pl.DataFrame(dict(customer_id=ids, region=["Malmö"] * n,
                             signup_date=[dt.date(2021, 3, 1)] * n, consent_analytics=consent,
                             consent_partner=[True] * n, **extra),
                        schema=customers_schema(merchant))


def _grocery() -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(0)
    rows = (_tx("weekly", WEEKS, [300.0] * 52)
            + _tx("twoweek", WEEKS, [650.0 if i % 2 else 180.0 for i in range(52)])
            + _tx("erratic", WEEKS, list(rng.choice([35.0, 60.0, 900.0, 1500.0], 52)))
            + _tx("secret", WEEKS, [100.0] * 52)
            + _tx("dog", WEEKS, [120.0] * 52, category="pet_food", organic=True)
            + _tx("old", [START - dt.timedelta(days=3)], [99.0]))
    ids = ["weekly", "twoweek", "erratic", "secret", "dog", "nobuy", "old"]
    return {"customers": _customers(ids, [True, True, True, False, True, True, True]),
            "transactions": pl.DataFrame(rows, schema=transactions_schema("grocery"))}


@pytest.fixture(scope="module")
def grocery_features() -> pl.DataFrame:
    return features(_grocery(), "grocery", END)


def _level(table: pl.DataFrame, cid: str, attr: str) -> str:
    code = table.filter(pl.col("customer_id") == cid)[attr].item()
    return SCHEMA[attr].levels[code]


def test_one_row_per_consenting_customer_and_none_for_others(grocery_features) -> None:
    ids = grocery_features["customer_id"].to_list()
    assert sorted(ids) == sorted(["weekly", "twoweek", "erratic", "dog", "nobuy", "old"])
    assert "secret" not in ids
    assert grocery_features.columns == ["customer_id", *SCHEMA.names]
    assert all(grocery_features[n].dtype == pl.UInt8 for n in SCHEMA.names)
    SCHEMA.check_codes(grocery_features)


def test_customers_without_purchases_get_lowest_activity_levels(grocery_features) -> None:
    for cid in ("nobuy", "old"):  # "old" bought only before the window
        assert _level(grocery_features, cid, "frequency") == "lt_0.25"
        assert _level(grocery_features, cid, "recency") == "365d_plus"
        assert _level(grocery_features, cid, "rhythm") == "sparse"
        assert _level(grocery_features, cid, "basket_value") == "lt_50"


def test_rhythm_rule_detects_two_week_and_weekly(grocery_features) -> None:
    assert _level(grocery_features, "twoweek", "rhythm") == "two_week"
    assert _level(grocery_features, "weekly", "rhythm") == "weekly"
    assert _level(grocery_features, "erratic", "rhythm") != "two_week"


def test_volatility_and_basket_levels(grocery_features) -> None:
    assert _level(grocery_features, "erratic", "volatility") == "high"
    assert _level(grocery_features, "weekly", "volatility") == "low"
    assert _level(grocery_features, "weekly", "basket_value") == "200_400"
    assert _level(grocery_features, "weekly", "frequency") == "4_8"  # 52 days / 365 * 30


def test_life_tags_and_shares(grocery_features) -> None:
    assert _level(grocery_features, "dog", "pet") == "yes"
    assert _level(grocery_features, "weekly", "pet") == "no"
    assert _level(grocery_features, "dog", "organic_share") == "very_high"
    assert _level(grocery_features, "dog", "vehicle_age") == "none"


def test_car_brand_vehicle_age() -> None:
    cust = _customers(["a", "b"], [True, True], "car_brand", vehicle_model=["V90", None],
                      vehicle_purchase_date=[dt.date(2021, 6, 1), None])
    tx = pl.DataFrame(_tx("a", [dt.date(2024, 6, 1)], [4500.0], category="service"),
                      schema=transactions_schema("car_brand"))
    f = features({"customers": cust, "transactions": tx}, "car_brand", END)
    assert _level(f, "a", "vehicle_age") == "3y"
    assert _level(f, "b", "vehicle_age") == "none"
    assert _level(f, "a", "car") == "yes"
    assert _level(f, "a", "basket_value") == "1600_5k"


def test_campaign_outcomes_counts_and_clamped_cents(grocery_features) -> None:
    tables = _grocery()
    tables["campaigns"] = pl.DataFrame({"campaign_id": ["c1", "c2"]})
    tables["exposures"] = pl.DataFrame({
        "campaign_id": ["c1", "c1", "c1", "c1", "c1"],
        "customer_id": ["weekly", "weekly", "dog", "secret", "twoweek"],
        "arm": ["treatment", "treatment", "control", "treatment", "treatment"],
        "redeemed": [True, True, False, True, False],
        "spend": [9000.0, 1.0, 250.5, 10.0, 100.0],
        "discount_cost": [900.0, 0.2, 0.0, 2.0, 0.0]})
    out = campaign_outcomes(tables, grocery_features, attributes=("pet",),
                            spend_clamp_sek=5000.0, cost_clamp_sek=400.0)
    c1 = out["c1"]
    assert c1.shape == (2, 2, 2)
    counts = c1.counts.reshape(c1.shape)
    cents = c1.spend_cents.reshape(c1.shape)
    # weekly: one row kept (duplicates bounded), secret: no consent -> not counted
    assert counts.sum() == 3
    assert counts[0, 1, 0] == 1 and cents[0, 1, 0] == 500_000  # clamped to 5000 SEK
    assert counts[1, 0, 1] == 1 and cents[1, 0, 1] == 25_050  # dog, control
    assert out["c2"].counts.sum() == 0
    assert c1.sensitivity["spend_cents"]["l2"] == 500_000
    assert c1.cost_cents is not None
    assert c1.cost_cents.reshape(c1.shape)[0, 1, 0] == 40_000  # cost clamped to 400 SEK
    assert c1.sensitivity["cost_cents"]["l2"] == 40_000
    # a marginal sums cells (sensitivity unchanged): totals per (arm, redeemed)
    axes, tot = c1.marginal(c1.counts, ("arm", "redeemed"))
    assert axes == ("arm", "redeemed") and tot.tolist() == [1, 1, 1, 0]
    with pytest.raises(ValueError, match="unknown axes"):
        c1.marginal(c1.counts, ("arm", "frequency"))


def test_tag_spend_sums_are_bounded_shares_and_chunk_invariant(small_world) -> None:  # type: ignore[no-untyped-def]
    from retail.load import load_merchant
    from retail.schema import MERCHANT_TYPES
    from twins.features import CATEGORY_PROFILE, tag_spend_sums

    m = load_merchant(small_world / "grocery_1")
    ft = features(m.tables, "grocery", m.info.period_end)
    whole = tag_spend_sums(m.tables, "grocery", m.info.period_end, ft, clamp_sek=40_000.0,
                           chunk_customers=None)
    chunked = tag_spend_sums(m.tables, "grocery", m.info.period_end, ft, clamp_sek=40_000.0,
                             chunk_customers=97)
    assert set(whole) == {"pet", "baby", "meat", "fish", "leisure", CATEGORY_PROFILE}
    cats, cat_total = whole.pop(CATEGORY_PROFILE)
    np.testing.assert_array_equal(cats, chunked[CATEGORY_PROFILE][0])
    assert cats.shape == (len(MERCHANT_TYPES["grocery"].categories),) and (cats >= 0).all()
    # the clamped category spend adds up to the clamped total (up to per-customer rounding)
    assert abs(int(cats.sum()) - int(cat_total[0])) <= len(cats) * ft.height
    assert cat_total[0] == sum(int(t.sum()) for _, t in whole.values()) // len(whole)
    for tag, (part, total) in whole.items():
        assert (part == chunked[tag][0]).all() and (total == chunked[tag][1]).all()
        assert (0 <= part).all() and (part <= total).all()
        assert total.sum() <= 40_000 * 100 * ft.height  # every customer clamped
        # "yes" customers spend >= 3 % on the tag's categories, "no" customers less
        assert part[1] >= 0.03 * total[1] and part[0] <= 0.03 * total[0]


def test_promo_share_leaves_out_the_customers_own_treated_campaign_windows() -> None:
    """A campaign's redeemed lines are promotion lines: the taker ('took', treated arm) does
    not become promotion-prone by taking it; the control customer ('held') with the same
    promotion purchases in the window keeps them (3 of 52 weekly baskets: 'low'); a customer
    who bought only in its treated window keeps the share over all its days. Chunking does
    not change the table."""
    first, last = dt.date(2024, 6, 1), dt.date(2024, 6, 21)
    rows = []
    for cid in ("took", "held"):
        for d in WEEKS:
            rows += [{**r, "promo": first <= d <= last}
                     for r in _tx(cid, [d], [100.0])]
    rows += [{**r, "promo": True} for r in _tx("only", [dt.date(2024, 6, 5)], [80.0])]
    tables = {"customers": _customers(["took", "held", "only"], [True] * 3),
              "transactions": pl.DataFrame(rows, schema=transactions_schema("grocery")),
              "campaigns": pl.DataFrame({"campaign_id": ["c1"], "name": ["June 10 %"],
                                         "start": [first], "end": [last], "offer": ["{}"]}),
              "exposures": pl.DataFrame({"campaign_id": ["c1"] * 3,
                                         "customer_id": ["took", "held", "only"],
                                         "arm": ["treatment", "control", "treatment"]})}
    table = features(tables, "grocery", END)
    assert _level(table, "took", "promo_share") == "none"
    assert _level(table, "held", "promo_share") == "low"
    assert _level(table, "only", "promo_share") == "very_high"
    assert features(tables, "grocery", END, chunk_customers=1).equals(table)
