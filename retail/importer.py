"""Import a merchant's own CSV exports into the data model, through a mapping spec.

A mapping (a dict, or a YAML/JSON file) says how the merchant's export differs from the
model: column names, value spellings (category names in Swedish, ``ja``/``nej``), date
formats, decimal commas, and defaults for columns the export lacks (``channel: store``).
The mapped tables are then validated exactly like a merchant folder (``retail.load``), so
a CSV row that breaks the model is named by file, 0-based data row (header not counted),
column, value and rule. Example mapping::

    merchant: {merchant_id: grocery_1, name: Stor Livs, regions: [Stockholm],
               currency: SEK, period_start: "2025-01-01", period_end: "2025-12-31"}
    csv: {separator: ";", decimal_comma: true, thousands: " ", encoding: utf8}
    tables:
      customers:
        columns: {Kundnr: customer_id, Ort: region, Medlem sedan: signup_date}
        values: {region: {Gbg: Göteborg}}
        date_format: "%d.%m.%Y"
        defaults: {consent_analytics: true, consent_partner: false}
      transactions:
        columns: {Kvitto: transaction_id, Kund: customer_id, Tid: timestamp, ...}
        values: {category: {Mejeri: dairy, Bröd: bakery}}
        datetime_format: "%d.%m.%Y %H:%M"
        defaults: {channel: store, tier: standard, organic: false, promo: false}
        ignore: [Kassör]
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from retail.load import check_frames
from retail.merchant import Merchant, MerchantInfo, empty_table, table_schema, write_merchant
from retail.schema import TABLE_FILES
from retail.validate import NULLABLE

__all__ = ["CsvOptions", "MappingSpec", "TableMapping", "import_csv", "read_mapping"]


def _text(value: Any) -> str:
    """Spec values as the text the validator reads (YAML turns ``true`` into a bool)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | datetime):
        return value.isoformat()
    return str(value)


@dataclass(frozen=True, kw_only=True)
class TableMapping:
    """How one CSV file maps to one model table. ``columns`` maps source -> model name."""

    table: str
    columns: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    defaults: dict[str, str] = field(default_factory=dict)
    date_format: str | None = None
    datetime_format: str | None = None
    ignore: tuple[str, ...] = ()
    generate_ids: bool = False  # transactions only: transaction_id = 1-based data row

    def __post_init__(self) -> None:
        if self.table not in TABLE_FILES:
            raise ValueError(f"table: unknown {self.table!r}; known: {sorted(TABLE_FILES)}")
        model = set(table_schema(self.table, "car_brand" if self.table == "customers"
                                 else "grocery"))
        for key, names in (("columns", self.columns.values()), ("values", self.values),
                           ("defaults", self.defaults)):
            bad = sorted(set(names) - model)
            if bad:
                raise ValueError(f"tables.{self.table}.{key}: not columns of the model: {bad}; "
                                 f"known: {sorted(model)}")
        if self.generate_ids and self.table != "transactions":
            raise ValueError(f"tables.{self.table}.generate_ids: only for transactions")


@dataclass(frozen=True, kw_only=True)
class CsvOptions:
    separator: str = ","
    decimal_comma: bool = False
    thousands: str | None = None
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        if len(self.separator) != 1:
            raise ValueError(f"csv.separator: must be one character (got {self.separator!r})")
        if self.decimal_comma and self.separator == ",":
            raise ValueError("csv.separator: ',' cannot separate fields when "
                             "decimal_comma is true; use ';' or a tab")
        "".encode(self.encoding)  # raises LookupError for an unknown encoding


@dataclass(frozen=True, kw_only=True)
class MappingSpec:
    merchant: dict[str, Any]
    csv: CsvOptions = field(default_factory=CsvOptions)
    tables: dict[str, TableMapping] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MappingSpec:
        unknown = sorted(set(data) - {"merchant", "csv", "tables"})
        if unknown:
            raise ValueError(f"mapping: unknown keys {unknown}; allowed: csv, merchant, tables")
        tables = {}
        for name, raw in (data.get("tables") or {}).items():
            raw = dict(raw or {})
            raw["columns"] = {str(k): str(v) for k, v in (raw.get("columns") or {}).items()}
            raw["values"] = {c: {_text(k): _text(v) for k, v in m.items()}
                             for c, m in (raw.get("values") or {}).items()}
            raw["defaults"] = {c: _text(v) for c, v in (raw.get("defaults") or {}).items()}
            raw["ignore"] = tuple(raw.get("ignore") or ())
            tables[name] = TableMapping(table=name, **raw)
        return cls(merchant=dict(data.get("merchant") or {}),
                   csv=CsvOptions(**(data.get("csv") or {})), tables=tables)


def read_mapping(spec: str | Path | Mapping[str, Any]) -> MappingSpec:
    """A mapping from a dict, or from a ``.yaml``/``.yml``/``.json`` file."""
    if isinstance(spec, Mapping):
        return MappingSpec.from_dict(spec)
    path = Path(spec)
    text = path.read_text(encoding="utf-8")
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, Mapping):
        raise ValueError(f"{path}: a mapping file must hold a mapping at the top level")
    return MappingSpec.from_dict(data)


def _read_csv(path: Path, options: CsvOptions) -> pl.DataFrame:
    data = path.read_bytes()
    if options.encoding.lower().replace("-", "") not in ("utf8", "utf8sig"):
        data = data.decode(options.encoding).encode("utf-8")
    # Every column as text: the validator decides what parses, and reports what does not.
    return pl.read_csv(io.BytesIO(data), separator=options.separator, infer_schema=False,
                       encoding="utf8")


def _map_table(frame: pl.DataFrame, mapping: TableMapping, merchant_type: str,
               options: CsvOptions) -> pl.DataFrame:
    schema = table_schema(mapping.table, merchant_type)
    frame = frame.drop([c for c in mapping.ignore if c in frame.columns])
    frame = frame.rename({s: m for s, m in mapping.columns.items() if s in frame.columns})
    frame = frame.with_columns(pl.col(pl.String).str.strip_chars())
    for col, values in mapping.values.items():
        if col in frame.columns:
            frame = frame.with_columns(pl.col(col).replace(values))
    for col, dtype in schema.items():
        if col not in frame.columns:
            continue
        if options.decimal_comma and dtype == pl.Float64:
            text = pl.col(col)
            if options.thousands:
                text = text.str.replace_all(options.thousands, "", literal=True)
            frame = frame.with_columns(text.str.replace(",", ".", literal=True))
        fmt = mapping.date_format if dtype == pl.Date else (
            mapping.datetime_format if isinstance(dtype, pl.Datetime) else None)
        if fmt:
            frame = frame.with_columns(_reformat(col, dtype, fmt))
    return _complete(frame, mapping, schema)


def _reformat(col: str, dtype: pl.DataType, fmt: str) -> pl.Expr:
    # Unparseable text stays as it was, so the validator reports the merchant's own value.
    parsed = (pl.col(col).str.to_date(fmt, strict=False) if dtype == pl.Date
              else pl.col(col).str.to_datetime(fmt, strict=False, time_unit="us"))
    return pl.when(parsed.is_not_null()).then(parsed.cast(pl.String)).otherwise(pl.col(col))


def _complete(frame: pl.DataFrame, mapping: TableMapping, schema: dict[str, pl.DataType]
              ) -> pl.DataFrame:
    """Defaults, generated ids, derived amounts and empty optional columns."""
    for col, value in mapping.defaults.items():
        frame = frame.with_columns(
            pl.col(col).fill_null(value) if col in frame.columns else pl.lit(value).alias(col))
    if mapping.generate_ids and "transaction_id" not in frame.columns:
        frame = frame.with_columns(pl.int_range(1, pl.len() + 1).cast(pl.String)
                                   .alias("transaction_id"))
    if mapping.table == "transactions":
        q = pl.col("quantity").cast(pl.Float64, strict=False)
        price = pl.col("unit_price").cast(pl.Float64, strict=False)
        amount = pl.col("amount").cast(pl.Float64, strict=False)
        cols = set(frame.columns)
        if {"quantity", "unit_price"} <= cols and "amount" not in cols:
            frame = frame.with_columns((q * price).round(2).cast(pl.String).alias("amount"))
        elif {"quantity", "amount"} <= cols and "unit_price" not in cols:
            frame = frame.with_columns((amount / q).cast(pl.String).alias("unit_price"))
    # A column the model allows to be empty (store_id of online orders, ...) may be absent.
    absent = [c for c in schema if c not in frame.columns and c in NULLABLE[mapping.table]]
    return frame.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in absent)


def import_csv(*, customers: str | Path, transactions: str | Path,
               mapping: str | Path | Mapping[str, Any], merchant_type: str | None = None,
               out: str | Path | None = None, campaigns: str | Path | None = None,
               exposures: str | Path | None = None, lenient: bool = False,
               quarantine_dir: str | Path | None = None,
               now: datetime | date | None = None) -> Merchant:
    """Map CSV exports to the model, validate them, and write a merchant folder to ``out``.

    Strict by default: nothing is written unless every row is valid. Lenient: the good rows
    are written and the rest go to ``quarantine_dir``. Campaign/exposure files are optional
    (empty tables otherwise).
    """
    spec = read_mapping(mapping)
    meta = dict(spec.merchant)
    if merchant_type is not None:
        meta["merchant_type"] = merchant_type
    info = MerchantInfo.from_json_dict({"schema_version": 1, **meta})
    paths = {"customers": customers, "transactions": transactions, "campaigns": campaigns,
             "exposures": exposures}
    raw: dict[str, pl.DataFrame] = {}
    files: dict[str, str] = {}
    for table, path in paths.items():
        if path is None:
            raw[table], files[table] = empty_table(table, info.merchant_type), "(none)"
            continue
        table_map = spec.tables.get(table, TableMapping(table=table))
        frame = _read_csv(Path(path), spec.csv)
        raw[table] = _map_table(frame, table_map, info.merchant_type, spec.csv)
        files[table] = str(path)
    merchant = check_frames(info, raw, source="CSV import", files=files, lenient=lenient,
                            quarantine_dir=quarantine_dir, now=now)
    if out is not None:
        write_merchant(out, merchant)
    return merchant
