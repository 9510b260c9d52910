"""CDNOW: read from the lifetimes wheel without importing it; counts exactly as published."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path

import polars as pl

from retail.cdnow import (
    CDNOW_PLACEHOLDER_REGION,
    CdnowReport,
    cdnow_merchant,
    read_cdnow_raw,
    write_cdnow_world,
)
from retail.load import load_world
from retail.merchant import Merchant, read_world


@functools.cache
def _cdnow() -> tuple[Merchant, CdnowReport]:
    return cdnow_merchant()


def test_counts_and_period_match_the_published_data_set() -> None:
    m, report = _cdnow()
    assert m.customers.height == report.customers == 23_570
    assert m.transactions.height == report.rows == 69_659
    assert m.transactions["timestamp"].min() == datetime(1997, 1, 1)
    assert m.transactions["timestamp"].max() == datetime(1998, 6, 30)
    assert (m.info.period_start, m.info.period_end) == (date(1997, 1, 1), date(1998, 6, 30))
    assert m.info.currency == "USD" and m.info.merchant_type == "music"
    assert all(r.quarantined_rows == 0 for r in m.report.tables.values())


def test_mapping_keeps_every_row_and_every_dollar() -> None:
    m, report = _cdnow()
    raw = read_cdnow_raw()
    tx = m.transactions
    assert tx["amount"].sum() == raw["dollar_value"].sum()
    assert tx["quantity"].sum() == raw["number_of_cds"].sum()
    # $0 rows are kept and flagged, not dropped.
    assert report.zero_value_rows == 80 == tx.filter(pl.col("amount") == 0).height
    assert tx.filter(pl.col("amount") == 0)["promo"].all()
    assert not tx.filter(pl.col("amount") > 0)["promo"].any()
    # Same-day rows stay separate transactions.
    per_day = tx.group_by("customer_id", "timestamp").len().filter(pl.col("len") > 1)
    assert report.same_day_rows == per_day["len"].sum() == 3842
    assert report.same_day_groups == per_day.height == 1774
    assert report.zero_quantity_rows == 0


def test_customers_are_placeholder_region_consenting_and_signed_up_at_first_purchase() -> None:
    m, _ = _cdnow()
    c = m.customers
    assert set(c["region"].cast(pl.String)) == {CDNOW_PLACEHOLDER_REGION}
    assert c["consent_analytics"].all() and c["consent_partner"].all()
    first = m.transactions.group_by("customer_id").agg(pl.col("timestamp").min().dt.date())
    joined = c.join(first, on="customer_id")
    assert joined.height == c.height
    assert (joined["signup_date"] == joined["timestamp"]).all()
    assert c.filter(pl.col("customer_id") == "00001")["signup_date"].item() == date(1997, 1, 1)


def test_lifetimes_is_never_imported() -> None:
    code = ("import sys; from retail.cdnow import cdnow_merchant; cdnow_merchant(); "
            "print('lifetimes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_world_folder_is_written_and_loads_strictly(tmp_path: Path) -> None:
    report = write_cdnow_world(tmp_path / "w")
    world = read_world(tmp_path / "w")
    assert world.info.kind == "cdnow" and world.info.merchants == ("cdnow",)
    assert world.info.truth_dir is None
    merchants = load_world(tmp_path / "w")
    assert merchants["cdnow"].transactions.height == 69_659
    saved = json.loads((tmp_path / "w" / "cdnow_report.json").read_text("utf-8"))
    assert saved["zero_value_rows"] == report.zero_value_rows
