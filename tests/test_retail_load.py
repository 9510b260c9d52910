"""Validated loading: the committed corpus of broken folders, lenient conservation, tolerances."""

from __future__ import annotations

import functools
import json
from datetime import date, datetime
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retail.load import load_merchant
from retail.merchant import Merchant, read_merchant_info
from retail.schema import TABLE_FILES
from retail.validate import validate_tables
from twinsim.errors import DataValidationError

DATA = Path(__file__).parent / "data"
GOOD = DATA / "good_merchant"
BAD_CASES = sorted(p.name for p in (DATA / "bad").iterdir() if p.is_dir())
NOW = datetime(2026, 1, 1)


def _expected(case: str) -> dict:
    return json.loads((DATA / "bad" / case / "expected.json").read_text("utf-8"))


def test_corpus_is_big_enough_and_small_on_disk() -> None:
    assert len(BAD_CASES) >= 15
    size = sum(f.stat().st_size for f in DATA.rglob("*") if f.is_file())
    assert size < 1_000_000


def test_good_folder_loads_strictly_with_full_report() -> None:
    m = load_merchant(GOOD, now=NOW)
    assert m.transactions.height == 40 and m.customers.height == 12
    for table, report in m.report.tables.items():
        assert report.loaded_rows == report.input_rows == m.tables[table].height
        assert report.quarantined_rows == 0 and report.by_rule == {}


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_case_is_rejected_naming_rule_file_row_column_value(case: str) -> None:
    exp = _expected(case)
    with pytest.raises(DataValidationError) as info:
        load_merchant(DATA / "bad" / case, now=NOW)
    err = info.value
    first = err.offences[0]
    assert first["rule"] == exp["rule"]
    assert str(first["file"]).endswith(exp["file"])
    assert first["column"] == exp["column"]
    assert first["value"] == exp["value"]
    message = str(err)
    assert exp["rule"] in message and exp["file"] in message
    if exp.get("row") is not None:
        assert first["row"] == exp["row"]
        assert f"{exp['file']} row {exp['row']}, column {exp['column']!r}" in message
        assert f"value {exp['value']!r}" in message
    if exp["value"] is not None:
        assert str(exp["value"]) in message


@pytest.mark.parametrize("case", BAD_CASES)
def test_lenient_conserves_rows_and_quarantines_the_expected_ones(case: str,
                                                                  tmp_path: Path) -> None:
    exp = _expected(case)
    folder = DATA / "bad" / case
    if exp["fatal"]:  # no rows to account for: fatal in both modes
        with pytest.raises(DataValidationError, match=exp["rule"]):
            load_merchant(folder, lenient=True, quarantine_dir=tmp_path, now=NOW)
        return
    m = load_merchant(folder, lenient=True, quarantine_dir=tmp_path, now=NOW)
    quarantined = {t: r.quarantined_rows for t, r in m.report.tables.items()
                   if r.quarantined_rows}
    assert quarantined == exp["quarantined"]
    for table, report in m.report.tables.items():
        raw = pl.read_parquet(folder / TABLE_FILES[table])
        q = pl.read_parquet(tmp_path / f"{table}.quarantine.parquet")
        assert report.input_rows == raw.height
        assert m.tables[table].height + q.height == raw.height
        assert q.height == report.quarantined_rows
        assert set(q.columns) >= {"_row", "_rule", "_column", "_value"}
        originals = [c for c in q.columns if not c.startswith("_")]
        assert all(q.schema[c] == pl.String for c in originals)
        assert q["_row"].n_unique() == q.height
    if exp.get("row") is not None:
        table = exp["file"].removesuffix(".parquet")
        q = pl.read_parquet(tmp_path / f"{table}.quarantine.parquet")
        hit = q.filter(pl.col("_row") == exp["row"])
        assert hit["_rule"].to_list() == [exp["rule"]]
    report = json.loads((tmp_path / "report.json").read_text("utf-8"))
    assert report["lenient"] is True


def test_transactions_of_a_quarantined_customer_are_quarantined_as_unknown(
        tmp_path: Path) -> None:
    m = load_merchant(DATA / "bad" / "customers_unknown_region", lenient=True,
                      quarantine_dir=tmp_path, now=NOW)
    q = pl.read_parquet(tmp_path / "transactions.quarantine.parquet")
    assert q.height > 0 and set(q["_rule"]) == {"unknown_customer"}
    assert set(q["customer_id"]) == {"c0002"}
    assert "c0002" not in m.transactions["customer_id"].to_list()


def test_unknown_column_is_dropped_and_reported_in_lenient_mode() -> None:
    m = load_merchant(DATA / "bad" / "customers_unknown_column", lenient=True, now=NOW)
    assert m.report.tables["customers"].dropped_columns == ("personnummer",)
    assert m.report.tables["customers"].by_rule == {"unknown_column": 1}


def test_now_bounds_timestamps() -> None:
    cut = date(2025, 6, 1)
    later = pl.read_parquet(GOOD / "transactions.parquet").filter(
        pl.col("timestamp") > datetime(2025, 6, 1, 23, 59, 59, 999999)).height
    assert later > 0
    with pytest.raises(DataValidationError) as info:
        load_merchant(GOOD, now=cut)
    assert info.value.count == later
    assert all(o["rule"] == "future_timestamp" for o in info.value.offences)


def test_max_offences_limits_the_listing_not_the_count() -> None:
    with pytest.raises(DataValidationError) as info:
        load_merchant(GOOD, now=date(2025, 1, 1), max_offences=3)
    err = info.value
    assert len(err.offences) == 3 and err.count > 3
    assert f"... and {err.count - 3} more" in str(err)
    assert f"transactions.parquet future_timestamp: {err.count}" in str(err)


@functools.cache
def _good() -> Merchant:
    return load_merchant(GOOD, now=NOW)


def _good_tables() -> tuple[Merchant, dict[str, pl.DataFrame]]:
    m = _good()
    return m, dict(m.tables)


@pytest.mark.parametrize(("expected", "amount", "ok"), [
    (100.0, 100.49, True), (100.0, 100.51, False), (1.0, 1.01, True), (1.0, 1.02, False),
    (100.0, 99.51, True), (100.0, 99.49, False),
])
def test_amount_tolerance_is_max_one_cent_or_half_percent(expected: float, amount: float,
                                                          ok: bool) -> None:
    m, tables = _good_tables()
    t = tables["transactions"]
    tables["transactions"] = t.with_columns(
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(1)).otherwise("quantity")
        .cast(pl.Int32).alias("quantity"),
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(expected)).otherwise("unit_price")
        .alias("unit_price"),
        pl.when(pl.int_range(pl.len()) == 0).then(pl.lit(amount)).otherwise("amount")
        .alias("amount"),
    )
    result = validate_tables(m.info, tables, lenient=False, now=NOW)
    rules = result.tables["transactions"].offences["_rule"].to_list()
    assert rules == ([] if ok else ["amount_mismatch"])


def test_all_text_tables_parse_back_to_the_same_typed_tables() -> None:
    m, tables = _good_tables()
    text = {t: f.with_columns(pl.all().cast(pl.String)) for t, f in tables.items()}
    result = validate_tables(m.info, text, lenient=False, now=NOW)
    assert result.offence_count == 0
    for t, frame in tables.items():
        assert result.tables[t].loaded.equals(frame), t


_JUNK = st.sampled_from(["", "x", "-5", "0", "2.5", "NaN", "2099-01-01", "1e400", "c0001",
                         "cmp_001", "Malmö", "online", "premium", "treatment", "true"])


@st.composite
def _corruptions(draw: st.DrawFn) -> list[tuple[str, str, int, str | None]]:
    _, tables = _good_tables()
    out = []
    for _ in range(draw(st.integers(1, 4))):
        table = draw(st.sampled_from(list(TABLE_FILES)))
        frame = tables[table]
        col = draw(st.sampled_from([*frame.columns, "_drop", "_dup", "_extra"]))
        row = draw(st.integers(0, frame.height - 1))
        value = draw(st.none() | _JUNK)
        out.append((table, col, row, value))
    return out


def _apply(tables: dict[str, pl.DataFrame], table: str, col: str, row: int,
           value: str | None) -> None:
    frame = tables[table]
    if col == "_drop":
        tables[table] = frame.drop(frame.columns[row % frame.width])
    elif col == "_extra":
        tables[table] = frame.with_columns(pl.lit(value).alias("note"))
    elif col == "_dup":
        tables[table] = pl.concat([frame, frame.slice(row, 1)])
    elif col in frame.columns:  # an earlier corruption may have dropped it
        values = frame[col].to_list()
        values[row] = value
        tables[table] = frame.with_columns(pl.Series(col, values, dtype=pl.String))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_corruptions())
def test_random_corruption_conserves_rows_and_leaves_only_valid_rows(
        corruptions: list[tuple[str, str, int, str | None]]) -> None:
    m, typed = _good_tables()
    tables = {t: f.with_columns(pl.all().cast(pl.String)) for t, f in typed.items()}
    for corruption in corruptions:
        _apply(tables, *corruption)
    result = validate_tables(m.info, tables, lenient=True, now=NOW)
    for t, r in result.tables.items():
        assert r.loaded.height + r.quarantine.height == tables[t].height
        rows = set(r.quarantine["_row"].to_list())
        assert len(rows) == r.quarantine.height
        assert rows <= set(range(tables[t].height))
    # What was loaded obeys the model: validating it again finds nothing.
    again = validate_tables(m.info, {t: r.loaded for t, r in result.tables.items()},
                            lenient=False, now=NOW)
    assert again.offence_count == 0


def test_merchant_rejects_frames_outside_the_schema() -> None:
    _, tables = _good_tables()
    tables["customers"] = tables["customers"].with_columns(pl.col("region").cast(pl.String))
    with pytest.raises(ValueError, match="customers"):
        Merchant(info=read_merchant_info(GOOD), **tables)
