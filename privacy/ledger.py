"""The durable per-owner privacy ledger: SQLite, append-only, hash-chained.

Schema (portable to PostgreSQL: plain types, explicit ids, no AUTOINCREMENT, no rowid
tricks; the SQLite triggers in ``_SQLITE_GUARDS`` are an extra guard only):

* ``ledger_meta(meta_key, meta_value)`` — owner id, merchant type, pseudonym key, schema.
* ``ledger_entries`` — one row per act, ids 1, 2, 3, … with no gaps. ``kind`` is
  ``open_period`` (sets period, cap and δ), ``charge`` (budget spent *before* any data is
  touched) or ``released`` (the content hash of what left, referring to its charge).
  ``entry_hash = sha256(prev_hash + "\\n" + canonical JSON of every other column)``.
* ``ledger_head`` — one row with the recorded totals: entry count, last hash, period, cap,
  δ, composed spent ε. :meth:`Ledger.verify` recomputes all of it from the entries.

A charge and its cap check run in one ``BEGIN IMMEDIATE`` transaction: the composition of
every charge in the period plus the new one is recomputed by the accountant; over the cap
raises :class:`~twinsim.errors.BudgetExceeded` and nothing is written. A crash after the
charge and before the ``released`` record wastes that budget; it is never refunded.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from privacy._chain import GENESIS_HASH, chain_hash, pseudonym
from privacy.accounting import (
    DpEvent,
    compose_epsilon,
        round_down,
    validate_delta,
    validate_epsilon,
)
from twinsim import __version__
from twinsim.errors import BudgetExceeded, UnknownOwner

__all__ = ["LEDGER_SCHEMA_VERSION", "SCHEMA_SQL", "Ledger", "LedgerEntry", "LedgerHead"]

LEDGER_SCHEMA_VERSION = 1

SCHEMA_SQL: tuple[str, ...] = (
    """CREATE TABLE ledger_meta (
        meta_key VARCHAR(64) PRIMARY KEY,
        meta_value TEXT NOT NULL)""",
    """CREATE TABLE ledger_entries (
        entry_id BIGINT PRIMARY KEY,
        owner VARCHAR(128) NOT NULL,
        period VARCHAR(32) NOT NULL,
        kind VARCHAR(16) NOT NULL,
        requester TEXT NOT NULL,
        purpose TEXT NOT NULL,
        mechanism VARCHAR(32) NOT NULL,
        parameters TEXT NOT NULL,
        privacy_unit VARCHAR(64) NOT NULL,
        sensitivity TEXT NOT NULL,
        rho DOUBLE PRECISION NOT NULL,
        epsilon DOUBLE PRECISION NOT NULL,
        delta DOUBLE PRECISION NOT NULL,
        cap_epsilon DOUBLE PRECISION NOT NULL,
        spent_epsilon DOUBLE PRECISION NOT NULL,
        ref_entry BIGINT,
        release_hash VARCHAR(64),
        software_version VARCHAR(64) NOT NULL,
        created_at VARCHAR(40) NOT NULL,
        prev_hash CHAR(64) NOT NULL,
        entry_hash CHAR(64) NOT NULL UNIQUE)""",
    """CREATE TABLE ledger_head (
        owner VARCHAR(128) PRIMARY KEY,
        period VARCHAR(32) NOT NULL,
        cap_epsilon DOUBLE PRECISION NOT NULL,
        delta DOUBLE PRECISION NOT NULL,
        n_entries BIGINT NOT NULL,
        last_entry_hash CHAR(64) NOT NULL,
        spent_epsilon DOUBLE PRECISION NOT NULL,
        updated_at VARCHAR(40) NOT NULL)""",
)

# SQLite-only extra guard (PostgreSQL: a BEFORE UPDATE OR DELETE trigger raising an exception,
# or REVOKE UPDATE, DELETE). verify() never relies on it.
_SQLITE_GUARDS: tuple[str, ...] = (
    """CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
       BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END""",
    """CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
       BEGIN SELECT RAISE(ABORT, 'ledger_entries is append-only'); END""",
)


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, kw_only=True)
class LedgerEntry:
    """One row of ``ledger_entries``."""

    entry_id: int
    owner: str
    period: str
    kind: str
    requester: str
    purpose: str
    mechanism: str
    parameters: str
    privacy_unit: str
    sensitivity: str
    rho: float
    epsilon: float
    delta: float
    cap_epsilon: float
    spent_epsilon: float
    ref_entry: int | None
    release_hash: str | None
    software_version: str
    created_at: str
    prev_hash: str
    entry_hash: str

    def hashed_fields(self) -> dict[str, Any]:
        out = asdict(self)
        del out["entry_hash"]
        return out

    def event(self) -> DpEvent:
        """The accountant's view of a ``charge`` entry (stored in ``parameters['event']``)."""
        return DpEvent.from_json_dict(json.loads(self.parameters)["event"])

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["parameters"] = json.loads(self.parameters)
        return out


_COLUMNS = tuple(f.name for f in fields(LedgerEntry))


@dataclass(frozen=True, kw_only=True)
class LedgerHead:
    """The recorded totals (``ledger_head``)."""

    owner: str
    period: str
    cap_epsilon: float
    delta: float
    n_entries: int
    last_entry_hash: str
    spent_epsilon: float
    updated_at: str

    @property
    def remaining_epsilon(self) -> float:
        """Cap minus spent, rounded *down* to the ε grid (never overstates what is left)."""
        return round_down(max(0.0, self.cap_epsilon - self.spent_epsilon))


class Ledger:
    """One owner's ledger file. Opens a fresh connection per operation (fork-safe)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise UnknownOwner(f"{self.path}: no ledger here; create one with "
                               "`twinsim ledger init --owner DIR`")
        meta = self._meta()
        self.owner: str = meta["owner"]
        self.merchant_type: str = meta["merchant_type"]
        self.pseudonym: str = pseudonym(bytes.fromhex(meta["pseudonym_key"]), self.owner)

    # -- creation -----------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, *, owner: str, merchant_type: str, period: str,
               cap_epsilon: float = 2.0, delta: float = 1e-8, requester: str = "ledger init",
               pseudonym_key: bytes | None = None) -> Ledger:
        """Create the file, its schema and the first ``open_period`` entry."""
        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path}: a ledger already exists; it is never overwritten")
        _check_period_args(period, cap_epsilon, delta)
        key = pseudonym_key if pseudonym_key is not None else secrets.token_bytes(32)
        with _connect(path) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("BEGIN IMMEDIATE")
            for stmt in SCHEMA_SQL + _SQLITE_GUARDS:
                conn.execute(stmt)
            meta = {"owner": owner, "merchant_type": merchant_type, "pseudonym_key": key.hex(),
                    "schema_version": str(LEDGER_SCHEMA_VERSION), "created_at": _now()}
            conn.executemany("INSERT INTO ledger_meta VALUES (?, ?)", sorted(meta.items()))
            conn.execute("INSERT INTO ledger_head VALUES (?, ?, ?, ?, 0, ?, 0.0, ?)",
                         (owner, period, float(cap_epsilon), float(delta), GENESIS_HASH, _now()))
            ledger_head = _read_head(conn)
            _append(conn, ledger_head, _period_fields(owner, period, cap_epsilon, delta,
                                                      requester), spent=0.0)
            conn.execute("COMMIT")
        return cls(path)

    # -- reading ------------------------------------------------------------------------
    def _meta(self) -> dict[str, str]:
        with _connect(self.path) as conn:
            try:
                return dict(conn.execute("SELECT meta_key, meta_value FROM ledger_meta"))
            except sqlite3.DatabaseError as exc:
                raise UnknownOwner(f"{self.path}: not a twinsim ledger ({exc})") from None

    def head(self) -> LedgerHead:
        with _connect(self.path) as conn:
            return _read_head(conn)

    def entries(self) -> list[LedgerEntry]:
        with _connect(self.path) as conn:
            return _read_entries(conn)

    # -- appending ------------------------------------------------------------------------
    def charge(self, event: DpEvent, *, requester: str, purpose: str, mechanism: str,
               parameters: dict[str, Any], sensitivity: str, privacy_unit: str,
               event_epsilon: float) -> LedgerEntry:
        """Append a charge if the composed ε stays within the cap; else ``BudgetExceeded``."""
        _check_text(requester=requester, purpose=purpose, sensitivity=sensitivity)
        params = {**parameters, "event": event.to_json_dict()}
        with _connect(self.path) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                head = _read_head(conn)
                period_events = [e.event() for e in _read_entries(conn, period=head.period)
                                 if e.kind == "charge"]
                after = compose_epsilon([*period_events, event], head.delta)
                if after > head.cap_epsilon:
                    raise _exceeded(self.owner, head, after)
                entry = _append(conn, head, {
                    "owner": self.owner, "period": head.period, "kind": "charge",
                    "requester": requester, "purpose": purpose, "mechanism": mechanism,
                    "parameters": json.dumps(params, sort_keys=True),
                    "privacy_unit": privacy_unit, "sensitivity": sensitivity,
                    "rho": float(event.rho), "epsilon": float(event_epsilon),
                    "delta": head.delta, "cap_epsilon": head.cap_epsilon,
                    "ref_entry": None, "release_hash": None}, spent=after)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return entry

    def record_release(self, charge_entry_id: int, release_hash: str, *,
                       requester: str) -> LedgerEntry:
        """Append the ``released`` record: the content hash of what left, after its charge."""
        if not (isinstance(release_hash, str) and len(release_hash) == 64):
            raise ValueError(f"release_hash: must be a 64-hex sha256 (got {release_hash!r})")
        with _connect(self.path) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                head = _read_head(conn)
                rows = _read_entries(conn, entry_id=charge_entry_id)
                if not rows or rows[0].kind != "charge":
                    raise ValueError(f"charge_entry_id: {charge_entry_id} is not a charge entry")
                entry = _append(conn, head, {
                    "owner": self.owner, "period": rows[0].period, "kind": "released",
                    "requester": requester, "purpose": rows[0].purpose,
                    "mechanism": rows[0].mechanism, "parameters": "{}",
                    "privacy_unit": rows[0].privacy_unit, "sensitivity": "-",
                    "rho": 0.0, "epsilon": 0.0, "delta": head.delta,
                    "cap_epsilon": head.cap_epsilon, "ref_entry": charge_entry_id,
                    "release_hash": release_hash}, spent=head.spent_epsilon)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return entry

    def open_period(self, period: str, *, cap_epsilon: float, delta: float,
                    requester: str) -> LedgerEntry:
        """Start a new accounting period: an explicit, logged act (never automatic)."""
        _check_period_args(period, cap_epsilon, delta)
        with _connect(self.path) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                head = _read_head(conn)
                if period == head.period or _read_entries(conn, period=period):
                    raise ValueError(f"period: {period!r} was already opened in this ledger")
                entry = _append(conn, head, _period_fields(self.owner, period, cap_epsilon,
                                                           delta, requester), spent=0.0)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return entry


# -- module helpers (SQL) ------------------------------------------------------------------

@contextmanager
def _connect(path: Path) -> Iterator[sqlite3.Connection]:
    # isolation_level=None: we issue BEGIN IMMEDIATE ourselves; the long timeout lets many
    # writers queue for the lock instead of failing.
    conn = sqlite3.connect(path, timeout=120.0, isolation_level=None)
    try:
        conn.execute("PRAGMA synchronous=FULL")
        yield conn
    finally:
        conn.close()


def _read_head(conn: sqlite3.Connection) -> LedgerHead:
    row = conn.execute(
        "SELECT owner, period, cap_epsilon, delta, n_entries, last_entry_hash, spent_epsilon, "
        "updated_at FROM ledger_head").fetchall()
    if len(row) != 1:
        raise UnknownOwner(f"ledger_head: expected one row, found {len(row)}")
    return LedgerHead(**dict(zip(
        ("owner", "period", "cap_epsilon", "delta", "n_entries", "last_entry_hash",
         "spent_epsilon", "updated_at"), row[0], strict=True)))


def _read_entries(conn: sqlite3.Connection, *, period: str | None = None,
                  entry_id: int | None = None) -> list[LedgerEntry]:
    sql = f"SELECT {', '.join(_COLUMNS)} FROM ledger_entries"
    args: tuple[Any, ...] = ()
    if period is not None:
        sql, args = sql + " WHERE period = ?", (period,)
    elif entry_id is not None:
        sql, args = sql + " WHERE entry_id = ?", (entry_id,)
    rows = conn.execute(sql + " ORDER BY entry_id", args).fetchall()
    return [LedgerEntry(**dict(zip(_COLUMNS, r, strict=True))) for r in rows]


def _append(conn: sqlite3.Connection, head: LedgerHead, values: dict[str, Any], *,
            spent: float) -> LedgerEntry:
    draft = {**values, "entry_id": head.n_entries + 1, "spent_epsilon": float(spent),
             "software_version": __version__, "created_at": _now(),
             "prev_hash": head.last_entry_hash, "entry_hash": ""}
    entry = LedgerEntry(**draft)
    entry = LedgerEntry(**{**draft, "entry_hash": chain_hash(entry.prev_hash,
                                                             entry.hashed_fields())})
    conn.execute(f"INSERT INTO ledger_entries ({', '.join(_COLUMNS)}) "
                 f"VALUES ({', '.join('?' * len(_COLUMNS))})",
                 tuple(getattr(entry, c) for c in _COLUMNS))
    is_period = entry.kind == "open_period"
    conn.execute("UPDATE ledger_head SET n_entries = ?, last_entry_hash = ?, spent_epsilon = ?, "
                 "period = ?, cap_epsilon = ?, delta = ?, updated_at = ?",
                 (entry.entry_id, entry.entry_hash, entry.spent_epsilon, entry.period,
                  entry.cap_epsilon if is_period else head.cap_epsilon,
                  entry.delta if is_period else head.delta, entry.created_at))
    return entry


def _exceeded(owner: str, head: LedgerHead, after: float) -> BudgetExceeded:
    exc = BudgetExceeded(
        f"owner {owner!r}, period {head.period}: this request would bring spent ε from "
        f"{head.spent_epsilon:.9g} to {after:.9g} (δ={head.delta:g}), over the cap "
        f"{head.cap_epsilon:g}; remaining {head.remaining_epsilon:.9g}. Nothing was charged; "
        "ask for less or open a new period.",
        spent_epsilon=head.spent_epsilon, remaining_epsilon=head.remaining_epsilon,
        requested_epsilon=after)
    return exc


def _period_fields(owner: str, period: str, cap_epsilon: float, delta: float,
                   requester: str) -> dict[str, Any]:
    return {"owner": owner, "period": period, "kind": "open_period", "requester": requester,
            "purpose": f"open period {period}", "mechanism": "none", "parameters": "{}",
            "privacy_unit": "-", "sensitivity": "-", "rho": 0.0, "epsilon": 0.0,
            "delta": float(delta), "cap_epsilon": float(cap_epsilon), "ref_entry": None,
            "release_hash": None}


def _check_period_args(period: str, cap_epsilon: float, delta: float) -> None:
    if not isinstance(period, str) or not period.strip() or len(period) > 32:
        raise ValueError(f"period: must be a non-empty label of ≤ 32 characters (got {period!r})")
    validate_epsilon(cap_epsilon, "cap_epsilon")
    validate_delta(delta, allow_zero=False)
    if math.isinf(cap_epsilon):
        raise ValueError("cap_epsilon: must be finite")


def _check_text(**values: str) -> None:
    for name, value in values.items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name}: must be a non-empty string (got {value!r})")
