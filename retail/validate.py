"""Row-level validation of a merchant's four tables: pure functions over polars frames.

``validate_tables`` takes the raw frames as read (any dtypes, e.g. all strings from a CSV)
and returns, per table, the rows that obey the data model (typed exactly as
``retail.schema``) and one offence per broken rule per row. Every row ends up either loaded
or quarantined, never dropped. Everything is vectorised: the good path of a 50M-row table
is a handful of column expressions, no Python loop over rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import polars as pl

from retail.merchant import MerchantInfo, table_schema
from retail.schema import TABLE_FILES

__all__ = [
    "FATAL_RULES",
    "NULLABLE",
    "OFFENCE_SCHEMA",
    "RULES",
    "TableResult",
    "ValidationResult",
    "coerce",
    "validate_tables",
]

# Rule name -> what it means. The order is the priority used to name a row's first offence.
RULES: dict[str, str] = {
    "missing_column": "a column of the model is absent from the file",
    "unknown_column": "a column that is not part of the model (dropped in lenient mode)",
    "bad_type": "value cannot be read as the column's type",
    "null_required": "required value is empty",
    "unknown_region": "region is not one of the merchant's regions in merchant.json",
    "unknown_category": "category is not in this merchant type's category list",
    "unknown_tier": "tier is not one of budget/standard/premium",
    "unknown_channel": "channel is not one of store/online",
    "unknown_arm": "arm is not one of treatment/control",
    "not_finite": "number is NaN or infinite",
    "non_positive_quantity": "quantity must be at least 1",
    "negative_price": "price or amount must not be negative",
    "negative_value": "count or money value must not be negative",
    "amount_mismatch": "amount differs from quantity x unit_price by more than "
                       "max(0.01, 0.5%)",
    "campaign_end_before_start": "campaign ends before it starts",
    "future_timestamp": "date/time lies after 'now'",
    "out_of_period": "timestamp lies outside [period_start, period_end] of merchant.json",
    "duplicate_id": "id already used by an earlier row (the first occurrence is kept)",
    "unknown_customer": "customer_id is not a (loaded) customer of customers.parquet",
    "unknown_campaign": "campaign_id is not a (loaded) campaign of campaigns.parquet",
    # File-level rules: fatal in both modes (there are no rows to quarantine).
    "missing_file": "a file of the merchant folder is absent",
    "unreadable_file": "a file cannot be read as Parquet/CSV",
    "bad_merchant_json": "merchant.json is invalid",
}
FATAL_RULES: frozenset[str] = frozenset({"missing_file", "unreadable_file", "bad_merchant_json"})
_PRIORITY = {rule: i for i, rule in enumerate(RULES)}
_COUNT_SLICE_ROWS = 5_000_000
Check = tuple[str, str, pl.Expr, pl.Expr]  # rule, column, mask (true = offence), value

OFFENCE_SCHEMA: dict[str, pl.DataType] = {
    "_row": pl.Int64(), "_rule": pl.String(), "_column": pl.String(), "_value": pl.String(),
}

# Columns that may be empty: a store id (online orders), a car's details, an offer text and
# campaign outcomes not yet known.
NULLABLE: dict[str, frozenset[str]] = {
    "customers": frozenset({"vehicle_model", "vehicle_purchase_date"}),
    "transactions": frozenset({"store_id"}),
    "campaigns": frozenset({"offer"}),
    "exposures": frozenset({"redeemed", "redemptions", "visits", "spend", "discount_cost"}),
}
_ENUM_RULES = {"region": "unknown_region", "category": "unknown_category",
               "tier": "unknown_tier", "channel": "unknown_channel", "arm": "unknown_arm"}
_TRUE = ("true", "t", "yes", "y", "1")
_FALSE = ("false", "f", "no", "n", "0")
_DATETIME_FORMATS = ("%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%d")


@dataclass(frozen=True, kw_only=True)
class TableResult:
    """One table after validation. ``quarantine`` holds one row per rejected input row."""

    name: str
    input_rows: int
    loaded: pl.DataFrame
    offences: pl.DataFrame  # every offence found, _row null for column-level ones
    quarantine: pl.DataFrame  # original columns as strings + _row, _rule, _column, _value
    dropped_columns: tuple[str, ...] = ()

    @property
    def counts_by_rule(self) -> dict[str, int]:
        counts = self.offences.group_by("_rule").len()
        return dict(sorted(zip(counts["_rule"], counts["len"], strict=True),
                           key=lambda kv: _PRIORITY.get(kv[0], 99)))


@dataclass(frozen=True, kw_only=True)
class ValidationResult:
    tables: dict[str, TableResult] = field(default_factory=dict)

    @property
    def offence_count(self) -> int:
        return sum(t.offences.height for t in self.tables.values())


# ---------------------------------------------------------------- coercion to the schema


def coerce(s: pl.Series, target: pl.DataType) -> pl.Series:
    """Cast ``s`` to ``target``; values that cannot be represented exactly become null."""
    if s.dtype == target:
        return s
    try:
        if isinstance(target, pl.Enum) or target == pl.String:
            return s.cast(pl.String).cast(target, strict=False)
        if target == pl.Boolean:
            return _to_bool(s)
        if s.dtype == pl.String:
            return _parse_string(s.str.strip_chars(), target)
        if target.is_integer() and s.dtype.is_float():
            # 2.5 must not silently become 2.
            s = pl.select(pl.when(s == s.floor()).then(s)).to_series()
        if isinstance(s.dtype, pl.Datetime) and s.dtype.time_zone is not None:
            s = s.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        if target == pl.Date and isinstance(s.dtype, pl.Datetime):
            s = pl.select(pl.when(s.dt.time() == pl.time(0)).then(s)).to_series()
        return s.cast(target, strict=False)
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
        return pl.repeat(None, s.len(), dtype=target, eager=True).alias(s.name)


def _to_bool(s: pl.Series) -> pl.Series:
    text = s.cast(pl.String).str.strip_chars().str.to_lowercase()
    if s.dtype.is_float():
        text = text.str.replace(r"\.0$", "")
    return pl.select(
        pl.when(text.is_in(_TRUE)).then(True).when(text.is_in(_FALSE)).then(False)
        .otherwise(None).alias(s.name)
    ).to_series()


def _parse_string(s: pl.Series, target: pl.DataType) -> pl.Series:
    if target == pl.Date:
        return s.str.to_date("%Y-%m-%d", strict=False)
    if isinstance(target, pl.Datetime):
        s = s.str.replace("T", " ", literal=True)
        tries = [s.str.to_datetime(f, strict=False, time_unit="us") for f in _DATETIME_FORMATS]
        return pl.select(pl.coalesce(tries)).to_series().cast(target).alias(s.name)
    return s.cast(target, strict=False)


# ---------------------------------------------------------------- per-table checks


def _offences(frame: pl.DataFrame, mask: pl.Expr, rule: str, column: str,
              value: pl.Expr) -> pl.DataFrame:
    return frame.filter(mask.fill_null(False)).select(
        pl.col("_row").cast(pl.Int64),
        pl.lit(rule, dtype=pl.String).alias("_rule"),
        pl.lit(column, dtype=pl.String).alias("_column"),
        value.cast(pl.String).alias("_value"),
    )


def _column_checks(table: str, info: MerchantInfo, now: datetime) -> list[tuple[str, str,
                                                                                 pl.Expr]]:
    """(rule, column, mask) for rules that look at one row of one table."""
    c = pl.col
    day_after_end = datetime.combine(info.period_end + timedelta(days=1), datetime.min.time())
    start = datetime.combine(info.period_start, datetime.min.time())
    today: date = now.date()
    checks: list[tuple[str, str, pl.Expr]] = []
    if table == "customers":
        checks += [("unknown_region", "region", ~c("region").is_in(list(info.regions))),
                   ("future_timestamp", "signup_date", c("signup_date") > today)]
        if info.merchant_type == "car_brand":
            checks.append(("future_timestamp", "vehicle_purchase_date",
                           c("vehicle_purchase_date") > today))
    elif table == "transactions":
        expected = c("quantity").cast(pl.Float64) * c("unit_price")
        # 1e-9 absorbs binary rounding of cent values (1.01 - 1.00 > 0.01 in floats).
        tolerance = pl.max_horizontal(pl.lit(0.01), expected.abs() * 0.005) + 1e-9
        checks += [
            ("not_finite", "unit_price", ~c("unit_price").is_finite()),
            ("not_finite", "amount", ~c("amount").is_finite()),
            ("non_positive_quantity", "quantity", c("quantity") <= 0),
            ("negative_price", "unit_price", c("unit_price") < 0),
            ("negative_price", "amount", c("amount") < 0),
            ("amount_mismatch", "amount", (c("amount") - expected).abs() > tolerance),
            ("future_timestamp", "timestamp", c("timestamp") > now),
            ("out_of_period", "timestamp",
             (c("timestamp") < start) | (c("timestamp") >= day_after_end)),
        ]
    elif table == "campaigns":
        checks.append(("campaign_end_before_start", "end", c("end") < c("start")))
    elif table == "exposures":
        for col in ("spend", "discount_cost"):
            checks.append(("not_finite", col, ~c(col).is_finite()))
        for col in ("redemptions", "visits", "spend", "discount_cost"):
            checks.append(("negative_value", col, c(col) < 0))
    return checks


_KEYS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id",), "transactions": ("transaction_id",),
    "campaigns": ("campaign_id",), "exposures": ("campaign_id", "customer_id"),
}


def _duplicate_check(table: str) -> Check:
    keys = _KEYS[table]
    if len(keys) == 1:
        key, value = pl.col(keys[0]), pl.col(f"_raw_{keys[0]}")
    else:
        key = pl.struct(*keys)
        value = pl.concat_str([pl.col(f"_raw_{k}") for k in keys], separator=",")
    not_null = pl.all_horizontal(pl.col(k).is_not_null() for k in keys)
    return "duplicate_id", ",".join(keys), not_null & ~key.is_first_distinct(), value


def _has_duplicates(frame: pl.DataFrame, keys: tuple[str, ...]) -> bool:
    # Counting distinct keys is several times cheaper than marking first occurrences, and
    # clean data (the common case at 50M rows) has none.
    key = pl.col(keys[0]) if len(keys) == 1 else pl.struct(*keys)
    not_null = pl.all_horizontal(pl.col(k).is_not_null() for k in keys)
    kept = frame.select(key.filter(not_null).n_unique().alias("u"), not_null.sum().alias("n"))
    return bool(kept["u"][0] != kept["n"][0])


def _type_checks(table: str, present: list[str]) -> list[Check]:
    checks: list[Check] = []
    for col in present:
        r, t = pl.col(f"_raw_{col}"), pl.col(col)
        checks.append((_ENUM_RULES.get(col, "bad_type"), col, r.is_not_null() & t.is_null(), r))
        if col not in NULLABLE[table]:
            checks.append(("null_required", col, r.is_null(), r))
    return checks


def _run_checks(frame: pl.DataFrame, checks: list[Check]) -> list[pl.DataFrame]:
    """Count every mask in one pass; build offence rows only for masks that fired."""
    if not checks or frame.height == 0:
        return []
    counts = [0] * len(checks)
    # Slices are zero-copy; counting slice by slice bounds the mask intermediates (several
    # float columns for amount_mismatch) to one slice instead of the whole table.
    for start in range(0, frame.height, _COUNT_SLICE_ROWS):
        part = frame.slice(start, _COUNT_SLICE_ROWS).select(
            mask.fill_null(False).sum().alias(str(i))
            for i, (_, _, mask, _) in enumerate(checks)).row(0)
        counts = [a + b for a, b in zip(counts, part, strict=True)]
    return [_offences(frame, mask, rule, col, value)
            for (rule, col, mask, value), n in zip(checks, counts, strict=True) if n]


def _empty_offences() -> pl.DataFrame:
    return pl.DataFrame(schema=OFFENCE_SCHEMA)


def _check_table(table: str, raw: pl.DataFrame, info: MerchantInfo, now: datetime
                 ) -> tuple[pl.DataFrame, pl.DataFrame, list[pl.DataFrame], tuple[str, ...]]:
    """Type the table and find its single-table offences.

    Returns the raw frame and the typed frame (both with ``_row``), the offence frames, and
    the columns outside the model.
    """
    schema = table_schema(table, info.merchant_type)
    raw = raw.with_row_index("_row")
    missing = [col for col in schema if col not in raw.columns]
    extra = tuple(col for col in raw.columns if col not in schema and col != "_row")
    present = [col for col in schema if col in raw.columns]
    typed = pl.DataFrame([
        raw["_row"],
        *[pl.repeat(None, raw.height, dtype=dtype, eager=True).alias(col) if col in missing
          else coerce(raw[col], dtype).alias(col) for col, dtype in schema.items()],
    ])
    found = [pl.DataFrame({"_row": [None], "_rule": ["missing_column"], "_column": [col],
                           "_value": [None]}, schema=OFFENCE_SCHEMA) for col in missing]
    found += [pl.DataFrame({"_row": [None], "_rule": ["unknown_column"], "_column": [col],
                            "_value": [None]}, schema=OFFENCE_SCHEMA) for col in extra]
    withraw = typed.with_columns(raw.select(pl.col(present).name.prefix("_raw_")))
    checks = _type_checks(table, present)
    checks += [(rule, col, mask, pl.col(f"_raw_{col}"))
               for rule, col, mask in _column_checks(table, info, now) if col in present]
    if all(k in present for k in _KEYS[table]) and _has_duplicates(typed, _KEYS[table]):
        checks.append(_duplicate_check(table))
    found += _run_checks(withraw, checks)
    return raw, typed, found, extra


def _reference_check(frame: pl.DataFrame, raw: pl.DataFrame, column: str, ids: pl.Series,
                     rule: str) -> list[pl.DataFrame]:
    withraw = frame.with_columns(raw.select(pl.col(column).alias("_raw")))
    mask = pl.col(column).is_not_null() & ~pl.col(column).is_in(ids.implode())
    return _run_checks(withraw, [(rule, column, mask, pl.col("_raw"))])


def _first_offences(raw: pl.DataFrame, offences: pl.DataFrame) -> pl.DataFrame:
    """One offence per rejected row: the highest-priority rule it broke."""
    missing = offences.filter(pl.col("_rule") == "missing_column")
    if missing.height:  # without the column no row of the table can be loaded
        return raw.select(
            pl.col("_row").cast(pl.Int64), pl.lit("missing_column").alias("_rule"),
            pl.lit(missing["_column"][0]).alias("_column"),
            pl.lit(None, dtype=pl.String).alias("_value"),
        )
    rows = offences.filter(pl.col("_row").is_not_null())
    if rows.height == 0:
        return _empty_offences()
    priority = pl.col("_rule").replace_strict(_PRIORITY, return_dtype=pl.Int32)
    return (rows.with_columns(priority.alias("_p")).sort("_row", "_p")
            .unique("_row", keep="first", maintain_order=True).drop("_p"))


def _as_strings(frame: pl.DataFrame) -> pl.DataFrame:
    cols = []
    for s in frame.iter_columns():
        try:
            cols.append(s.cast(pl.String))
        except pl.exceptions.InvalidOperationError:  # nested types: keep their text form
            cols.append(pl.Series(s.name, [None if v is None else str(v) for v in s],
                                  dtype=pl.String))
    return pl.DataFrame(cols, schema={c.name: pl.String for c in cols})


def _finish(table: str, raw: pl.DataFrame, typed: pl.DataFrame, found: list[pl.DataFrame],
            extra: tuple[str, ...]) -> TableResult:
    offences = pl.concat(found) if found else _empty_offences()
    first = _first_offences(raw, offences)
    loaded = typed
    if first.height:
        loaded = typed.filter(~pl.col("_row").is_in(first["_row"].cast(pl.UInt32).implode()))
    # A filter gathers only the offending rows; a semi join (even with no offences) would
    # materialise the whole raw table again (~3 GB at 50M rows).
    originals = (raw.filter(pl.col("_row").is_in(first["_row"].cast(pl.UInt32).implode()))
                 if first.height else raw.clear())
    quarantine = _as_strings(originals.drop("_row")).with_columns(
        originals["_row"].cast(pl.Int64)).join(first, on="_row", how="left")
    return TableResult(name=table, input_rows=raw.height, loaded=loaded.drop("_row"),
                       offences=offences, quarantine=quarantine, dropped_columns=extra)


def validate_tables(info: MerchantInfo, raw: Mapping[str, pl.DataFrame], *, lenient: bool,
                    now: datetime) -> ValidationResult:
    """Validate the four raw tables of one merchant against the model.

    Cross-table references (a transaction's customer, an exposure's customer and campaign)
    are checked against the loaded rows in lenient mode, so a transaction of a quarantined
    customer is quarantined as ``unknown_customer``; in strict mode against every id present,
    so the error names root causes rather than their echoes.
    """
    missing = [t for t in TABLE_FILES if t not in raw]
    if missing:
        raise ValueError(f"raw: missing tables {missing}")
    results: dict[str, TableResult] = {}
    refs: dict[str, pl.Series] = {}
    for table in ("customers", "campaigns", "transactions", "exposures"):
        raw_t, typed, found, extra = _check_table(table, raw[table], info, now)
        for column, rule in (("customer_id", "unknown_customer"),
                             ("campaign_id", "unknown_campaign")):
            if column in refs and column in raw_t.columns and table in _REFERRING[column]:
                found += _reference_check(typed, raw_t, column, refs[column], rule)
        result = _finish(table, raw_t, typed, found, extra)
        results[table] = result
        if table in ("customers", "campaigns"):
            key = _KEYS[table][0]
            source = result.loaded if lenient else typed
            refs[key] = source[key].drop_nulls().unique()
    return ValidationResult(tables={t: results[t] for t in TABLE_FILES})


_REFERRING = {"customer_id": ("transactions", "exposures"), "campaign_id": ("exposures",)}
