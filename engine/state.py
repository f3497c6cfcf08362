"""Values kept between runs (incremental cursors), in the workspace's SQLite state database."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path
from typing import Any

__all__ = ["StateStore"]


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
            self._conn = conn
        return self._conn

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
            db = self._db()
            assert db is not None
            db.execute(
                "INSERT INTO state (pipeline, component, key, value) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (pipeline, component, key) DO UPDATE SET value=excluded.value, "
                "updated_at=CURRENT_TIMESTAMP",
                (pipeline, component, key, json.dumps(value)),
            )

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
