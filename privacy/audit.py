"""Auditing a ledger: recompute the chain and the totals, and export for compliance.

:func:`verify_ledger` reads the rows with plain SQL (it does not trust triggers or the head
row) and checks, in order: ids run 1..n without gaps, each ``prev_hash`` is the previous
``entry_hash``, each ``entry_hash`` recomputes, each entry's recorded ``spent_epsilon`` equals
the accountant's replay of its period, no charge exceeded its cap, each ``released`` record
refers to an earlier, not yet released charge, and the head row matches the replay. The
first broken entry is named.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from privacy._chain import GENESIS_HASH, chain_hash
from privacy.accounting import EPS_GRID, EventTotals
from privacy.ledger import Ledger, LedgerEntry, LedgerHead, _connect, _read_entries, _read_head

__all__ = ["VerifyReport", "export_csv", "export_json", "verify_ledger"]


@dataclass(frozen=True, kw_only=True)
class VerifyReport:
    """The outcome of :func:`verify_ledger`. ``ok`` is False when anything broke."""

    ok: bool
    n_entries: int
    first_broken_entry: int | None
    problems: tuple[str, ...]
    spent_epsilon: float
    unreleased_charges: tuple[int, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["problems"] = list(self.problems)
        out["unreleased_charges"] = list(self.unreleased_charges)
        return out


class _Replay:
    """Walks the entries in order, collecting problems (first broken entry first)."""

    def __init__(self) -> None:
        self.problems: list[tuple[int, str]] = []
        self.period: str | None = None
        self.cap = 0.0
        self.delta = 0.0
        self.totals = EventTotals()
        self.spent = 0.0
        self.open_charges: dict[int, bool] = {}

    def fail(self, entry_id: int, why: str) -> None:
        self.problems.append((entry_id, f"entry {entry_id}: {why}"))

    def step(self, position: int, prev_hash: str, e: LedgerEntry) -> None:
        if e.entry_id != position:
            self.fail(e.entry_id, f"found at position {position}: an entry was deleted, "
                                  "inserted or renumbered before it")
        if e.prev_hash != prev_hash:
            self.fail(e.entry_id, "prev_hash does not match the previous entry (chain broken: "
                                  "edited, deleted, inserted or reordered entries)")
        if chain_hash(e.prev_hash, e.hashed_fields()) != e.entry_hash:
            self.fail(e.entry_id, "entry_hash does not match its contents (edited)")
        try:
            self._replay(e)
        except (ValueError, KeyError, TypeError) as exc:
            self.fail(e.entry_id, f"unreadable parameters ({exc})")

    def _replay(self, e: LedgerEntry) -> None:
        if e.kind == "open_period":
            self.period, self.cap, self.delta = e.period, e.cap_epsilon, e.delta
            self.totals, self.spent = EventTotals(), 0.0
        elif e.kind == "charge":
            self.totals.add(e.event())
            self.spent = self.totals.epsilon(self.delta)
            if self.spent > self.cap:
                self.fail(e.entry_id, f"composed ε {self.spent} exceeds the cap {self.cap}")
            self.open_charges[e.entry_id] = True
        elif e.kind == "released":
            if not self.open_charges.pop(e.ref_entry or -1, False):
                self.fail(e.entry_id, f"releases entry {e.ref_entry}, which is not an earlier "
                                      "unreleased charge")
        else:
            self.fail(e.entry_id, f"unknown kind {e.kind!r}")
        if self.period is None or e.period != self.period:
            self.fail(e.entry_id, f"period {e.period!r} was never opened")
        if (e.cap_epsilon, e.delta) != (self.cap, self.delta):
            self.fail(e.entry_id, "cap/δ differ from its period's open_period entry")
        if abs(e.spent_epsilon - self.spent) > EPS_GRID / 2:
            self.fail(e.entry_id, f"recorded spent ε {e.spent_epsilon} but the accountant "
                                  f"replays {self.spent}")


def _check_head(replay: _Replay, head: LedgerHead, entries: list[LedgerEntry]) -> list[str]:
    last = entries[-1] if entries else None
    expected = {"n_entries": len(entries),
                "last_entry_hash": last.entry_hash if last else GENESIS_HASH,
                "spent_epsilon": replay.spent, "period": replay.period,
                "cap_epsilon": replay.cap, "delta": replay.delta}
    out = []
    for key, want in expected.items():
        got = getattr(head, key)
        same = abs(got - want) <= EPS_GRID / 2 if isinstance(want, float) else got == want
        if not same:
            out.append(f"totals: head {key} is {got!r} but the entries give {want!r} "
                       "(entries deleted or appended without the head, or head edited)")
    return out


def verify_ledger(path: str | Path) -> VerifyReport:
    """Recompute everything from the rows; never raises on a broken ledger, reports it."""
    ledger = Ledger(path)  # raises UnknownOwner for a missing or foreign file
    try:
        with _connect(ledger.path) as conn:
            head, entries = _read_head(conn), _read_entries(conn)
    except sqlite3.DatabaseError as exc:
        return VerifyReport(ok=False, n_entries=0, first_broken_entry=None,
                            problems=(f"unreadable ledger: {exc}",), spent_epsilon=0.0)
    replay, prev = _Replay(), GENESIS_HASH
    for position, entry in enumerate(entries, start=1):
        replay.step(position, prev, entry)
        prev = entry.entry_hash
    problems = [p for _, p in replay.problems] + _check_head(replay, head, entries)
    first = replay.problems[0][0] if replay.problems else None
    if first is None and problems:
        # Only the totals disagree: name the entry the head claims but the table lacks, or
        # the last entry when the table holds more than the head recorded.
        first = len(entries) + 1 if head.n_entries > len(entries) else max(1, len(entries))
    return VerifyReport(ok=not problems, n_entries=len(entries), first_broken_entry=first,
                        problems=tuple(problems), spent_epsilon=replay.spent,
                        unreleased_charges=tuple(sorted(replay.open_charges)))


def export_json(path: str | Path) -> str:
    """Head, entries and the verify report as one JSON document (no pseudonym key)."""
    ledger = Ledger(path)
    head = ledger.head()
    doc = {"owner": ledger.owner, "owner_pseudonym": ledger.pseudonym,
           "merchant_type": ledger.merchant_type, "head": asdict(head),
           "verify": verify_ledger(path).to_dict(),
           "entries": [e.to_dict() for e in ledger.entries()]}
    return json.dumps(doc, indent=2, ensure_ascii=False)


def export_csv(path: str | Path) -> str:
    """Entries as CSV, one row per entry, columns as in the schema."""
    entries = Ledger(path).entries()
    buf = io.StringIO()
    cols = list(asdict(entries[0])) if entries else []
    writer = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    writer.writeheader()
    for e in entries:
        writer.writerow(asdict(e))
    return buf.getvalue()
