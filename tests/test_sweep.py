"""Sweeps: the grid, its validation, and parallel runs equal to serial ones."""

from __future__ import annotations

import pytest

from retail.offers import Offer
from simulation.params import TwinParams
from simulation.sweep import parse_cohorts, parse_numbers, run_sweep, sweep_cells
from twinsim.errors import CohortTooSmall, OfferError

BASE = Offer(name="Meat", kind="discount", pct=10, categories=("meat",), days=10)


@pytest.fixture(scope="module")
def params() -> TwinParams:
    return TwinParams.synthetic(300, "grocery", seed=5)


def test_parsing() -> None:
    assert parse_numbers(" 5, 10 ,20,", "--discounts") == (5.0, 10.0, 20.0)
    cohorts = parse_cohorts("pet=yes;organic_share>=high,tier=premium;all")
    assert [label for label, _ in cohorts] == ["pet=yes", "organic_share>=high,tier=premium",
                                               "all"]
    assert len(cohorts[1][1]) == 2 and cohorts[2][1] == ()
    with pytest.raises(OfferError, match="no values"):
        parse_numbers(" , ", "--durations")
    with pytest.raises(OfferError, match="target filter"):
        parse_cohorts("pet yes")


def test_grid_is_validated_before_running(params: TwinParams) -> None:
    cells = sweep_cells(BASE, params, discounts=(5, 20), cohorts=parse_cohorts("pet=yes;all"),
                        durations=(7, 10), days=20)
    assert len(cells) == 8
    offer = cells[0].offer(BASE)
    assert offer.pct == 5 and offer.days == 7 and [str(f) for f in offer.target] == ["pet=yes"]
    with pytest.raises(OfferError, match=r"\(0, 100\]"):
        sweep_cells(BASE, params, discounts=(101,), cohorts=parse_cohorts("all"),
                    durations=(7,), days=20)
    with pytest.raises(CohortTooSmall, match="selects no twins"):
        sweep_cells(BASE, params, discounts=(5,), cohorts=parse_cohorts("vehicle_age=3y"),
                    durations=(7,), days=20)
    with pytest.raises(OfferError, match="outlast"):
        sweep_cells(BASE, params, discounts=(5,), cohorts=parse_cohorts("all"),
                    durations=(30,), days=20)
    partner = Offer(name="P", kind="partner", partner="car_1", partner_value=100)
    with pytest.raises(OfferError, match="does not have"):
        sweep_cells(partner, params, discounts=(5,), cohorts=parse_cohorts("all"),
                    durations=(7,), days=20)


def test_parallel_equals_serial_and_deeper_discounts_cost_more(params: TwinParams) -> None:
    cells = sweep_cells(BASE, params, discounts=(5, 30), cohorts=parse_cohorts("all"),
                        durations=(10,), days=15)
    done: list[str] = []
    serial = run_sweep(params, BASE, cells, days=15, replications=2, seed=1)
    parallel = run_sweep(params, BASE, cells, days=15, replications=2, seed=1, processes=2,
                         on_done=lambda c: done.append(c.cohort))
    assert serial.to_polars().equals(parallel.to_polars())
    assert len(done) == 2
    rows = serial.rows
    assert rows[1]["offer_cost"] > rows[0]["offer_cost"] > 0
    assert rows[0]["incremental_margin_low"] <= rows[0]["incremental_margin"] <= rows[0][
        "incremental_margin_high"]
