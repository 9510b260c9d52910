"""Property tests: removing one customer moves each bounded aggregate by ≤ its sensitivity."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privacy.units import (
    CUSTOMER,
    PrivacyUnit,
    cap_rows_per_customer,
    capped_row_count,
    clamped_sum_cents,
    histogram,
    marginal_histogram,
    to_cents,
)

LOWER, UPPER, MAX_ROWS, LEVELS = -5_000, 200_000, 50, 6
EXTREME = 1e13  # 10 000 billion kronor per row: far past any clamp, still int64 in cents

amounts = st.floats(min_value=-EXTREME, max_value=EXTREME, allow_nan=False)
customer = st.tuples(st.integers(0, LEVELS - 1), st.lists(amounts, min_size=1, max_size=8))


def _table(customers: list[tuple[int, list[float]]]) -> tuple[np.ndarray, ...]:
    ids = np.concatenate([np.full(len(rows), i) for i, (_, rows) in enumerate(customers)])
    cents = to_cents(np.concatenate([np.asarray(rows) for _, rows in customers]))
    levels = np.array([lvl for lvl, _ in customers], dtype=np.int64)
    return ids, cents, levels


def _aggregates(ids, cents, levels, cust_ids):
    return {"histogram": histogram(levels, LEVELS, customer_ids=cust_ids),
            "sum": clamped_sum_cents(ids, cents, lower=LOWER, upper=UPPER),
            "rows": capped_row_count(ids, MAX_ROWS)}


def _heavy_customer(extreme_sign: int) -> tuple[int, list[float]]:
    """One customer with 10 000 transactions at extreme amounts."""
    return (LEVELS - 1, [extreme_sign * EXTREME] * 10_000)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(customer, min_size=1, max_size=30), st.data(), st.sampled_from([-1, 1, 0]))
def test_removing_one_customer_moves_each_aggregate_by_at_most_its_sensitivity(
        customers, data, heavy):
    if heavy:
        customers = [*customers, _heavy_customer(heavy)]
    drop = data.draw(st.integers(0, len(customers) - 1))
    ids, cents, levels = _table(customers)
    full = _aggregates(ids, cents, levels, np.arange(len(customers)))
    rest = [c for i, c in enumerate(customers) if i != drop]
    if rest:
        ids2, cents2, levels2 = _table(rest)
        less = _aggregates(ids2, cents2, levels2, np.arange(len(rest)))
    for name, agg in full.items():
        before = agg.counts.astype(object)  # exact Python ints: no wrap-around in the check
        after = less[name].counts.astype(object) if rest else np.zeros_like(before)
        diff = np.abs(before - after)
        assert int(diff.sum()) <= agg.sensitivity_l1, name
        assert float(np.sqrt(sum(int(d) ** 2 for d in diff))) <= agg.sensitivity_l2, name


def test_declared_sensitivities():
    ids, cents, levels = _table([(0, [1.0]), (1, [2.0, 3.0])])
    aggs = _aggregates(ids, cents, levels, np.arange(2))
    assert (aggs["histogram"].sensitivity_l2, aggs["sum"].sensitivity_l2,
            aggs["rows"].sensitivity_l1) == (1, max(abs(LOWER), UPPER), MAX_ROWS)


def test_clamped_sum_is_exact_for_a_heavy_customer():
    ids, cents, _ = _table([_heavy_customer(1), (0, [12.34]), (0, [-100.0])])
    assert clamped_sum_cents(ids, cents, lower=LOWER, upper=UPPER).counts[0] == (
        UPPER + 1234 + LOWER)


def test_customer_totals_beyond_int64_saturate_at_the_clamp():
    ids = np.r_[np.zeros(2_000, dtype=np.int64), np.ones(2_000, dtype=np.int64)]
    cents = np.r_[np.full(2_000, 2**61, dtype=np.int64), np.full(2_000, -(2**61), dtype=np.int64)]
    assert clamped_sum_cents(ids, cents, lower=-7, upper=100).counts[0] == 93


def test_sum_over_many_customers_that_could_overflow_is_refused():
    ids = np.arange(3)
    with pytest.raises(OverflowError, match="int64"):
        clamped_sum_cents(ids, np.zeros(3, dtype=np.int64), lower=0, upper=2**62)


def test_to_cents_refuses_nan_and_overflow():
    with pytest.raises(ValueError, match="row 1"):
        to_cents(np.array([1.0, np.nan]))
    with pytest.raises(OverflowError, match="row 0"):
        to_cents(np.array([1e17]))
    assert to_cents(np.array([0.015, -2.5, 19.99])).tolist() == [2, -250, 1999]


def test_histogram_requires_one_row_per_customer_and_public_levels():
    with pytest.raises(ValueError, match="more than one feature row"):
        histogram(np.array([0, 1]), 2, customer_ids=np.array([7, 7]))
    with pytest.raises(ValueError, match="outside the public levels"):
        histogram(np.array([0, 5]), 2)


def test_marginal_histogram_matches_a_crosstab():
    a, b = np.array([0, 1, 1, 2]), np.array([1, 0, 1, 1])
    counts = marginal_histogram([a, b], [3, 2]).counts
    assert counts.tolist() == [0, 1, 1, 1, 0, 1]


def test_cap_rows_keeps_the_first_rows_of_each_customer():
    ids = np.array([3, 1, 3, 3, 1, 3])
    assert cap_rows_per_customer(ids, 2).tolist() == [True, True, True, False, True, False]


def test_bad_bounds_refused():
    with pytest.raises(ValueError, match="lower"):
        clamped_sum_cents(np.array([1]), np.array([1], dtype=np.int64), lower=5, upper=1)
    with pytest.raises(ValueError, match="max_rows"):
        capped_row_count(np.array([1]), 0)
    with pytest.raises(ValueError, match="unit"):
        PrivacyUnit(unit="", scope="owner", description="x")
    assert CUSTOMER.label() == "customer@owner"
