"""The engine's own SQLite databases (the state store, the audit store) on ``sqlite3``
directly: a run of a pipeline whose stores are SQLite files never loads SQLAlchemy, which
would cost it a fifth of its start-up and some 26 MB. SQLAlchemy still creates and
migrates their tables, and serves the other databases."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["SqlitePool", "limit_sql", "sqlite_target", "use_wal"]

#: idle connections kept for reuse; more are closed when given back
_IDLE = 4
#: tries at switching a database to WAL while other connections switch it (about 13 s)
_WAL_ATTEMPTS = 50


def use_wal(cursor: sqlite3.Cursor) -> None:
    """Put the database in WAL mode. The mode is kept in the file: only its first
    connections switch it, and a switch waits for no busy handler (SQLite returns "locked"
    at once rather than risk a deadlock), so connections opened at once take turns here."""
    for attempt in range(_WAL_ATTEMPTS):
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == _WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.01 * (attempt + 1))


def limit_sql(limit: int | None) -> str:
    """A query's ``LIMIT`` clause (with its leading space), or nothing for no limit."""
    return f" LIMIT {int(limit)}" if limit is not None else ""


def sqlite_target(url: str) -> Path | None:
    """The file of a plain ``sqlite:///path`` URL (no query, no URI filename, nothing
    %-escaped), else None: only such a URL is opened without SQLAlchemy's URL parser."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) or "?" in url or "%" in url:
        return None
    path = url[len(prefix) :]
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(path)


class SqlitePool:
    """Connections to one SQLite database, each used by one thread at a time.

    ``shared``: one connection for everyone, taken in turns (an in-memory database, which
    each connection would otherwise see empty)."""

    def __init__(self, connect: Callable[[], sqlite3.Connection], *, shared: bool = False) -> None:
        self._connect = connect
        self._shared = shared
        self._idle: list[sqlite3.Connection] = []
        self._lock = threading.RLock() if shared else threading.Lock()
        #: connections a forked child inherited: never used or closed by it
        self._inherited: list[sqlite3.Connection] = []

    def shared_connection(self) -> sqlite3.Connection:
        """The one connection of a shared pool (for SQLAlchemy's ``StaticPool``)."""
        with self._lock:
            if not self._idle:
                self._idle.append(self._connect())
            return self._idle[0]

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """A connection for this thread until the block ends; a transaction the block left
        open is rolled back before anyone else gets it."""
        if self._shared:
            with self._lock:
                one = self.shared_connection()
                try:
                    yield one
                finally:
                    _settle(one)
            return
        with self._lock:
            found = self._idle.pop() if self._idle else None
        conn = found if found is not None else self._connect()
        kept = False
        try:
            yield conn
        finally:
            if _settle(conn):
                with self._lock:
                    if len(self._idle) < _IDLE:
                        self._idle.append(conn)
                        kept = True
            if not kept:
                conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def forked(self) -> None:
        """In a forked child: leave the parent's connections to the parent."""
        with self._lock:
            self._inherited.extend(self._idle)
            self._idle = []


def _settle(conn: sqlite3.Connection) -> bool:
    """Roll back what was left open; False when the connection is no longer usable."""
    try:
        if conn.in_transaction:
            conn.rollback()
    except sqlite3.Error:
        return False
    return True
