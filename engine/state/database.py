"""The state store's connection: a SQLite file (on ``sqlite3`` directly) or a SQLAlchemy
URL, opened on first use, tables created on the first write, errors named by the store's
public URL. The store's statements are SQL text with ``:name`` parameters, the same on
every database (see :class:`Session`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from engine.errors import FatalError
from engine.ledger.sqlite import SqlitePool, sqlite_target, use_wal
from engine.state.tables import DEFAULT_PREFIX, TABLE_NAMES, sqlite_ddl

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.engine import URL, Connection

    from engine.state.tables import StateTables

__all__ = ["Session", "StateDatabase", "StateError", "now_iso"]

_T = TypeVar("_T")
#: pg_advisory_xact_lock id serialising table creation (concurrent CREATE ... IF NOT EXISTS
#: races in PostgreSQL's catalog)
_CREATE_LOCK_ID = 0x5747_4154


class StateError(FatalError):
    """The state store cannot be opened, read or written; names the store, never a password."""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Session(Protocol):
    """The store's SQL on one connection, in one transaction: ``:name`` parameters,
    identifiers as :meth:`StateDatabase.quote` writes them."""

    def run(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement; how many rows it changed."""

    def many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None: ...

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]: ...

    def insert_new(self, sql: str, values: Mapping[str, Any], key: str) -> bool:
        """``sql``, a plain INSERT, doing nothing when a row with its key is there: True
        when this row went in."""


class _LiteSession:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def run(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        return self.conn.execute(sql, params or {}).rowcount

    def many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.conn.executemany(sql, rows)

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params or {}).fetchall()

    def insert_new(self, sql: str, values: Mapping[str, Any], key: str) -> bool:
        return self.run(f"{sql} ON CONFLICT DO NOTHING", values) == 1


class _AlchemySession:
    """On a database other than SQLite (which :class:`_LiteSession` serves)."""

    def __init__(self, conn: Connection, dialect: str) -> None:
        self.conn = conn
        self.dialect = dialect

    def run(self, sql: str, params: Mapping[str, Any] | None = None) -> int:
        from sqlalchemy import text

        return int(self.conn.execute(text(sql), dict(params or {})).rowcount)

    def many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        from sqlalchemy import text

        self.conn.execute(text(sql), [dict(row) for row in rows])

    def rows(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        from sqlalchemy import text

        return [tuple(row) for row in self.conn.execute(text(sql), dict(params or {}))]

    def insert_new(self, sql: str, values: Mapping[str, Any], key: str) -> bool:
        from sqlalchemy import text
        from sqlalchemy.exc import IntegrityError

        if self.dialect == "postgresql":
            # the driver's rowcount of an INSERT is not to be trusted here: RETURNING is
            found = self.conn.execute(text(f"{sql} ON CONFLICT DO NOTHING RETURNING {key}"), values)
            return found.first() is not None
        try:
            with self.conn.begin_nested():
                self.run(sql, values)
        except IntegrityError:
            return False
        return True


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
        file = target if isinstance(target, Path) else sqlite_target(target)
        self._url: URL | None = None
        #: the SQLite file (None for other databases and in-memory SQLite)
        self.path: Path | None = file
        if file is not None:
            self.dialect = "sqlite"
        else:
            self._url = _parse(str(target))
            self.dialect = self._url.get_backend_name()
            database = self._url.database if self.dialect == "sqlite" else None
            memory = not database or database == ":memory:" or database.startswith("file:")
            self.path = None if memory or database is None else Path(database)
        self.read_only = read_only
        self.schema = schema if self.dialect != "sqlite" else None
        self.prefix = prefix
        self._tables: StateTables | None = None
        self._names: dict[str, str] | None = None
        self._engine: Engine | None = None
        self._pool: SqlitePool | None = None
        self._created = False

    @property
    def url(self) -> URL:
        if self._url is None:
            self._url = _parse(f"sqlite:///{self.path}")
        return self._url

    @property
    def tables(self) -> StateTables:
        """The tables as SQLAlchemy objects (loads SQLAlchemy)."""
        if self._tables is None:
            from engine.state.tables import StateTables

            self._tables = StateTables.build(self.prefix, self.schema)
        return self._tables

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

    # -- names --------------------------------------------------------------------------
    def quote(self, name: str) -> str:
        """An identifier as this database quotes it."""
        if self.dialect == "sqlite":
            return f'"{name}"'
        engine = self._open()
        assert engine is not None  # only a read-only SQLite store may be missing
        return str(engine.dialect.identifier_preparer.quote(name))

    def table(self, name: str) -> str:
        """A state table's name for SQL text (``cursors``, ``leases``, ...): prefixed,
        quoted, schema-qualified."""
        if self._names is None:
            schema = f"{self.quote(self.schema)}." if self.schema else ""
            self._names = {
                short: f"{schema}{self.quote(self.prefix + full)}"
                for short, full in TABLE_NAMES.items()
            }
        return self._names[name]

    def insert_sql(self, table: str, columns: Sequence[str]) -> str:
        names = ", ".join(self.quote(c) for c in columns)
        params = ", ".join(f":{c}" for c in columns)
        return f"INSERT INTO {self.table(table)} ({names}) VALUES ({params})"

    # -- connections --------------------------------------------------------------------
    def _sqlite(self) -> SqlitePool | None:
        """The pool of a SQLite store (None: read-only, and no file yet)."""
        if self._pool is not None:
            return self._pool
        path = self.path
        if path is None:
            self._pool = SqlitePool(_memory_sqlite, shared=True)
        elif self.read_only:
            if not path.is_file():
                return None
            self._pool = SqlitePool(_read_only_sqlite(path))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._pool = SqlitePool(
                lambda: _wal(sqlite3.connect(path, timeout=60, check_same_thread=False))
            )
        return self._pool

    def _open(self) -> Engine | None:
        """SQLAlchemy's engine, for other databases, for creating tables, and for
        :mod:`engine.partitions.board`."""
        if self._engine is not None:
            return self._engine
        from sqlalchemy import create_engine, event
        from sqlalchemy.pool import StaticPool

        url, kwargs = self.url, dict[str, Any]()
        if self.dialect == "postgresql" and url.drivername == "postgresql":
            url = url.set(drivername="postgresql+psycopg")
        if self.dialect == "sqlite":
            pool = self._sqlite()
            if pool is None:
                return None
            if self.path is None:
                kwargs["poolclass"] = StaticPool
                kwargs["creator"] = pool.shared_connection
            elif self.read_only:
                kwargs["creator"] = _read_only_sqlite(self.path)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                kwargs["connect_args"] = {"timeout": 60, "check_same_thread": False}
        engine = create_engine(url, **kwargs)
        if self.dialect == "sqlite" and self.path is not None and not self.read_only:
            event.listen(engine, "connect", lambda conn, _record: _wal(conn))
        self._engine = engine
        return engine

    def _ensure_created(self) -> None:
        if self.read_only:
            raise StateError(f"the state store {self.where} is open read-only")
        if self._created:
            return
        if self.dialect == "sqlite" and self._sqlite_create():
            self._created = True
            return
        from sqlalchemy.exc import OperationalError, SQLAlchemyError

        engine = self._open()
        assert engine is not None
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

    def _sqlite_create(self) -> bool:
        """Create a SQLite store's missing tables on ``sqlite3``; False when SQLAlchemy
        must (a workspace's older ``state`` table to adopt)."""
        pool = self._sqlite()
        assert pool is not None
        wanted = {self.prefix + full for full in TABLE_NAMES.values()}
        try:
            with pool.connection() as conn:
                found = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
                if "state" in found:
                    return False
                if not wanted <= found:
                    conn.execute("BEGIN IMMEDIATE")
                    for statement in sqlite_ddl(self.prefix):
                        conn.execute(statement)
                    conn.commit()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        return True

    def _writer(self) -> Engine:
        self._ensure_created()
        engine = self._open()
        assert engine is not None
        return engine

    def _create(self, engine: Engine) -> None:
        from sqlalchemy import func, select

        with engine.begin() as conn:
            if self.dialect == "postgresql":
                conn.execute(select(func.pg_advisory_xact_lock(_CREATE_LOCK_ID)))
                if self.schema:
                    quoted = conn.dialect.identifier_preparer.quote_schema(self.schema)
                    conn.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
            self.tables.metadata.create_all(conn, checkfirst=True)
            if self.dialect == "sqlite":
                _adopt_legacy_cursors(conn, self.tables)

    # -- the store's own statements -------------------------------------------------------
    @contextmanager
    def session(self) -> Iterator[Session]:
        """A write transaction, committed when the block ends."""
        self._ensure_created()
        if self.dialect == "sqlite":
            pool = self._sqlite()
            assert pool is not None
            try:
                with pool.connection() as conn:
                    yield _LiteSession(conn)
                    conn.commit()
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            return
        with self._tx() as conn:
            yield _AlchemySession(conn, self.dialect)

    def reading(self, work: Callable[[Session], _T], empty: _T) -> _T:
        """``work`` on a connection; ``empty`` when a read-only store has no such table yet."""
        if self.dialect != "sqlite":
            return self._read(lambda conn: work(_AlchemySession(conn, self.dialect)), empty)
        if not self.read_only:
            self._ensure_created()
        pool = self._sqlite()
        if pool is None:
            return empty
        try:
            with pool.connection() as conn:
                return work(_LiteSession(conn))
        except sqlite3.Error as exc:
            if self.read_only and not self._sqlite_has_tables(pool):
                return empty
            raise self._error(exc) from exc

    def _sqlite_has_tables(self, pool: SqlitePool) -> bool:
        try:
            with pool.connection() as conn:
                query = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
                name = self.prefix + TABLE_NAMES["cursors"]
                return conn.execute(query, (name,)).fetchone() is not None
        except sqlite3.Error:
            return False

    # -- SQLAlchemy connections (engine.partitions.board) ---------------------------------
    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        """A write transaction, committed when the block ends."""
        from sqlalchemy.exc import SQLAlchemyError

        engine = self._writer()
        try:
            with engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise self._error(exc) from exc

    def _read(self, work: Callable[[Connection], _T], empty: _T) -> _T:
        """``work`` on a connection; ``empty`` when a read-only store has no such table yet."""
        from sqlalchemy.exc import SQLAlchemyError

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
        from sqlalchemy.exc import SQLAlchemyError

        try:
            name = self.prefix + TABLE_NAMES["cursors"]
            return inspect(engine).has_table(name, schema=self.schema)
        except SQLAlchemyError:
            return False

    def _error(self, exc: Exception) -> StateError:
        reason = getattr(exc, "orig", None) or exc
        text = str(reason).strip().splitlines()[0] if str(reason).strip() else ""
        return StateError(f"state store {self.where}: {type(reason).__name__}: {text}")

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def forked(self) -> None:
        """In a forked child: open new connections, leaving the parent's to the parent."""
        if self._engine is not None:
            self._engine.dispose(close=False)
        if self._pool is not None:
            self._pool.forked()

    def __enter__(self) -> StateDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse(url: str) -> URL:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise StateError(
            "[state] store is not a valid SQLAlchemy URL (dialect+driver://...)"
        ) from None


def _memory_sqlite() -> sqlite3.Connection:
    # connections are handed between threads, one at a time
    return sqlite3.connect(":memory:", check_same_thread=False)


def _read_only_sqlite(path: Path) -> Callable[[], sqlite3.Connection]:
    def connect() -> sqlite3.Connection:
        # without a write-ahead log (no writer at work) ``immutable`` reads the file as it
        # is; ``mode=ro`` alone would leave -wal and -shm files behind
        wal = path.with_name(path.name + "-wal").exists()
        uri = f"{path.resolve().as_uri()}?{'mode=ro' if wal else 'immutable=1'}"
        return sqlite3.connect(uri, uri=True, check_same_thread=False)

    return connect


def _wal(connection: sqlite3.Connection) -> sqlite3.Connection:
    """WAL for readers beside the writer; ``synchronous=NORMAL``: a commit survives a crash
    of the process without waiting for the disk. Power lost just after a cursor commit can
    only move the cursor back, so rows are read again, never skipped (at least once)."""
    cursor = connection.cursor()
    try:
        use_wal(cursor)
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
    return connection


def _adopt_legacy_cursors(conn: Connection, tables: StateTables) -> None:
    """Move the cursors of a workspace's older ``state`` table into the cursor table."""
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

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
        conn.execute(sqlite_insert(tables.cursors).values(values).on_conflict_do_nothing())
    conn.exec_driver_sql("DROP TABLE state")
