"""The CDNOW data set (Fader & Hardie) as a merchant of the data model.

Real customer transactions: 23,570 customers who first bought at CDNOW in the first quarter
of 1997, followed to 30 June 1998 (69,659 rows). The file is read from the ``lifetimes``
distribution on disk, without importing ``lifetimes`` (its import pulls in plotting and
autograd code we do not need). How each field is mapped, and why, is in docs/DATA.md.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import polars as pl

from retail.load import check_frames
from retail.merchant import (
    Merchant,
    MerchantInfo,
    WorldInfo,
    empty_table,
    write_merchant,
    write_world_info,
)
from retail.schema import CUSTOMERS_SCHEMA, TABLE_FILES, transactions_schema

__all__ = [
    "CDNOW_FILE",
    "CDNOW_PLACEHOLDER_REGION",
    "CdnowReport",
    "cdnow_merchant",
    "cdnow_path",
    "read_cdnow_raw",
    "write_cdnow_world",
]

CDNOW_FILE = "lifetimes/datasets/CDNOW_master.txt"
# CDNOW has no geography. The model requires a region, so every customer carries this one
# public region as an explicit placeholder; it means "unknown", never "lives in Stockholm".
CDNOW_PLACEHOLDER_REGION = "Stockholm"
PERIOD_START, PERIOD_END = date(1997, 1, 1), date(1998, 6, 30)
NOTES = (
    "CDNOW master data set (Fader & Hardie), as shipped in lifetimes 0.11.3. Amounts in USD. "
    f"No geography: region '{CDNOW_PLACEHOLDER_REGION}' is a placeholder meaning unknown. "
    "No times of day: timestamps are midnight of the purchase date. $0 rows kept with "
    "promo=true; same-day rows kept as separate transactions. See docs/DATA.md."
)


@dataclass(frozen=True, kw_only=True)
class CdnowReport:
    """What the mapping met: counts the user should know about, nothing dropped."""

    source: str
    rows: int
    customers: int
    first_date: str
    last_date: str
    zero_value_rows: int  # $0.00 rows (CDs given away); kept, flagged promo=true
    zero_quantity_rows: int  # 0 CDs; none in the shipped file, would fail validation
    same_day_rows: int  # rows sharing customer and date with another row; kept
    same_day_groups: int  # customer-days with more than one row
    currency: str = "USD"


def cdnow_path() -> Path:
    """Where the installed ``lifetimes`` distribution keeps ``CDNOW_master.txt``."""
    try:
        path = Path(str(importlib.metadata.distribution("lifetimes").locate_file(CDNOW_FILE)))
    except importlib.metadata.PackageNotFoundError:
        # find_spec on a top-level package locates it without executing it.
        spec = importlib.util.find_spec("lifetimes")
        if spec is None or spec.origin is None:
            raise FileNotFoundError(
                "CDNOW: the 'lifetimes' package is not installed; "
                "install it with pip install lifetimes==0.11.3") from None
        path = Path(spec.origin).parent / "datasets" / "CDNOW_master.txt"
    if not path.is_file():
        raise FileNotFoundError(f"CDNOW: {path} not found in the lifetimes installation")
    return path


def read_cdnow_raw(path: str | Path | None = None) -> pl.DataFrame:
    """The file as it is: customer_id (text, zero-padded), date, number_of_cds, dollar_value.

    The file is whitespace-aligned with a header line and CRLF line ends.
    """
    path = Path(path) if path is not None else cdnow_path()
    lines = pl.Series("line", path.read_text(encoding="ascii").splitlines()[1:])
    parts = (lines.str.strip_chars().str.replace_all(r"\s+", " ")
             .str.split_exact(" ", 3).struct.rename_fields(
                 ["customer_id", "date", "number_of_cds", "dollar_value"]).struct.unnest())
    raw = parts.with_columns(
        pl.col("date").str.to_date("%Y%m%d"),
        pl.col("number_of_cds").cast(pl.Int32),
        pl.col("dollar_value").cast(pl.Float64),
    )
    nulls = raw.null_count().sum_horizontal()[0]
    if nulls:
        raise ValueError(f"CDNOW: {path}: {nulls} unparseable fields; is this CDNOW_master.txt?")
    return raw


def _report(raw: pl.DataFrame, source: str) -> CdnowReport:
    per_day = raw.group_by("customer_id", "date").len()
    multi = per_day.filter(pl.col("len") > 1)
    return CdnowReport(
        source=source, rows=raw.height, customers=raw["customer_id"].n_unique(),
        first_date=str(raw["date"].min()), last_date=str(raw["date"].max()),
        zero_value_rows=raw.filter(pl.col("dollar_value") == 0).height,
        zero_quantity_rows=raw.filter(pl.col("number_of_cds") == 0).height,
        same_day_rows=int(multi["len"].sum()), same_day_groups=multi.height,
    )


def _tables(raw: pl.DataFrame) -> dict[str, pl.DataFrame]:
    customers = (raw.group_by("customer_id").agg(pl.col("date").min().alias("signup_date"))
                 .sort("customer_id").select(
                     "customer_id",
                     pl.lit(CDNOW_PLACEHOLDER_REGION).alias("region"),
                     "signup_date",
                     pl.lit(True).alias("consent_analytics"),
                     pl.lit(True).alias("consent_partner"),
                 ).cast(dict(CUSTOMERS_SCHEMA)))  # type: ignore[arg-type]
    qty = pl.col("number_of_cds")
    transactions = raw.with_row_index("transaction_id").select(
        pl.col("transaction_id").cast(pl.Int64),  # 0-based data line of the file
        "customer_id",
        pl.col("date").cast(pl.Datetime("us")).alias("timestamp"),
        pl.lit(None, dtype=pl.Int32).alias("store_id"),
        pl.lit("online").alias("channel"),
        pl.lit("music").alias("category"),
        pl.lit("standard").alias("tier"),
        pl.lit(False).alias("organic"),
        qty.alias("quantity"),
        pl.when(qty > 0).then(pl.col("dollar_value") / qty).otherwise(0.0).alias("unit_price"),
        pl.col("dollar_value").alias("amount"),
        (pl.col("dollar_value") == 0).alias("promo"),
    ).cast(transactions_schema("music"))  # type: ignore[arg-type]
    return {"customers": customers, "transactions": transactions,
            "campaigns": empty_table("campaigns", "music"),
            "exposures": empty_table("exposures", "music")}


def cdnow_merchant(path: str | Path | None = None) -> tuple[Merchant, CdnowReport]:
    """CDNOW as a validated ``music`` merchant (id ``cdnow``), with its mapping report."""
    path = Path(path) if path is not None else cdnow_path()
    raw = read_cdnow_raw(path)
    info = MerchantInfo(merchant_id="cdnow", name="CDNOW", merchant_type="music",
                        regions=(CDNOW_PLACEHOLDER_REGION,), currency="USD",
                        period_start=PERIOD_START, period_end=PERIOD_END, notes=NOTES)
    files = {t: f"{path} ({t})" for t in TABLE_FILES}
    merchant = check_frames(info, _tables(raw), source=str(path), files=files, now=PERIOD_END)
    return merchant, _report(raw, str(path))


def write_cdnow_world(out: str | Path, path: str | Path | None = None) -> CdnowReport:
    """Write a world folder of kind ``cdnow`` with the one merchant folder ``cdnow``."""
    out = Path(out)
    merchant, report = cdnow_merchant(path)
    write_merchant(out / "cdnow", merchant)
    write_world_info(out, WorldInfo(kind="cdnow", merchants=("cdnow",)))
    text = json.dumps(asdict(report), indent=2) + "\n"
    (out / "cdnow_report.json").write_text(text, encoding="utf-8")
    return report
