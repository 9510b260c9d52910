"""The world generator's output: exact schemas, the strict loader, ids, determinism."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from retail.schema import (
    CAMPAIGNS_SCHEMA,
    EXPOSURES_SCHEMA,
    MERCHANT_TYPES,
    customers_schema,
    transactions_schema,
)
from retail.world import generate_world
from retail.world.personas import MERCHANTS

MERCHANT_IDS = [m.merchant_id for m in MERCHANTS]


def _merchant_type(world: Path, mid: str) -> str:
    return json.loads((world / mid / "merchant.json").read_text())["merchant_type"]


def test_world_json_lists_every_merchant(small_world: Path) -> None:
    info = json.loads((small_world / "world.json").read_text())
    assert info["merchants"] == MERCHANT_IDS
    assert (info["kind"], info["scale"], info["seed"]) == ("synthetic", "small", 7)
    assert (info["start"], info["end"], info["truth_dir"]) == ("2025-01-01", "2025-12-31",
                                                               "_truth")


@pytest.mark.parametrize("mid", MERCHANT_IDS)
def test_tables_have_exactly_the_schema(small_world: Path, mid: str) -> None:
    mt = _merchant_type(small_world, mid)
    expected = {"customers": customers_schema(mt), "transactions": transactions_schema(mt),
                "campaigns": CAMPAIGNS_SCHEMA, "exposures": EXPOSURES_SCHEMA}
    for table, schema in expected.items():
        df = pl.read_parquet(small_world / mid / f"{table}.parquet")
        assert dict(df.schema) == schema, (mid, table)
        assert df.height > 0, (mid, table)


def test_world_passes_the_strict_loader(small_world: Path) -> None:
    load = pytest.importorskip("retail.load")
    merchants = load.load_world(small_world)
    assert set(merchants) == set(MERCHANT_IDS)
    for m in merchants.values():
        assert all(t.quarantined_rows == 0 for t in m.report.tables.values())


def test_rows_obey_the_data_model(small_world: Path) -> None:
    tx = pl.read_parquet(small_world / "grocery_1" / "transactions.parquet")
    assert tx["transaction_id"].is_unique().all()
    assert (tx["quantity"] >= 1).all() and (tx["unit_price"] > 0).all()
    assert ((tx["quantity"] * tx["unit_price"]).round(2) - tx["amount"]).abs().max() < 1e-6
    assert set(tx["category"].unique()) <= set(MERCHANT_TYPES["grocery"].categories)
    assert tx["channel"].n_unique() == 2 and tx["promo"].any()


def test_customer_ids_differ_across_merchants_for_the_same_person(small_world: Path) -> None:
    truth = small_world / "_truth"
    maps = pl.concat([pl.read_parquet(truth / mid / "customers.parquet",
                                      columns=["customer_id", "person"]).with_columns(
        pl.lit(mid).alias("merchant")) for mid in MERCHANT_IDS])
    assert maps["customer_id"].is_unique().all()
    multi = maps.group_by("person").agg(pl.len()).filter(pl.col("len") >= 3)
    assert multi.height > 0  # people shop at several merchants, under different ids
    g1 = set(maps.filter(pl.col("merchant") == "grocery_1")["person"])
    deli = set(maps.filter(pl.col("merchant") == "deli_1")["person"])
    pets = set(maps.filter(pl.col("merchant") == "pet_1")["person"])
    assert g1 & deli & pets


def test_car_customers_have_vehicle_ages(small_world: Path) -> None:
    cars = pl.read_parquet(small_world / "car_1" / "customers.parquet")
    age = (pl.date(2025, 12, 31) - pl.col("vehicle_purchase_date")).dt.total_days()
    ages = cars.select(age / 365.0).to_series()
    assert ages.min() >= 0 and ages.max() > 5 and cars["vehicle_model"].null_count() == 0
    tx = pl.read_parquet(small_world / "car_1" / "transactions.parquet")
    assert (tx["category"] == "vehicles").sum() > 0 and (tx["category"] == "service").sum() > 0


def _files(root: Path, mids: tuple[str, ...]) -> dict[str, bytes]:
    out = {}
    for mid in mids:
        for p in sorted((root / mid).iterdir()):
            out[f"{mid}/{p.name}"] = p.read_bytes()
        for p in sorted((root / "_truth" / mid).iterdir()):
            out[f"_truth/{mid}/{p.name}"] = p.read_bytes()
    return out


def test_same_seed_gives_identical_bytes(small_world: Path, tmp_path: Path) -> None:
    # Merchants draw from their own seed streams, so a partial world equals the full one.
    mids = ("deli_1", "pet_1", "car_1")
    generate_world(tmp_path / "again", scale="small", seed=7, merchants=mids)
    assert _files(tmp_path / "again", mids) == _files(small_world, mids)
    assert ((tmp_path / "again" / "_truth" / "persons.parquet").read_bytes()
            == (small_world / "_truth" / "persons.parquet").read_bytes())


def test_another_seed_gives_other_data(small_world: Path, tmp_path: Path) -> None:
    mids = ("deli_1",)
    generate_world(tmp_path / "other", scale="small", seed=8, merchants=mids)
    a = pl.read_parquet(small_world / "deli_1" / "transactions.parquet")
    b = pl.read_parquet(tmp_path / "other" / "deli_1" / "transactions.parquet")
    assert not a.equals(b)
    ca = pl.read_parquet(small_world / "deli_1" / "customers.parquet")["customer_id"]
    cb = pl.read_parquet(tmp_path / "other" / "deli_1" / "customers.parquet")["customer_id"]
    assert not set(ca) & set(cb)


def test_unknown_scale_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        generate_world(tmp_path, scale="huge")


def test_cli_generate_has_help_and_refuses_unknown_scales(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from twinsim.cli import app

    runner = CliRunner()
    helped = runner.invoke(app, ["world", "generate", "--help"])
    assert helped.exit_code == 0 and "--scale" in helped.output and "--seed" in helped.output
    bad = runner.invoke(app, ["world", "generate", "--out", str(tmp_path), "--scale", "huge"])
    assert bad.exit_code != 0 and not (tmp_path / "world.json").exists()
