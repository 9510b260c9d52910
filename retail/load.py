"""Loading merchant folders with validation that never loses a row silently.

Strict mode (the default) refuses a folder that breaks the model, with a
``DataValidationError`` naming file, row, column, value and rule of the first offences and
the count per rule. Lenient mode loads the good rows, writes every rejected row to
``<quarantine_dir>/<table>.quarantine.parquet`` and reports, per table, that
loaded + quarantined == input rows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

import polars as pl

from retail.merchant import (
    MERCHANT_FILE,
    WORLD_FILE,
    Merchant,
    MerchantInfo,
    read_merchant_info,
    read_world,
)
from retail.schema import TABLE_FILES
from retail.validate import RULES, ValidationResult, validate_tables
from twinsim.errors import DataValidationError

__all__ = [
    "LoadReport",
    "TableReport",
    "check_frames",
    "is_merchant_folder",
    "is_world_folder",
    "load_merchant",
    "load_world",
    "read_raw_tables",
    "resolve_now",
]


@dataclass(frozen=True, kw_only=True)
class TableReport:
    """Row accounting of one table: ``loaded_rows + quarantined_rows == input_rows``."""

    table: str
    file: str
    input_rows: int
    loaded_rows: int
    quarantined_rows: int
    by_rule: dict[str, int]
    dropped_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.loaded_rows + self.quarantined_rows != self.input_rows:
            raise ValueError(
                f"TableReport.{self.table}: loaded {self.loaded_rows} + quarantined "
                f"{self.quarantined_rows} != input {self.input_rows}")


@dataclass(frozen=True, kw_only=True)
class LoadReport:
    """What a load did: per-table counts, and the quarantined rows themselves."""

    source: str
    merchant_id: str
    lenient: bool
    tables: dict[str, TableReport]
    quarantine_dir: str | None = None
    quarantine: dict[str, pl.DataFrame] = field(default_factory=dict, compare=False,
                                                repr=False)

    @property
    def quarantined_rows(self) -> int:
        return sum(t.quarantined_rows for t in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "merchant_id": self.merchant_id, "lenient": self.lenient,
            "quarantine_dir": self.quarantine_dir,
            "tables": {name: {"file": t.file, "input_rows": t.input_rows,
                              "loaded_rows": t.loaded_rows,
                              "quarantined_rows": t.quarantined_rows,
                              "by_rule": t.by_rule,
                              "dropped_columns": list(t.dropped_columns)}
                       for name, t in self.tables.items()},
        }


def resolve_now(now: datetime | date | None) -> datetime:
    """``now`` as a naive datetime; a bare date means the end of that day."""
    if now is None:
        return datetime.now()
    if isinstance(now, datetime):
        return now.replace(tzinfo=None)
    return datetime.combine(now, time.max)


def read_raw_tables(folder: str | Path) -> dict[str, pl.DataFrame]:
    """Read the four Parquet files as they are (no casting); file problems are fatal."""
    folder = Path(folder)
    raw: dict[str, pl.DataFrame] = {}
    for table, file in TABLE_FILES.items():
        path = folder / file
        if not path.is_file():
            raise _file_error(path, "missing_file", "file not found; every merchant folder "
                              "holds all four tables (campaigns/exposures may be empty)")
        try:
            raw[table] = pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError) as exc:
            raise _file_error(path, "unreadable_file", f"not a readable Parquet file: {exc}"
                              ) from None
    return raw


def _file_error(path: Path, rule: str, detail: str) -> DataValidationError:
    offence: dict[str, object] = {"file": str(path), "row": None, "column": None,
                                  "value": None, "rule": rule}
    return DataValidationError(f"{path}: {rule}: {detail}", offences=[offence], count=1)


def load_merchant(folder: str | Path, *, lenient: bool = False,
                  quarantine_dir: str | Path | None = None,
                  now: datetime | date | None = None, max_offences: int = 20) -> Merchant:
    """Load and validate a merchant folder.

    Strict: raise ``DataValidationError`` listing the first ``max_offences`` offences.
    Lenient: load the good rows; rejected rows go to ``quarantine_dir`` (if given) and to
    ``merchant.report.quarantine``. ``now`` bounds timestamps (default: the clock).
    """
    folder = Path(folder)
    info = read_merchant_info(folder)
    raw = read_raw_tables(folder)
    return check_frames(info, raw, source=str(folder), files=TABLE_FILES, lenient=lenient,
                        quarantine_dir=quarantine_dir, now=now, max_offences=max_offences)


def check_frames(info: MerchantInfo, raw: Mapping[str, pl.DataFrame], *, source: str,
                 files: Mapping[str, str], lenient: bool = False,
                 quarantine_dir: str | Path | None = None,
                 now: datetime | date | None = None, max_offences: int = 20) -> Merchant:
    """Validate raw frames (from Parquet, CSV, ...) into a ``Merchant`` with a report.

    ``files`` names the file each table came from, for messages.
    """
    if max_offences < 1:
        raise ValueError(f"max_offences: must be at least 1 (got {max_offences})")
    result = validate_tables(info, raw, lenient=lenient, now=resolve_now(now))
    if not lenient and result.offence_count:
        raise _strict_error(source, files, result, max_offences)
    report = _report(info, source, files, result, lenient, quarantine_dir)
    if quarantine_dir is not None and lenient:
        _write_quarantine(Path(quarantine_dir), report)
    loaded = {t: r.loaded for t, r in result.tables.items()}
    return Merchant(info=info, report=report, **loaded)


def _report(info: MerchantInfo, source: str, files: Mapping[str, str],
            result: ValidationResult, lenient: bool,
            quarantine_dir: str | Path | None) -> LoadReport:
    tables = {
        t: TableReport(table=t, file=files[t], input_rows=r.input_rows,
                       loaded_rows=r.loaded.height, quarantined_rows=r.quarantine.height,
                       by_rule=r.counts_by_rule, dropped_columns=r.dropped_columns)
        for t, r in result.tables.items()
    }
    return LoadReport(source=source, merchant_id=info.merchant_id, lenient=lenient,
                      tables=tables,
                      quarantine_dir=None if quarantine_dir is None else str(quarantine_dir),
                      quarantine={t: r.quarantine for t, r in result.tables.items()})


def _write_quarantine(qdir: Path, report: LoadReport) -> None:
    # Every table gets a file, empty or not, so a stale file from an earlier run never lingers.
    qdir.mkdir(parents=True, exist_ok=True)
    for table, frame in report.quarantine.items():
        frame.write_parquet(qdir / f"{table}.quarantine.parquet")
    text = json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"
    (qdir / "report.json").write_text(text, encoding="utf-8")


def _strict_error(source: str, files: Mapping[str, str], result: ValidationResult,
                  max_offences: int) -> DataValidationError:
    order = {t: i for i, t in enumerate(TABLE_FILES)}
    priority = {r: i for i, r in enumerate(RULES)}
    frames = [r.offences.with_columns(pl.lit(t).alias("_table"))
              for t, r in result.tables.items() if r.offences.height]
    everything = pl.concat(frames).with_columns(
        pl.col("_table").replace_strict(order, return_dtype=pl.Int32).alias("_t"),
        pl.col("_rule").replace_strict(priority, return_dtype=pl.Int32).alias("_p"),
    ).sort("_t", "_row", "_p", nulls_last=False)
    shown = everything.head(max_offences)
    offences = [{"file": files[o["_table"]], "row": o["_row"], "column": o["_column"],
                 "value": o["_value"], "rule": o["_rule"]} for o in shown.iter_rows(named=True)]
    total = everything.height
    lines = [f"{source}: {total} offence(s) against the data model; first {len(offences)}:"]
    lines += [f"  {_describe(o)}" for o in offences]
    if total > len(offences):
        lines.append(f"  ... and {total - len(offences)} more")
    counts = everything.group_by("_table", "_t", "_rule", "_p").len().sort("_t", "_p")
    lines.append("Count per rule:")
    lines += [f"  {files[c['_table']]} {c['_rule']}: {c['len']}"
              for c in counts.iter_rows(named=True)]
    lines.append("Fix these rows at the source, or load leniently (Python: lenient=True, "
                 "quarantine_dir=...; CLI: --lenient --quarantine DIR) to quarantine them.")
    return DataValidationError("\n".join(lines), offences=offences, count=total)


def _describe(o: Mapping[str, Any]) -> str:
    where = f"{o['file']}"
    if o["row"] is not None:
        where += f" row {o['row']}"
    where += f", column {o['column']!r}"
    if o["row"] is not None:
        where += f", value {o['value']!r}"
    return f"{where}: {o['rule']} ({RULES.get(o['rule'], '')})"


def load_world(world_dir: str | Path, *, lenient: bool = False,
               quarantine_dir: str | Path | None = None, now: datetime | date | None = None,
               max_offences: int = 20) -> dict[str, Merchant]:
    """Load every merchant of a world folder; quarantine goes to ``quarantine_dir/<id>/``."""
    world = read_world(world_dir)
    return {
        mid: load_merchant(
            folder, lenient=lenient, now=now, max_offences=max_offences,
            quarantine_dir=None if quarantine_dir is None else Path(quarantine_dir) / mid)
        for mid, folder in world.merchant_dirs.items()
    }


def is_world_folder(path: str | Path) -> bool:
    return (Path(path) / WORLD_FILE).is_file()


def is_merchant_folder(path: str | Path) -> bool:
    return (Path(path) / MERCHANT_FILE).is_file()
