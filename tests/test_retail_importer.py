"""CSV import: a merchant's own export (Swedish names, decimal comma, dd.mm.yyyy) round trips."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import polars as pl
import pytest
import yaml

from retail.importer import import_csv, read_mapping
from retail.load import load_merchant
from retail.merchant import Merchant
from twinsim.errors import DataValidationError

GOOD = Path(__file__).parent / "data" / "good_merchant"
NOW = datetime(2026, 1, 1)

SWEDISH_CATEGORIES = {
    "produce": "Frukt & grönt", "dairy": "Mejeri", "bakery": "Bröd", "meat": "Kött",
    "fish": "Fisk", "dry_goods": "Torrvaror", "frozen": "Fryst", "snacks": "Godis & snacks",
    "beverages": "Dryck", "household": "Hushåll", "pet_food": "Djurmat", "baby": "Barn",
    "ready_meals": "Färdigmat", "leisure_tickets": "Nöjesbiljetter",
}
CUSTOMER_COLUMNS = {"Kundnr": "customer_id", "Ort": "region", "Medlem sedan": "signup_date",
                    "Analys": "consent_analytics", "Partner": "consent_partner"}
TRANSACTION_COLUMNS = {
    "Kvitto": "transaction_id", "Kund": "customer_id", "Tid": "timestamp", "Butik": "store_id",
    "Kanal": "channel", "Avdelning": "category", "Nivå": "tier", "Ekologisk": "organic",
    "Antal": "quantity", "Styckpris": "unit_price", "Belopp": "amount", "Kampanj": "promo",
}
YES_NO = {"ja": True, "nej": False}


def _mapping(**table_extra: dict) -> dict:
    return {
        "merchant": {"merchant_id": "grocery_test", "name": "Test Livs",
                     "regions": ["Stockholm", "Göteborg"], "currency": "SEK",
                     "period_start": "2025-01-01", "period_end": "2025-12-31"},
        "csv": {"separator": ";", "decimal_comma": True, "thousands": " "},
        "tables": {
            "customers": {"columns": CUSTOMER_COLUMNS, "date_format": "%d.%m.%Y",
                          "values": {"region": {"Sthlm": "Stockholm", "Gbg": "Göteborg"},
                                     "consent_analytics": YES_NO, "consent_partner": YES_NO}},
            "transactions": {"columns": TRANSACTION_COLUMNS,
                             "datetime_format": "%d.%m.%Y %H:%M",
                             "values": {"category": {v: k for k, v in
                                                     SWEDISH_CATEGORIES.items()},
                                        "channel": {"butik": "store", "webb": "online"},
                                        "organic": YES_NO, "promo": YES_NO},
                             **table_extra},
        },
    }


def _swedish_bool(col: str) -> pl.Expr:
    return pl.when(pl.col(col)).then(pl.lit("ja")).otherwise(pl.lit("nej")).alias(col)


def _decimal_comma(col: str) -> pl.Expr:
    return pl.col(col).cast(pl.String).str.replace(".", ",", literal=True)


def _export(good: Merchant, folder: Path) -> dict[str, Path]:
    """Write the good merchant the way a Swedish till system might export it."""
    c = good.customers.select(
        pl.col("customer_id"),
        pl.col("region").cast(pl.String).replace({"Stockholm": "Sthlm", "Göteborg": "Gbg"}),
        pl.col("signup_date").dt.strftime("%d.%m.%Y"),
        _swedish_bool("consent_analytics"), _swedish_bool("consent_partner"),
    ).rename({v: k for k, v in CUSTOMER_COLUMNS.items()})
    t = good.transactions.select(
        "transaction_id", "customer_id", pl.col("timestamp").dt.strftime("%d.%m.%Y %H:%M"),
        "store_id",
        pl.col("channel").cast(pl.String).replace({"store": "butik", "online": "webb"}),
        pl.col("category").cast(pl.String).replace(SWEDISH_CATEGORIES), "tier",
        _swedish_bool("organic"), "quantity", _decimal_comma("unit_price"),
        _decimal_comma("amount"), _swedish_bool("promo"),
    ).rename({v: k for k, v in TRANSACTION_COLUMNS.items()})
    paths = {"customers": folder / "kunder.csv", "transactions": folder / "kvitton.csv"}
    c.write_csv(paths["customers"], separator=";")
    t.write_csv(paths["transactions"], separator=";")
    for table in ("campaigns", "exposures"):
        paths[table] = folder / f"{table}.csv"
        frame = good.tables[table].with_columns(
            pl.col(pl.Float64).cast(pl.String).str.replace(".", ",", literal=True))
        frame.write_csv(paths[table], separator=";")
    return paths


def test_csv_round_trip_reproduces_the_merchant(tmp_path: Path) -> None:
    good = load_merchant(GOOD, now=NOW)
    paths = _export(good, tmp_path)
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(yaml.safe_dump(_mapping(), allow_unicode=True), "utf-8")
    out = tmp_path / "imported"
    merchant = import_csv(mapping=mapping_file, merchant_type="grocery", out=out, now=NOW,
                          **paths)
    for table, frame in good.tables.items():
        assert merchant.tables[table].equals(frame), table
    again = load_merchant(out, now=NOW)
    assert again.info == good.info
    for table, frame in good.tables.items():
        assert again.tables[table].equals(frame), table


def test_defaults_fill_columns_the_export_lacks(tmp_path: Path) -> None:
    good = load_merchant(GOOD, now=NOW)
    paths = _export(good, tmp_path)
    t = pl.read_csv(paths["transactions"], separator=";", infer_schema=False)
    t.drop("Kanal", "Nivå", "Kvitto", "Belopp").write_csv(paths["transactions"], separator=";")
    mapping = _mapping(defaults={"channel": "store", "tier": "standard"}, generate_ids=True)
    merchant = import_csv(customers=paths["customers"], transactions=paths["transactions"],
                          mapping=mapping, merchant_type="grocery", now=NOW)
    tx = merchant.transactions
    assert set(tx["channel"].cast(pl.String)) == {"store"}
    assert set(tx["tier"].cast(pl.String)) == {"standard"}
    assert tx["transaction_id"].to_list() == list(range(1, tx.height + 1))
    expected = (good.transactions["quantity"] * good.transactions["unit_price"]).round(2)
    assert tx["amount"].to_list() == expected.to_list()
    assert merchant.campaigns.height == 0 and merchant.exposures.height == 0


def test_unmapped_category_is_reported_by_csv_file_and_row(tmp_path: Path) -> None:
    good = load_merchant(GOOD, now=NOW)
    paths = _export(good, tmp_path)
    t = pl.read_csv(paths["transactions"], separator=";", infer_schema=False)
    values = t["Avdelning"].to_list()
    values[4] = "Leksaker"
    dates = t["Tid"].to_list()
    dates[6] = "31.02.2025 10:00"
    t.with_columns(pl.Series("Avdelning", values), pl.Series("Tid", dates)).write_csv(
        paths["transactions"], separator=";")
    out = tmp_path / "out"
    with pytest.raises(DataValidationError) as info:
        import_csv(mapping=_mapping(), merchant_type="grocery", out=out, now=NOW, **paths)
    message = str(info.value)
    assert f"{paths['transactions']} row 4, column 'category', value 'Leksaker': " \
           "unknown_category" in message
    assert "row 6, column 'timestamp', value '31.02.2025 10:00': bad_type" in message
    assert not out.exists()  # strict: nothing written


def test_lenient_import_writes_good_rows_and_quarantines_the_rest(tmp_path: Path) -> None:
    good = load_merchant(GOOD, now=NOW)
    paths = _export(good, tmp_path)
    t = pl.read_csv(paths["transactions"], separator=";", infer_schema=False)
    t.with_columns(pl.when(pl.int_range(pl.len()) == 2).then(pl.lit("-3"))
                   .otherwise(pl.col("Antal")).alias("Antal")).write_csv(
        paths["transactions"], separator=";")
    out, q = tmp_path / "out", tmp_path / "q"
    merchant = import_csv(mapping=_mapping(), merchant_type="grocery", out=out, lenient=True,
                          quarantine_dir=q, now=NOW, **paths)
    assert merchant.report.tables["transactions"].quarantined_rows == 1
    quarantined = pl.read_parquet(q / "transactions.quarantine.parquet")
    assert quarantined["_rule"].to_list() == ["non_positive_quantity"]
    assert load_merchant(out, now=NOW).transactions.height == good.transactions.height - 1


@pytest.mark.parametrize(("spec", "message"), [
    ({"merchant": {}, "tables": {"transactions": {"columns": {"X": "nope"}}}}, "nope"),
    ({"merchant": {}, "csv": {"separator": ",", "decimal_comma": True}}, "separator"),
    ({"merchants": {}}, "unknown keys"),
])
def test_bad_mapping_is_refused_naming_the_key(spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_mapping(spec)
