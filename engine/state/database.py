"""The state store's connection: a SQLAlchemy URL (or a SQLite file), opened on first use,
tables created on the first write, errors named by the store's public URL."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, func, insert, select
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from engine.errors import FatalError
from engine.state.tables import DEFAULT_PREFIX, StateTables

__all__ = ["StateDatabase", "StateError", "now_iso"]

_T = TypeVar("_T")
#: tries at switching a new SQLite store to write-ahead logging
_WAL_ATTEMPTS = 50
#: pg_advisory_xact_lock id serialising table creation (concurrent CREATE ... IF NOT EXISTS
#: races in PostgreSQL's catalog)
_CREATE_LOCK_ID = 0x5747_4154


class StateError(FatalError):
    """The state store cannot be opened, read or written; names the store, never a password."""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class StateDatabase:
    """Where the state lives: ``target`` is a SQLite file or a SQLAlchemy URL.

    ``read_only`` (dry runs, ``engine state show``, ``engine runs``): reads see what is saved,
    writes raise, and nothing is created, not even a SQLite file when there is none yet.
    """

    def __init__(
        self,
        target: Path | str,
        *,
        read_only: bool = False,
        schema: str | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.url = _parse(f"sqlite:///{target}" if isinstance(target, Path) else target)
        self.dialect = self.url.get_backend_name()
        database = self.url.database if self.dialect == "sqlite" else None
        memory = not database or database == ":memory:" or database.startswith("file:")
        #: the SQLite file (None for other databases)
        self.path: Path | None = None if memory or database is None else Path(database)
        self.read_only = read_only
        self.schema = schema if self.dialect != "sqlite" else None
        self.tables = StateTables.build(prefix, self.schema)
        self._engine: Engine | None = None
        self._created = False

    @property
    def where(self) -> str:
        """The store for messages: a SQLite file's path, else the URL without its password."""
        if self.path is not None:
            return str(self.path)
        where = self.url.render_as_string(hide_password=True)
        return f"{where} (schema {self.schema})" if self.schema else where

    def exists(self) -> bool:
        """Whether there is a store to read (a SQLite file may not have been made yet)."""
        return self.path is None or self.path.is_file()

    # -- connections --------------------------------------------------------------------
    def _open(self) -> Engine | None:
        if self._engine is not None:
            return self._engine
        url, kwargs = self.url, dict[str, Any]()
        if self.dialect == "postgresql" and url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        if self.dialect == "sqlite":
            if self.path is None:
                kwargs["poolclass"] = StaticPool
                kwargs["connect_args"] = {"check_same_thread": False}
            elif self.read_only:
                if not self.path.is_file():
                    return None
                kwargs["creator"] = _read_only_sqlite(self.path)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
        engine = create_engine(url, **kwargs)
        if self.dialect == "sqlite" and self.path is not None and not self.read_only:
            event.listen(engine, "connect", _wal)
        self._engine = engine
        return engine

    def _writer(self) -> Engine:
        if self.read_only:
            raise StateError(f"the state store {self.where} is open read-only")
        engine = self._open()
        assert engine is not None
        if not self._created:
            for attempt in range(5):
                try:
                    self._create(engine)
                    break
                except OperationalError as exc:
                    # SQLite: another process created a table between the check and the
                    # CREATE; the next round sees it
                    if attempt == 4 or "already exists" not in str(exc):
                        raise self._error(exc) from exc
                except SQLAlchemyError as exc:
                    raise self._error(exc) from exc
            self._created = True
        return engine

    def _create(self, engine: Engine) -> None:
        with engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_CREATE_LOCK_ID)))
                if self.schema:
                    quoted = conn.dialect.identifier_preparer.quote_schema(self.schema)
                    conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
            self.tables.metadata.create_all(conn, checkfirst=True)
            if self.dialect == "sqlite":
                _adopt_legacy_cursors(conn, self.tables)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A write transaction, committed when the block ends."""
        engine = self._writer()
        try:
            with engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise self._error(exc) from exc

    def _read(self, work: Callable[[Connection], _T], empty: _T) -> _T:
        """``work`` on a connection; ``empty`` when a read-only store has no such table yet."""
        engine = self._writer() if not self.read_only else self._open()
        if engine is None:
            return empty
        try:
            with engine.connect() as conn:
                return work(conn)
        except SQLAlchemyError as exc:
            if self.read_only and not self._has_tables(engine):
                return empty
            raise self._error(exc) from exc

    def _has_tables(self, engine: Engine) -> bool:
        from sqlalchemy import inspect

        try:
            return inspect(engine).has_table(self.tables.cursors.name, schema=self.schema)
        except SQLAlchemyError:
            return False

    def _guard(self, work: Callable[[], _T]) -> _T:
        try:
            return work()
        except SQLAlchemyError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: SQLAlchemyError) -> StateError:
        reason = getattr(exc, "orig", None) or exc
        text = str(reason).strip().splitlines()[0] if str(reason).strip() else ""
        return StateError(f"state store {self.where}: {type(reason).__name__}: {text}")

    def _insert_new(self, conn: Connection, table: Any, values: dict[str, Any]) -> bool:
        """INSERT .. ON CONFLICT DO NOTHING: True when this row went in, False when one with
        its key was there already."""
        if self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            # the driver's rowcount of an INSERT is not to be trusted here: RETURNING is
            key = next(iter(table.primary_key.columns))
            pg = pg_insert(table).values(values).on_conflict_do_nothing().returning(key)
            return conn.execute(pg).first() is not None
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            lite = sqlite_insert(table).values(values).on_conflict_do_nothing()
            return conn.execute(lite).rowcount == 1
        try:
            with conn.begin_nested():
                conn.execute(insert(table).values(values))
        except IntegrityError:
            return False
        return True

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def forked(self) -> None:
        """In a forked child: open new connections, leaving the parent's to the parent."""
        if self._engine is not None:
            self._engine.dispose(close=False)

    def __enter__(self) -> StateDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse(url: str) -> URL:
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise StateError(
            "[state] store is not a valid SQLAlchemy URL (dialect+driver://...)"
        ) from None


def _read_only_sqlite(path: Path) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        # without a write-ahead log (no writer at work) ``immutable`` reads the file as it
        # is; ``mode=ro`` alone would leave -wal and -shm files behind
        wal = path.with_name(path.name + "-wal").exists()
        uri = f"{path.resolve().as_uri()}?{'mode=ro' if wal else 'immutable=1'}"
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    return connect


def _wal(dbapi_connection: Any, _record: Any) -> None:
    """WAL for readers beside the writer; ``synchronous=NORMAL``: a commit survives a crash
    of the process without waiting for the disk. Power lost just after a cursor commit can
    only move the cursor back, so rows are read again, never skipped (at least once)."""
    cursor = dbapi_connection.cursor()
    try:
        # the mode is kept in the file: only its first connections switch it, and a switch
        # waits for no busy handler, so connections opened at once take turns here
        for attempt in range(_WAL_ATTEMPTS):
            try:
                if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    cursor.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == _WAL_ATTEMPTS - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _adopt_legacy_cursors(conn: Connection, tables: StateTables) -> None:
    """Move the cursors of a workspace's older ``state`` table into the cursor table."""
    legacy = conn.exec_driver_sql(
        "SELECT name FROM sqlite_master WHERE type='table' AND name='state'"
    ).fetchone()
    if legacy is None:
        return
    rows = conn.exec_driver_sql("SELECT pipeline, component, key, value FROM state").fetchall()
    stamp = now_iso()
    for pipeline, component, key, value in rows:
        values = {
            "pipeline": pipeline,
            "component": component,
            "key": key,
            "value": value,
            "version": 1,
            "updated_at": stamp,
        }
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(tables.cursors).values(values).on_conflict_do_nothing())
    conn.exec_driver_sql("DROP TABLE state")
