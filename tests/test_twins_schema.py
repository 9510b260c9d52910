"""The public attribute schema: fixed bins covering the real line, encode/decode, filters."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twins.schema import (
    LIFE_TAGS,
    SCHEMA,
    Attribute,
    CohortFilter,
    plausible_basket_max,
    structural_constants,
    structural_support,
)

BINNED = [a for a in SCHEMA.attributes if a.edges is not None]


def test_schema_has_the_issue_attributes_and_fixed_bins() -> None:
    expected = {"region", "tenure", "frequency", "recency", "basket_value", "basket_size",
                "tier", "organic_share", "promo_share", "weekday_pattern", "rhythm",
                "volatility", "channel", "vehicle_age", *LIFE_TAGS}
    assert set(SCHEMA.names) == expected
    # Fixed public values, not derived from data: spot-check a few against the issue.
    assert SCHEMA["rhythm"].levels == ("weekly", "two_week", "irregular", "sparse")
    assert SCHEMA["volatility"].levels == ("low", "medium", "high")
    assert SCHEMA["tier"].levels == ("budget", "standard", "premium")
    assert SCHEMA["basket_value"].edges[-1] >= 100_000  # type: ignore[index]
    assert len(SCHEMA.attributes[0].representatives) == SCHEMA.attributes[0].cardinality


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(allow_nan=False, allow_infinity=True), min_size=1, max_size=20))
def test_every_real_value_falls_in_exactly_one_bin(xs: list[float]) -> None:
    frame = pl.DataFrame({"x": xs}, schema={"x": pl.Float64})
    by_expr = frame.select(a.bin_expr(pl.col("x")).alias(a.name) for a in BINNED)
    for a in BINNED:
        codes = a.bin_numpy(np.array(xs))
        assert np.all((codes >= a.offset) & (codes < a.cardinality))
        assert by_expr[a.name].to_list() == codes.tolist()


def test_bins_are_monotone_and_edges_belong_to_the_upper_bin() -> None:
    for a in BINNED:
        edges = np.asarray(a.edges)
        codes = a.bin_numpy(np.concatenate([[-math.inf], edges]))
        assert codes.tolist() == list(range(a.offset, a.cardinality))
        assert a.bin_numpy(np.array([math.inf])).tolist() == [a.cardinality - 1]


def test_three_year_old_car_is_one_level_and_no_car_is_none() -> None:
    va = SCHEMA["vehicle_age"]
    codes = va.bin_numpy(np.array([3.0, 3.5, 3.99, np.nan, 2.99]))
    assert [va.levels[c] for c in codes] == ["3y", "3y", "3y", "none", "2y"]


def test_attribute_validation_names_the_field() -> None:
    with pytest.raises(ValueError, match="edges"):
        Attribute(name="x", levels=("a", "b"), representatives=(0.0, 1.0), edges=(2.0, 1.0),
                  description="bad")
    with pytest.raises(ValueError, match="representatives"):
        Attribute(name="x", levels=("a", "b"), representatives=(0.0,), edges=(1.0,),
                  description="bad")


def test_encode_decode_round_trip() -> None:
    codes = pl.DataFrame({n: [0, SCHEMA[n].cardinality - 1] for n in SCHEMA.names},
                         schema={n: pl.UInt8 for n in SCHEMA.names})
    assert SCHEMA.encode(SCHEMA.decode(codes)).equals(codes)
    assert SCHEMA.decode(codes)["rhythm"].to_list() == ["weekly", "sparse"]


def test_cohort_filter_parsing() -> None:
    f = CohortFilter.parse("pet=yes, organic_share>=high, region=Stockholm|Uppsala")
    assert f.allowed["pet"] == {1}
    assert f.allowed["organic_share"] == {3, 4}
    assert f.allowed["region"] == {0, 3}
    assert CohortFilter.parse(["tier<premium"]).allowed["tier"] == {0, 1}
    with pytest.raises(ValueError, match="unknown level"):
        CohortFilter.parse("pet=maybe")
    with pytest.raises(ValueError, match="allows no level"):
        CohortFilter.parse("tier<budget")


def test_structural_constants_follow_the_merchant_type() -> None:
    grocery = structural_constants("grocery")
    assert grocery["menswear"] == 0 and grocery["vehicle_age"] == 0 and "pet" not in grocery
    assert "vehicle_age" not in structural_constants("car_brand")
    with pytest.raises(ValueError, match="merchant_type"):
        structural_constants("spaceport")


def test_structural_support_drops_impossible_basket_levels() -> None:
    bv = SCHEMA["basket_value"]
    cafe = structural_support("cafe")
    assert plausible_basket_max("cafe") < 5000.0  # a café basket of 5k SEK a day is absurd
    assert bv.code("1600_5k") in cafe["basket_value"]
    assert not {bv.code("5k_20k"), bv.code("20k_100k"), bv.code("100k_plus")} & cafe["basket_value"]
    assert cafe["menswear"] == frozenset({0}) and cafe["vehicle_age"] == frozenset({0})
    assert "basket_value" not in structural_support("car_brand")  # a car can cost 250k+
    assert bv.code("20k_100k") in structural_support("apparel")["basket_value"]
    with pytest.raises(ValueError, match="merchant_type"):
        structural_support("spaceport")
