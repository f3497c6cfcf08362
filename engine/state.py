"""Values kept between runs (incremental cursors) and run leases, in the workspace's SQLite
state database."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import astuple, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from engine.errors import FatalError

__all__ = ["Lease", "StateStore"]


@dataclass(frozen=True)
class Lease:
    """Who runs a pipeline now: the row of the lease table (see engine.runtime.lease)."""

    pipeline: str
    run_id: str
    host: str
    pid: int
    since: str  # ISO 8601 UTC, when the run took the lease
    expires: float  # seconds since the epoch; renewed while the run goes on


class StateStore:
    """A small key-value store per (pipeline, component); values are JSON.

    ``read_only`` (dry runs): values are read as saved, ``set`` keeps nothing, and no file is
    created, not even the database when there is none yet.
    """

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection | None:
        if self._conn is None and self.read_only:
            if not self.path.is_file():
                return None
            # without a write-ahead log (no writer at work) ``immutable`` reads the file as it
            # is; ``mode=ro`` alone would leave -wal and -shm files behind
            wal = self.path.with_name(self.path.name + "-wal").exists()
            uri = f"{self.path.resolve().as_uri()}?{'mode=ro' if wal else 'immutable=1'}"
            self._conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS state (pipeline TEXT, component TEXT, key TEXT, "
                "value TEXT, updated_at TEXT DEFAULT CURRENT_TIMESTAMP, "
                "PRIMARY KEY (pipeline, component, key))"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS leases (pipeline TEXT PRIMARY KEY, run_id TEXT, "
                "host TEXT, pid INTEGER, since TEXT, expires REAL)"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schedule_claims (pipeline TEXT, fire_time TEXT, "
                "holder TEXT, claimed_at TEXT DEFAULT CURRENT_TIMESTAMP, "
                "PRIMARY KEY (pipeline, fire_time))"
            )
            self._conn = conn
        return self._conn

    def _writer(self) -> sqlite3.Connection:
        if self.read_only:
            raise FatalError(f"state store {self.path} is open read-only")
        db = self._db()
        assert db is not None
        return db

    def get(self, pipeline: str, component: str, key: str, default: Any = None) -> Any:
        with self._lock:
            db = self._db()
            if db is None:
                return default
            try:
                row = db.execute(
                    "SELECT value FROM state WHERE pipeline=? AND component=? AND key=?",
                    (pipeline, component, key),
                ).fetchone()
            except sqlite3.OperationalError:
                if not self.read_only:
                    raise
                row = None  # a database without the state table yet
        return json.loads(row[0]) if row else default

    def set(self, pipeline: str, component: str, key: str, value: Any) -> None:
        if self.read_only:
            return
        with self._lock:
            self._writer().execute(
                "INSERT INTO state (pipeline, component, key, value) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (pipeline, component, key) DO UPDATE SET value=excluded.value, "
                "updated_at=CURRENT_TIMESTAMP",
                (pipeline, component, key, json.dumps(value)),
            )

    def delete(self, pipeline: str, component: str, key: str) -> None:
        if self.read_only:
            return
        with self._lock:
            self._writer().execute(
                "DELETE FROM state WHERE pipeline=? AND component=? AND key=?",
                (pipeline, component, key),
            )

    # --- leases: each change is one statement, atomic between processes ---------------

    def lease(self, pipeline: str) -> Lease | None:
        found = [lease for lease in self.leases() if lease.pipeline == pipeline]
        return found[0] if found else None

    def leases(self) -> list[Lease]:
        with self._lock:
            db = self._db()
            if db is None:
                return []
            try:
                rows = db.execute(
                    "SELECT pipeline, run_id, host, pid, since, expires FROM leases"
                ).fetchall()
            except sqlite3.OperationalError:
                if not self.read_only:
                    raise
                rows = []  # a database without the lease table yet
        return [Lease(*row) for row in rows]

    def take_lease(self, lease: Lease, *, replacing: Lease | None = None) -> bool:
        """Write ``lease`` if the pipeline has none (or still has exactly ``replacing``)."""
        with self._lock:
            db = self._writer()
            if replacing is None:
                cursor = db.execute(
                    "INSERT INTO leases (pipeline, run_id, host, pid, since, expires) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (pipeline) DO NOTHING",
                    astuple(lease),
                )
            else:
                cursor = db.execute(
                    "UPDATE leases SET run_id=?, host=?, pid=?, since=?, expires=? "
                    "WHERE pipeline=? AND run_id=? AND expires=?",
                    (*astuple(lease)[1:], lease.pipeline, replacing.run_id, replacing.expires),
                )
            return cursor.rowcount == 1

    def renew_lease(self, pipeline: str, run_id: str, expires: float) -> bool:
        """Move the expiry of ``run_id``'s lease; False when it no longer holds it."""
        with self._lock:
            cursor = self._writer().execute(
                "UPDATE leases SET expires=? WHERE pipeline=? AND run_id=?",
                (expires, pipeline, run_id),
            )
            return cursor.rowcount == 1

    def release_lease(self, pipeline: str, run_id: str) -> None:
        with self._lock:
            self._writer().execute(
                "DELETE FROM leases WHERE pipeline=? AND run_id=?", (pipeline, run_id)
            )

    # --- schedule claims: one holder per fire time ---------------------------------------

    def claim_fire(self, pipeline: str, fire_time: datetime, holder: str) -> bool:
        """Claim ``fire_time`` of ``pipeline`` for ``holder``; False when it was claimed."""
        with self._lock:
            cursor = self._writer().execute(
                "INSERT INTO schedule_claims (pipeline, fire_time, holder) VALUES (?, ?, ?) "
                "ON CONFLICT (pipeline, fire_time) DO NOTHING",
                (pipeline, _utc(fire_time), holder),
            )
            return cursor.rowcount == 1

    def last_fire(self, pipeline: str) -> datetime | None:
        """The newest fire time of ``pipeline`` anyone claimed."""
        with self._lock:
            db = self._db()
            if db is None:
                return None
            row = db.execute(
                "SELECT MAX(fire_time) FROM schedule_claims WHERE pipeline=?", (pipeline,)
            ).fetchone()
        return datetime.fromisoformat(row[0]) if row and row[0] else None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _utc(moment: datetime) -> str:
    """A fire time as sortable text: ISO 8601 in UTC, microseconds always written."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")
