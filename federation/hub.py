"""The hub's catalogue: what each owner released and contributed, in SQLite.

The catalogue stores only what crossed the boundary: ``Release`` objects (verified by their
content hash on the way in) indexed by owner pseudonym, merchant type, regions, period and
privacy loss; the owners' public descriptions; and one row per owner per training round
(took part or not, ε charged, the update's hash). Cohort queries select releases for the
twin synthesis by merchant type, region and period.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from federation.node import ModelUpdate, OwnerDescription
from privacy.release import Release

__all__ = ["CATALOGUE_SQL", "Hub"]

CATALOGUE_SQL: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS releases (
        content_hash CHAR(64) PRIMARY KEY, release_id TEXT NOT NULL, owner TEXT NOT NULL,
        merchant_type TEXT NOT NULL, regions TEXT NOT NULL, period TEXT NOT NULL,
        epsilon DOUBLE PRECISION NOT NULL, delta DOUBLE PRECISION NOT NULL,
        created_at TEXT NOT NULL, body TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS release_regions (
        content_hash CHAR(64) NOT NULL, region TEXT NOT NULL,
        PRIMARY KEY (content_hash, region))""",
    """CREATE TABLE IF NOT EXISTS owners (
        pseudonym TEXT PRIMARY KEY, merchant_type TEXT NOT NULL, regions TEXT NOT NULL,
        size_bucket TEXT NOT NULL, period TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS model_rounds (
        run_id TEXT NOT NULL, round_no INTEGER NOT NULL, owner TEXT NOT NULL,
        took_part INTEGER NOT NULL, round_epsilon DOUBLE PRECISION NOT NULL,
        spent_epsilon DOUBLE PRECISION NOT NULL, digest TEXT NOT NULL, reason TEXT NOT NULL,
        PRIMARY KEY (run_id, round_no, owner))""",
)


class Hub:
    """The catalogue at ``path`` (``:memory:`` is not supported: one connection per call)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._conn() as c:
            for stmt in CATALOGUE_SQL:
                c.execute(stmt)

    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0)
        try:
            with conn:  # commit on success, roll back on error
                yield conn
        finally:
            conn.close()

    # -- what arrives -----------------------------------------------------------------------
    def register_owner(self, d: OwnerDescription) -> None:
        with self._conn() as c:
            c.execute("INSERT OR REPLACE INTO owners VALUES (?, ?, ?, ?, ?)",
                      (d.pseudonym, d.merchant_type, json.dumps(list(d.regions)),
                       d.size_bucket, d.period))

    def owners(self) -> list[OwnerDescription]:
        with self._conn() as c:
            rows = c.execute("SELECT pseudonym, merchant_type, regions, size_bucket, period "
                             "FROM owners ORDER BY pseudonym").fetchall()
        return [OwnerDescription(pseudonym=p, merchant_type=m, regions=tuple(json.loads(r)),
                                 size_bucket=s, period=per) for p, m, r, s, per in rows]

    def add_release(self, release: Release) -> bool:
        """Catalogue a release (re-verifying its hash); False if it was already there."""
        checked = Release.from_json(release.to_json())
        loss = checked.privacy_loss
        with self._conn() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO releases VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (checked.content_hash, checked.release_id, checked.owner, checked.merchant_type,
                 json.dumps(list(checked.regions)), checked.period,
                 float(loss.get("epsilon", 0.0)), float(loss.get("delta", 0.0)),
                 checked.created_at, checked.to_json()))
            c.executemany("INSERT OR IGNORE INTO release_regions VALUES (?, ?)",
                          [(checked.content_hash, r) for r in checked.regions])
        return cur.rowcount == 1

    def record_round(self, updates: Iterable[ModelUpdate]) -> None:
        with self._conn() as c:
            c.executemany(
                "INSERT OR REPLACE INTO model_rounds VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(u.run_id, u.round_no, u.owner, int(u.took_part), u.round_epsilon,
                  u.spent_epsilon, u.digest, u.reason) for u in updates])

    # -- cohort queries ---------------------------------------------------------------------
    def releases(self, *, merchant_types: Sequence[str] | None = None,
                 regions: Sequence[str] | None = None, period: str | None = None,
                 owners: Sequence[str] | None = None) -> list[Release]:
        """Releases matching every given filter (a region filter matches any shared region)."""
        sql, args = "SELECT body FROM releases r WHERE 1=1", []
        for col, values in (("merchant_type", merchant_types), ("owner", owners)):
            if values is not None:
                sql += f" AND r.{col} IN ({','.join('?' * len(values))})"
                args += list(values)
        if period is not None:
            sql += " AND r.period = ?"
            args.append(period)
        if regions is not None:
            sql += (" AND EXISTS (SELECT 1 FROM release_regions g WHERE g.content_hash = "
                    f"r.content_hash AND g.region IN ({','.join('?' * len(regions))}))")
            args += list(regions)
        with self._conn() as c:
            bodies = [b for (b,) in c.execute(sql + " ORDER BY r.created_at, r.content_hash",
                                              args)]
        return [Release.from_json(b) for b in bodies]

    def training_log(self, run_id: str) -> list[dict[str, object]]:
        with self._conn() as c:
            c.row_factory = sqlite3.Row
            rows = c.execute("SELECT * FROM model_rounds WHERE run_id = ? ORDER BY round_no, "
                             "owner", (run_id,)).fetchall()
        return [dict(r) for r in rows]
