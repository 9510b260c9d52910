"""Merchant and world value objects, and reading/writing their folders.

A merchant folder holds ``merchant.json`` and the four tables of ``retail.schema``; a world
folder holds ``world.json`` and one merchant folder per merchant (plus ``_truth/``, owned by
the world generator). Reading tables with validation lives in ``retail.load``; this module
only knows the metadata files and writes already-valid merchants.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from retail.schema import (
    CAMPAIGNS_SCHEMA,
    EXPOSURES_SCHEMA,
    MERCHANT_TYPES,
    TABLE_FILES,
    customers_schema,
    region_names,
    transactions_schema,
)
from twinsim.errors import DataValidationError

__all__ = [
    "MERCHANT_FILE",
    "SCHEMA_VERSION",
    "WORLD_FILE",
    "WORLD_KINDS",
    "FieldError",
    "Merchant",
    "MerchantInfo",
    "World",
    "WorldInfo",
    "empty_table",
    "read_merchant_info",
    "read_world",
    "table_schema",
    "write_merchant",
    "write_merchant_info",
    "write_world_info",
]

SCHEMA_VERSION = 1
MERCHANT_FILE = "merchant.json"
WORLD_FILE = "world.json"
WORLD_KINDS: tuple[str, ...] = ("synthetic", "cdnow", "imported")
_ID_RE = re.compile(r"^[A-Za-z0-9_\-]+$")
_CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


class FieldError(ValueError):
    """A ``ValueError`` that remembers which field and value were wrong."""

    def __init__(self, field_name: str, value: object, why: str) -> None:
        shown = value.isoformat() if isinstance(value, date) else value
        super().__init__(f"{field_name}: {why} (got {shown!r})")
        self.field = field_name
        self.value = shown


def _check(ok: bool, name: str, value: object, why: str) -> None:
    if not ok:
        raise FieldError(name, value, why)


@dataclass(frozen=True, kw_only=True)
class MerchantInfo:
    """What ``merchant.json`` says about a merchant. All fields public metadata."""

    merchant_id: str
    name: str
    merchant_type: str
    regions: tuple[str, ...]
    currency: str
    period_start: date
    period_end: date
    schema_version: int = SCHEMA_VERSION
    notes: str = ""  # free text, e.g. how a public data set was mapped

    def __post_init__(self) -> None:
        _check(self.schema_version == SCHEMA_VERSION, "schema_version", self.schema_version,
               f"must be {SCHEMA_VERSION}")
        _check(isinstance(self.merchant_id, str) and bool(_ID_RE.match(self.merchant_id)),
               "merchant_id", self.merchant_id, "must be letters, digits, '_' or '-'")
        _check(isinstance(self.name, str) and bool(self.name.strip()), "name", self.name,
               "must be a non-empty string")
        _check(self.merchant_type in MERCHANT_TYPES, "merchant_type", self.merchant_type,
               f"unknown; known: {sorted(MERCHANT_TYPES)}")
        _check(isinstance(self.regions, tuple) and len(self.regions) > 0, "regions",
               self.regions, "must be a non-empty tuple of region names")
        unknown = [r for r in self.regions if r not in region_names()]
        _check(not unknown, "regions", unknown, f"unknown regions; known: {list(region_names())}")
        _check(len(set(self.regions)) == len(self.regions), "regions", self.regions,
               "must not repeat a region")
        _check(isinstance(self.currency, str) and bool(_CURRENCY_RE.match(self.currency)),
               "currency", self.currency, "must be a 3-letter ISO code such as 'SEK'")
        for name in ("period_start", "period_end"):
            value = getattr(self, name)
            _check(isinstance(value, date), name, value, "must be a date")
        _check(self.period_start <= self.period_end, "period_end", self.period_end,
               f"must not be before period_start {self.period_start}")
        _check(isinstance(self.notes, str), "notes", self.notes, "must be a string")

    def to_json_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": self.schema_version,
            "merchant_id": self.merchant_id,
            "name": self.name,
            "merchant_type": self.merchant_type,
            "regions": list(self.regions),
            "currency": self.currency,
            "period_start": self.period_start.isoformat(),
            "period_end": self.period_end.isoformat(),
        }
        if self.notes:
            out["notes"] = self.notes
        return out

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> MerchantInfo:
        """Build from parsed JSON; raises ``ValueError`` naming the offending key."""
        if not isinstance(data, Mapping):
            raise FieldError("merchant.json", type(data).__name__, "must hold a JSON object")
        known = {"schema_version", "merchant_id", "name", "merchant_type", "regions",
                 "currency", "period_start", "period_end", "notes"}
        extra = sorted(set(data) - known)
        _check(not extra, "merchant.json", extra, f"unknown keys; allowed: {sorted(known)}")
        missing = sorted(known - {"notes"} - set(data))
        _check(not missing, "merchant.json", missing, "missing keys")
        kwargs = dict(data)
        for key in ("period_start", "period_end"):
            try:
                kwargs[key] = date.fromisoformat(str(data[key]))
            except ValueError:
                raise FieldError(key, data[key], "not an ISO date YYYY-MM-DD") from None
        regions = data["regions"]
        _check(isinstance(regions, list), "regions", regions, "must be a JSON list")
        kwargs["regions"] = tuple(regions)
        return cls(**kwargs)


def read_merchant_info(folder: str | Path) -> MerchantInfo:
    """Read and validate ``folder/merchant.json``; raises ``DataValidationError``."""
    path = Path(folder) / MERCHANT_FILE
    if not path.is_file():
        raise _json_error(path, "missing_file", "file not found; a merchant folder needs it")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _json_error(path, "bad_merchant_json", f"not valid JSON: {exc}") from None
    try:
        return MerchantInfo.from_json_dict(data)
    except FieldError as exc:
        raise _json_error(path, "bad_merchant_json", str(exc), exc.field, exc.value) from None
    except (ValueError, TypeError) as exc:
        raise _json_error(path, "bad_merchant_json", str(exc)) from None


def _json_error(path: Path, rule: str, detail: str, column: str | None = None,
                value: object = None) -> DataValidationError:
    offence: dict[str, object] = {"file": str(path), "row": None, "column": column,
               "value": None if value is None else str(value), "rule": rule}
    return DataValidationError(f"{path}: {rule}: {detail}. Fix the file and try again.",
                               offences=[offence], count=1)


def write_merchant_info(folder: str | Path, info: MerchantInfo) -> Path:
    path = Path(folder) / MERCHANT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(info.to_json_dict(), ensure_ascii=False, indent=2) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


def table_schema(table: str, merchant_type: str) -> dict[str, pl.DataType]:
    """The polars schema of one of the four tables for a merchant type."""
    if table == "customers":
        return customers_schema(merchant_type)
    if table == "transactions":
        return transactions_schema(merchant_type)
    if table == "campaigns":
        return dict(CAMPAIGNS_SCHEMA)
    if table == "exposures":
        return dict(EXPOSURES_SCHEMA)
    raise ValueError(f"table: unknown {table!r}; known: {sorted(TABLE_FILES)}")


def empty_table(table: str, merchant_type: str) -> pl.DataFrame:
    return pl.DataFrame(schema=table_schema(table, merchant_type))


@dataclass(frozen=True, kw_only=True)
class Merchant:
    """A merchant's metadata and its four tables, each exactly in the model's schema.

    ``report`` is set by ``retail.load.load_merchant`` (a ``LoadReport``) and says how many
    rows of each table were loaded and quarantined.
    """

    info: MerchantInfo
    customers: pl.DataFrame
    transactions: pl.DataFrame
    campaigns: pl.DataFrame
    exposures: pl.DataFrame
    report: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        for table in TABLE_FILES:
            frame = getattr(self, table)
            _check(isinstance(frame, pl.DataFrame), table, type(frame), "must be a DataFrame")
            want = table_schema(table, self.info.merchant_type)
            got = dict(frame.schema)
            _check(got == want, table, _schema_diff(got, want),
                   "columns/types differ from retail.schema; load it with retail.load")

    @property
    def tables(self) -> dict[str, pl.DataFrame]:
        return {t: getattr(self, t) for t in TABLE_FILES}


def _schema_diff(got: dict[str, pl.DataType], want: dict[str, pl.DataType]) -> dict[str, str]:
    names = list(dict.fromkeys([*want, *got]))
    return {n: f"{got.get(n)} != {want.get(n)}" for n in names if got.get(n) != want.get(n)}


def write_merchant(folder: str | Path, merchant: Merchant) -> Path:
    """Write ``merchant.json`` and the four Parquet tables into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_merchant_info(folder, merchant.info)
    for table, file in TABLE_FILES.items():
        merchant.tables[table].write_parquet(folder / file)
    return folder


@dataclass(frozen=True, kw_only=True)
class WorldInfo:
    """What ``world.json`` says: the kind of world and its merchants."""

    kind: str
    merchants: tuple[str, ...]
    scale: str | int | float | None = None
    seed: int | None = None
    truth_dir: str | None = None
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        _check(self.schema_version == SCHEMA_VERSION, "schema_version", self.schema_version,
               f"must be {SCHEMA_VERSION}")
        _check(self.kind in WORLD_KINDS, "kind", self.kind, f"known: {list(WORLD_KINDS)}")
        _check(isinstance(self.merchants, tuple) and len(self.merchants) > 0, "merchants",
               self.merchants, "must be a non-empty tuple of merchant ids")
        bad = [m for m in self.merchants if not (isinstance(m, str) and _ID_RE.match(m))]
        _check(not bad, "merchants", bad, "ids must be letters, digits, '_' or '-'")
        _check(len(set(self.merchants)) == len(self.merchants), "merchants", self.merchants,
               "must not repeat an id")
        _check(self.seed is None or isinstance(self.seed, int), "seed", self.seed,
               "must be an integer or null")

    def to_json_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, "kind": self.kind, "scale": self.scale,
                "seed": self.seed, "merchants": list(self.merchants),
                "truth_dir": self.truth_dir}


@dataclass(frozen=True, kw_only=True)
class World:
    """A world folder as found on disk: its metadata and each merchant's folder."""

    root: Path
    info: WorldInfo
    merchant_dirs: dict[str, Path]


def read_world(world_dir: str | Path) -> World:
    """Read ``world.json`` and locate each merchant folder; raises ``DataValidationError``."""
    root = Path(world_dir)
    path = root / WORLD_FILE
    if not path.is_file():
        raise _json_error(path, "missing_file", "file not found; is this a world folder?")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        info = WorldInfo(
            schema_version=data.get("schema_version"), kind=data.get("kind"),
            merchants=tuple(data.get("merchants") or ()), scale=data.get("scale"),
            seed=data.get("seed"), truth_dir=data.get("truth_dir"),
        )
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, TypeError,
            AttributeError) as exc:
        raise _json_error(path, "bad_world_json", str(exc)) from None
    dirs = {m: root / m for m in info.merchants}
    missing = [m for m, d in dirs.items() if not (d / MERCHANT_FILE).is_file()]
    if missing:
        raise _json_error(path, "missing_file",
                          f"merchant folders without {MERCHANT_FILE}: {missing}")
    return World(root=root, info=info, merchant_dirs=dirs)


def write_world_info(world_dir: str | Path, info: WorldInfo) -> Path:
    path = Path(world_dir) / WORLD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info.to_json_dict(), indent=2) + "\n", encoding="utf-8")
    return path
