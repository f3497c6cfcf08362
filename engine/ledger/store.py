"""The audit store: tables of events and chain heads (SQLite or PostgreSQL; their
SQLAlchemy definitions are in :mod:`engine.ledger.tables`).

Appends are serialised per chain: the chain-head row is locked (SQLite: ``BEGIN
IMMEDIATE``; PostgreSQL: ``SELECT ... FOR UPDATE``) while the next events are numbered,
chained, signed and inserted, so two processes writing one store never fork a chain.
``(producer, seq)`` is the primary key as a second line of defence. Every database
failure becomes :class:`AuditStoreError` naming the store without its password.

A store records its schema version in ``audit_meta``. Opening one for writing migrates an
older store in place under the schema lock; opening one read-only (``create=False``)
writes nothing and reads an older store as it is. A store newer than this code is refused.

Appends and the reads a run makes are SQL sent to the driver as it is, the same text on
both databases: on a SQLite file at the current version, nothing here loads SQLAlchemy.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from engine.ledger.errors import AuditStoreError
from engine.ledger.events import GENESIS_MAC, format_time
from engine.ledger.merkle import CompactRange, leaf_hash
from engine.ledger.schema import (
    EVENTS_TABLE,
    HEADS_TABLE,
    META_TABLE,
    ROW_FIELDS,
    SCHEMA_VERSION,
    SQLITE_DDL,
    VERSION_KEY,
    ChainHead,
    EventFilter,
    PruneAnchor,
    Sealer,
    StoredEvent,
    StoreStats,
    filter_sql,
    frontier_parse,
    frontier_text,
    stored_event,
)
from engine.ledger.sqlite import SqlitePool, limit_sql, sqlite_target, use_wal

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

__all__ = [
    "AuditStore",
    "ChainHead",
    "EventFilter",
    "StoreStats",
    "StoredEvent",
    "default_store_url",
]

_T = TypeVar("_T")
_SCHEMA_LOCK_ID = 0x617564_6974  # "audit", an arbitrary advisory lock key
# A new SQLite store's page size, and how many pages the WAL holds before a checkpoint.
SQLITE_PAGE_SIZE = 16_384
SQLITE_WAL_PAGES = 40 * 1024 * 1024 // SQLITE_PAGE_SIZE

# An append's statements, the same on both databases (``?`` is the driver's placeholder):
# an append per acknowledgement is common, and building them each time would cost more
# than running them.
_HEAD_SQL = f"SELECT seq, mac, frontier FROM {HEADS_TABLE} WHERE producer = ?"
_HEAD_COLUMNS = "producer, seq, mac, frontier, updated_at, pruned_seq, pruned_mac, pruned_frontier"
_NEW_HEAD_SQL = (
    f"INSERT INTO {HEADS_TABLE} ({_HEAD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT DO NOTHING"
)
_HEAD_UPDATE_SQL = (
    f"UPDATE {HEADS_TABLE} SET seq = ?, mac = ?, frontier = ?, updated_at = ? WHERE producer = ?"
)
_HEAD_EVENT_SQL = (
    f"SELECT {', '.join(f'e.{name}' for name in StoredEvent._fields)} FROM {EVENTS_TABLE} e "
    f"JOIN {HEADS_TABLE} h ON h.producer = e.producer WHERE e.producer = ? AND e.seq = h.seq"
)
_EVENT_FIELDS = ", ".join(StoredEvent._fields)
_ROW_VALUES = f"({', '.join('?' * len(ROW_FIELDS))})"
_INSERT_SQL = f"INSERT INTO {EVENTS_TABLE} ({', '.join(ROW_FIELDS)}) VALUES {_ROW_VALUES}"

#: runs a statement on the driver's connection: (sql, parameters) -> its cursor
Execute = Callable[[str, Any], Any]


def default_store_url(workspace: Path) -> str:
    return f"sqlite:///{workspace / 'audit.db'}"


class AuditStore:
    """An audit store at a SQLAlchemy URL; close it when done.

    With ``create`` (the default) the schema is created, or migrated from an older
    version; without it nothing is written and an older store is read as it is.

    A SQLite file is read and appended to on ``sqlite3`` directly; SQLAlchemy is loaded
    only to create or migrate its schema, for the queries behind ``engine audit``, and
    for PostgreSQL.
    """

    def __init__(self, url: str, *, create: bool = True) -> None:
        file = sqlite_target(url)
        self._create = create
        self._lite: SqlitePool | None = None
        self._engine_: Engine | None = None
        self._parsed: Any = None
        if file is not None:
            self.url = url
            self.dialect = "sqlite"
        else:
            from sqlalchemy.engine import make_url
            from sqlalchemy.exc import ArgumentError

            try:
                parsed = make_url(url)
            except ArgumentError as exc:
                raise AuditStoreError("<invalid URL>", f"not a SQLAlchemy URL: {exc}") from None
            self.url = parsed.render_as_string(hide_password=True)
            self.dialect = parsed.get_backend_name()
            if self.dialect not in ("sqlite", "postgresql"):
                raise AuditStoreError(self.url, "unsupported store; use sqlite:// or postgresql://")
            if self.dialect == "postgresql" and parsed.drivername == "postgresql":
                parsed = parsed.set(drivername="postgresql+psycopg")
            database = parsed.database
            if self.dialect == "sqlite" and database and database != ":memory:":
                file = Path(database)
            self._parsed = parsed
        if file is not None:
            path = file.expanduser()
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)
            elif not path.exists():
                raise AuditStoreError(self.url, "no such store (the file does not exist)")
            if self._parsed is None:  # a plain URL: read and written on sqlite3
                self._lite = SqlitePool(lambda: _tuned(_connect(path), create))
        # psycopg's placeholder is %s
        self._sql = (lambda sql: sql) if self.dialect == "sqlite" else _format_style
        # SQLite: many rows per INSERT statement (see _insert_events), as many as fit in
        # its limit on bound parameters (32,766 since 3.32; 999 before).
        self._rows_per_insert = 0
        if self.dialect == "sqlite":
            limit = 32_766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999
            self._rows_per_insert = limit // len(ROW_FIELDS)
        self._multi_insert: dict[int, str] = {}
        self.schema_version = SCHEMA_VERSION
        try:
            if not self._lite_schema_current():
                self._guard(lambda: self._open_schema(create))
        except BaseException:
            self.close()
            raise

    # --- plumbing -----------------------------------------------------------------

    @property
    def _engine(self) -> Engine:
        """SQLAlchemy's engine on the store, made on first use."""
        if self._engine_ is not None:
            return self._engine_
        from sqlalchemy import create_engine
        from sqlalchemy.pool import StaticPool

        parsed = self._parsed
        if parsed is None:
            from sqlalchemy.engine import make_url

            parsed = make_url(self.url)
        kwargs: dict[str, Any] = {}
        if self.dialect == "sqlite":
            kwargs["connect_args"] = {"timeout": 60}
            if not parsed.database or parsed.database == ":memory:":
                kwargs["poolclass"] = StaticPool
        engine = create_engine(parsed, **kwargs)
        if self.dialect == "sqlite":
            _sqlite_tuning(engine, wal=self._create)
        self._engine_ = engine
        return engine

    def _lite_schema_current(self) -> bool:
        """On ``sqlite3`` (no SQLAlchemy): whether a SQLite file's schema is at this
        version, after creating it in an empty file (with ``create``). False: SQLAlchemy
        must migrate or refuse it."""
        if self._lite is None:
            return False

        def version(conn: sqlite3.Connection) -> int | None:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
            if not tables & {EVENTS_TABLE, HEADS_TABLE, META_TABLE}:
                return None
            query = f"SELECT value FROM {META_TABLE} WHERE name = ?"
            found = conn.execute(query, (VERSION_KEY,)).fetchone() if META_TABLE in tables else None
            current = found is not None and found[0] == str(SCHEMA_VERSION)
            return SCHEMA_VERSION if current and {EVENTS_TABLE, HEADS_TABLE} <= tables else -1

        def work() -> bool:
            assert self._lite is not None
            with self._lite.connection() as conn:
                found = version(conn)
                if found is not None or not self._create:
                    return found == SCHEMA_VERSION
                conn.execute("BEGIN IMMEDIATE")  # another process may be making it too
                found = version(conn)
                if found is None:
                    for statement in SQLITE_DDL:
                        conn.execute(statement)
                    conn.execute(
                        f"INSERT INTO {META_TABLE} (name, value) VALUES (?, ?)",
                        (VERSION_KEY, str(SCHEMA_VERSION)),
                    )
                    found = SCHEMA_VERSION
                conn.execute("COMMIT")
                return found == SCHEMA_VERSION

        return self._guard(work)

    def _guard(self, work: Callable[[], _T]) -> _T:
        try:
            return work()
        except sqlite3.Error as exc:
            raise self._error(exc) from exc
        except OSError as exc:
            raise AuditStoreError(self.url, f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            # SQLAlchemy's errors, where it is loaded (a SQLite file's store may never load it)
            alchemy = sys.modules.get("sqlalchemy.exc")
            if alchemy is not None and isinstance(exc, alchemy.SQLAlchemyError):
                raise self._error(getattr(exc, "orig", None) or exc) from exc
            raise

    def _error(self, reason: BaseException) -> AuditStoreError:
        message = str(reason).strip().splitlines()[0] if str(reason).strip() else ""
        return AuditStoreError(self.url, f"{type(reason).__name__}: {message}")

    def _open_schema(self, create: bool) -> None:
        """Check the schema version; with ``create``, create or migrate the schema."""
        from sqlalchemy import func, select

        from engine.ledger.tables import migrate_schema, stored_version

        with self._engine.connect() as conn:
            if create:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                if create and self.dialect == "postgresql":
                    # Concurrent CREATE TABLE IF NOT EXISTS races in PostgreSQL's catalog,
                    # and two processes must not migrate one store at once.
                    conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK_ID)))
                try:
                    found = stored_version(conn)
                except ValueError as exc:
                    raise AuditStoreError(self.url, str(exc)) from None
                if found is not None and found > SCHEMA_VERSION:
                    raise AuditStoreError(
                        self.url,
                        f"the store's schema version is {found}, newer than version "
                        f"{SCHEMA_VERSION} that this engine knows; use a newer engine",
                    )
                if create:
                    migrate_schema(conn, found)
                elif found is None:
                    raise AuditStoreError(self.url, "not an audit store (no audit tables)")
                else:
                    self.schema_version = found

    def sync(self) -> None:
        """Make every committed event durable against power loss too: a SQLite store's
        commits survive a crash of the process, and checkpointing its log syncs them to
        disk (PostgreSQL syncs on commit)."""
        if self.dialect != "sqlite":
            return

        def work() -> None:
            if self._lite is not None:
                with self._lite.connection() as conn:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                return
            raw = self._engine.raw_connection()
            try:
                cursor = raw.cursor()
                try:
                    cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")
                finally:
                    cursor.close()
            finally:
                raw.close()

        self._guard(work)

    def close(self) -> None:
        if self._engine_ is not None:
            self._engine_.dispose()
        if self._lite is not None:
            self._lite.close()

    def forked(self) -> None:
        """In a forked child: open new connections, leaving the parent's to the parent."""
        if self._engine_ is not None:
            self._engine_.dispose(close=False)
        if self._lite is not None:
            self._lite.forked()

    def __enter__(self) -> AuditStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- writing ------------------------------------------------------------------

    def append(self, producer: str, seal: Sealer) -> ChainHead:
        """Lock the chain head, let ``seal`` number and sign rows after it, insert, commit."""

        def work(execute: Execute) -> ChainHead:
            head = self._lock_head(execute, producer)
            rows, new_head = seal(head)
            if rows:
                self._insert_events(execute, rows)
                execute(
                    self._sql(_HEAD_UPDATE_SQL),
                    (
                        new_head.seq,
                        new_head.mac,
                        frontier_text(new_head.frontier),
                        format_time(datetime.now(UTC)),
                        producer,
                    ),
                )
            return new_head

        return self._guard(lambda: self._writing(work))

    def _writing(self, work: Callable[[Execute], _T]) -> _T:
        """``work`` in a transaction holding the write lock (SQLite: ``BEGIN IMMEDIATE``),
        given the driver's ``execute``."""
        if self._lite is not None:
            with self._lite.connection() as lite:
                lite.execute("BEGIN IMMEDIATE")
                done = work(lite.execute)
                lite.execute("COMMIT")
                return done
        engine = self._engine.execution_options(sqlite_begin="IMMEDIATE")
        with engine.connect() as conn, conn.begin():
            return work(conn.exec_driver_sql)

    def _insert_events(self, execute: Execute, rows: list[tuple[Any, ...]]) -> None:
        # Sent to the driver as they are: SQLAlchemy's per-row parameter processing would
        # cost more than signing the event. SQLite's executemany steps each row through
        # Python; one statement of many rows costs about a sixth less per row.
        per = self._rows_per_insert
        if per:
            for start in range(0, len(rows), per):
                chunk = rows[start : start + per]
                execute(self._multi_row_sql(len(chunk)), tuple(chain(*chunk)))
        else:
            execute(self._sql(_INSERT_SQL), rows)

    def _multi_row_sql(self, n: int) -> str:
        found = self._multi_insert.get(n)
        if found is None:
            found = f"{_INSERT_SQL}{f', {_ROW_VALUES}' * (n - 1)}"
            if len(self._multi_insert) < 64:
                self._multi_insert[n] = found
        return found

    def _lock_head(self, execute: Execute, producer: str) -> ChainHead:
        # PostgreSQL locks the row; SQLite's BEGIN IMMEDIATE holds the whole database
        lock = " FOR UPDATE" if self.dialect == "postgresql" else ""
        head_sql = self._sql(_HEAD_SQL) + lock
        found = execute(head_sql, (producer,)).fetchone()
        if found is None:
            empty = (producer, 0, GENESIS_MAC, "", "", 0, GENESIS_MAC, "")
            execute(self._sql(_NEW_HEAD_SQL), empty)
            found = execute(head_sql, (producer,)).fetchone()
        seq, mac, frontier = found
        return ChainHead(producer, seq, mac, frontier_parse(seq, frontier))

    # --- reading ------------------------------------------------------------------

    def _reading(self, work: Callable[[Execute], _T]) -> _T:
        """``work`` given the driver's ``execute`` on a connection."""
        if self._lite is not None:
            with self._lite.connection() as lite:
                return work(lite.execute)
        with self._engine.connect() as conn:
            return work(conn.exec_driver_sql)

    def head(self, producer: str) -> ChainHead | None:
        def work(execute: Execute) -> ChainHead | None:
            row = execute(self._sql(_HEAD_SQL), (producer,)).fetchone()
            if row is None:
                return None
            seq, mac, frontier = row
            return ChainHead(producer, seq, mac, frontier_parse(seq, frontier))

        return self._guard(lambda: self._reading(work))

    def head_event(self, producer: str) -> StoredEvent | None:
        """The newest event of a chain (the one its head row names), if stored."""

        def work(execute: Execute) -> StoredEvent | None:
            row = execute(self._sql(_HEAD_EVENT_SQL), (producer,)).fetchone()
            return stored_event(row) if row is not None else None

        return self._guard(lambda: self._reading(work))

    def heads(self) -> dict[str, int]:
        """Each chain's head sequence number."""
        from sqlalchemy import select

        from engine.ledger.tables import heads_table

        def work() -> dict[str, int]:
            with self._engine.connect() as conn:
                rows = conn.execute(select(heads_table.c.producer, heads_table.c.seq)).all()
            return {r.producer: r.seq for r in rows}

        return self._guard(work)

    def anchors(self) -> dict[str, PruneAnchor]:
        """Each pruned chain's anchor."""
        from sqlalchemy import select

        from engine.ledger.tables import heads_table

        if self.schema_version < 2:
            return {}  # retention came with version 2: nothing was pruned before

        def work() -> dict[str, PruneAnchor]:
            h = heads_table.c
            with self._engine.connect() as conn:
                rows = conn.execute(
                    select(h.producer, h.pruned_seq, h.pruned_mac, h.pruned_frontier).where(
                        h.pruned_seq > 0
                    )
                ).all()
            found: dict[str, PruneAnchor] = {}
            for r in rows:
                try:
                    frontier = frontier_parse(r.pruned_seq, r.pruned_frontier)
                except ValueError:
                    found[r.producer] = PruneAnchor(
                        r.pruned_seq, r.pruned_mac, CompactRange(), False
                    )
                else:
                    found[r.producer] = PruneAnchor(r.pruned_seq, r.pruned_mac, frontier)
            return found

        return self._guard(work)

    def prune(
        self,
        producer: str,
        *,
        before: str | None,
        keep_last: int | None,
        seal: Callable[[ChainHead, PruneAnchor], tuple[list[tuple[Any, ...]], ChainHead]],
    ) -> PruneAnchor | None:
        """Delete a chain's events older than ``before`` (a stored timestamp) or beyond
        the newest ``keep_last``, record the anchor, and append ``seal``'s signed notice,
        all in one locked transaction. Returns the new anchor, or None if nothing went."""
        from sqlalchemy import func, select

        from engine.ledger.tables import events_table, heads_table

        def work() -> PruneAnchor | None:
            c = events_table.c
            h = heads_table.c
            with self._engine.connect() as conn:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    head = self._lock_head(conn.exec_driver_sql, producer)
                    row = conn.execute(
                        select(h.pruned_seq, h.pruned_mac, h.pruned_frontier).where(
                            h.producer == producer
                        )
                    ).one()
                    old = PruneAnchor(
                        row.pruned_seq,
                        row.pruned_mac,
                        frontier_parse(row.pruned_seq, row.pruned_frontier),
                    )
                    through = old.seq
                    if before is not None:
                        by_time = conn.execute(
                            select(func.max(c.seq)).where(
                                c.producer == producer, c.timestamp < before
                            )
                        ).scalar()
                        through = max(through, int(by_time or 0))
                    if keep_last is not None:
                        through = max(through, head.seq - keep_last)
                    through = min(through, head.seq)
                    if through <= old.seq:
                        return None
                    frontier = old.frontier.copy()
                    mac = old.mac
                    for body, row_mac in conn.execute(
                        select(c.body, c.mac)
                        .where(c.producer == producer, c.seq > old.seq, c.seq <= through)
                        .order_by(c.seq)
                    ):
                        data = body if isinstance(body, bytes) else bytes(body)
                        frontier.append(leaf_hash(data))
                        mac = row_mac
                    if frontier.size != through:
                        raise AuditStoreError(
                            self.url,
                            f"cannot prune {producer}: events are missing before #{through}",
                        )
                    anchor = PruneAnchor(through, mac, frontier)
                    conn.execute(
                        events_table.delete().where(c.producer == producer, c.seq <= through)
                    )
                    rows, new_head = seal(head, anchor)
                    self._insert_events(conn.exec_driver_sql, rows)
                    conn.execute(
                        heads_table.update()
                        .where(h.producer == producer)
                        .values(
                            seq=new_head.seq,
                            mac=new_head.mac,
                            frontier=frontier_text(new_head.frontier),
                            updated_at=format_time(datetime.now(UTC)),
                            pruned_seq=through,
                            pruned_mac=mac,
                            pruned_frontier=frontier_text(frontier),
                        )
                    )
                    return anchor

        return self._guard(work)

    def producers(self) -> list[str]:
        """Every chain with events or a head row."""
        sql = (
            f"SELECT DISTINCT producer FROM {EVENTS_TABLE} UNION SELECT producer FROM {HEADS_TABLE}"
        )
        return self._guard(lambda: sorted(r[0] for r in self._reading(_rows(self._sql(sql), ()))))

    def _page(
        self, producer: str, after: int, page: int, where: EventFilter | None = None
    ) -> list[StoredEvent]:
        more, params = filter_sql(where) if where is not None else ("", ())
        sql = (
            f"SELECT {_EVENT_FIELDS} FROM {EVENTS_TABLE} WHERE producer = ? AND seq > ?"
            f"{f' AND {more}' if more else ''} ORDER BY seq LIMIT {int(page)}"
        )
        found = self._guard(
            lambda: self._reading(_rows(self._sql(sql), (producer, after, *params)))
        )
        return [stored_event(r) for r in found]

    def iter_chain_raw(
        self, producer: str, *, page: int = 50_000, after: int = -1, upto: int | None = None
    ) -> Iterator[Sequence[Any]]:
        """A chain's rows numbered after ``after`` (up to ``upto``) as driver tuples
        (StoredEvent field order), for the verifier."""
        below = " AND seq <= ?" if upto is not None else ""
        sql = self._sql(
            f"SELECT {_EVENT_FIELDS} FROM {EVENTS_TABLE} WHERE producer = ? AND seq > ?{below} "
            f"ORDER BY seq LIMIT {int(page)}"
        )
        while True:
            params = (producer, after) if upto is None else (producer, after, upto)
            batch: list[Sequence[Any]] = self._guard(partial(self._reading, _rows(sql, params)))
            yield from batch
            if len(batch) < page:
                return
            after = batch[-1][1]

    def iter_chain(
        self, producer: str, *, page: int = 20_000, where: EventFilter | None = None
    ) -> Iterator[StoredEvent]:
        """A chain's events by stored sequence number, read page by page (those ``where``
        matches)."""
        after = -1
        while True:
            batch = self._page(producer, after, page, where)
            yield from batch
            if len(batch) < page:
                return
            after = batch[-1].seq

    def get(self, event_id: str) -> StoredEvent | None:
        from sqlalchemy import select

        from engine.ledger.tables import EVENT_COLUMNS, events_table

        def work() -> StoredEvent | None:
            with self._engine.connect() as conn:
                row = conn.execute(
                    select(*EVENT_COLUMNS).where(events_table.c.event_id == event_id)
                ).first()
            return stored_event(row) if row is not None else None

        return self._guard(work)

    def neighbours(self, producer: str, seq: int) -> tuple[StoredEvent | None, StoredEvent | None]:
        """The events stored just before and just after ``seq`` in its chain."""
        from sqlalchemy import select

        from engine.ledger.tables import EVENT_COLUMNS, events_table

        def work() -> tuple[StoredEvent | None, StoredEvent | None]:
            c = events_table.c
            with self._engine.connect() as conn:
                before = conn.execute(
                    select(*EVENT_COLUMNS)
                    .where(c.producer == producer, c.seq < seq)
                    .order_by(c.seq.desc())
                    .limit(1)
                ).first()
                after = conn.execute(
                    select(*EVENT_COLUMNS)
                    .where(c.producer == producer, c.seq > seq)
                    .order_by(c.seq)
                    .limit(1)
                ).first()
            return (
                stored_event(before) if before is not None else None,
                stored_event(after) if after is not None else None,
            )

        return self._guard(work)

    def leaf_bodies(self, producer: str, size: int) -> list[bytes]:
        """The bodies of the first ``size`` events of a chain, for Merkle proofs."""
        out: list[bytes] = []
        for stored in self.iter_chain(producer):
            if len(out) >= size:
                break
            out.append(stored.body)
        return out

    def query(self, where: EventFilter, *, limit: int | None = 100) -> list[StoredEvent]:
        """Matching events, newest first."""
        more, params = filter_sql(where)
        sql = (
            f"SELECT {_EVENT_FIELDS} FROM {EVENTS_TABLE}{f' WHERE {more}' if more else ''} "
            f"ORDER BY timestamp DESC, seq DESC{limit_sql(limit)}"
        )
        found = self._guard(lambda: self._reading(_rows(self._sql(sql), params)))
        return [stored_event(r) for r in found]

    def iter_query(self, where: EventFilter) -> Iterator[StoredEvent]:
        """Matching events chain by chain in sequence order (for exports)."""
        for producer in self.producers():
            if where.producer is None or producer == where.producer:
                yield from self.iter_chain(producer, where=where)

    def last_matching(self, producer: str, actions: Sequence[str]) -> StoredEvent | None:
        """The newest event of a chain whose action is one of ``actions``."""
        if not actions:
            return None
        sql = (
            f"SELECT {_EVENT_FIELDS} FROM {EVENTS_TABLE} WHERE producer = ? "
            f"AND action IN ({', '.join('?' * len(actions))}) ORDER BY seq DESC LIMIT 1"
        )

        def work(execute: Execute) -> StoredEvent | None:
            row = execute(self._sql(sql), (producer, *actions)).fetchone()
            return stored_event(row) if row is not None else None

        return self._guard(lambda: self._reading(work))

    def stats(self, where: EventFilter | None = None) -> StoreStats:
        more, params = filter_sql(where) if where is not None else ("", ())
        tail = f"FROM {EVENTS_TABLE}{f' WHERE {more}' if more else ''}"

        def work(execute: Execute) -> StoreStats:
            summary = f"SELECT count(*), avg(risk_score), min(timestamp), max(timestamp) {tail}"
            total, average, first, last = execute(self._sql(summary), params).fetchone()

            def grouped(column: str) -> dict[str, int]:
                sql = f"SELECT {column}, count(*) {tail} GROUP BY {column}"
                return {str(k): int(n) for k, n in execute(self._sql(sql), params).fetchall()}

            return StoreStats(
                total_events=int(total),
                average_risk_score=float(average or 0.0),
                events_by_level=grouped("level"),
                events_by_category=grouped("category"),
                chains=grouped("producer"),
                first_timestamp=first,
                last_timestamp=last,
            )

        return self._guard(lambda: self._reading(work))


def _rows(sql: str, params: Sequence[Any]) -> Callable[[Execute], list[Any]]:
    """Reading work: the rows of ``sql`` as driver tuples (SQLAlchemy's rows cost more)."""
    return lambda execute: list(execute(sql, tuple(params)).fetchall())


def _format_style(sql: str) -> str:
    return sql.replace("?", "%s")


def _sqlite_tuning(engine: Engine, *, wal: bool) -> None:
    """WAL for concurrent readers; manual BEGIN so appends can take the write lock first.

    ``synchronous=NORMAL``: a commit is written to the log, which a crash of the process
    cannot undo, without waiting for the disk; the runtime commits before every
    acknowledgement, so a sync each time would cost more than the rest of the append.
    :meth:`AuditStore.sync` syncs the log to disk before each signed checkpoint.

    Switching to WAL rewrites the file header, so a read-only open leaves the mode as it is
    (a store this code created is in WAL already). A new store gets 16 KiB pages: an event
    row is about 1 KiB, and with 4 KiB pages writing each batch costs a third more (more
    pages, WAL frames and b-tree splits per row). The WAL is checkpointed into the database
    every 40 MiB rather than SQLite's 4 MiB: one batch of a few thousand events fills
    several MiB, and checkpointing after every batch costs a quarter of the append rate."""

    from sqlalchemy import event

    event.listen(engine, "connect", lambda conn, _record: _tuned(conn, wal))

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        options: Mapping[str, Any] = conn.get_execution_options()
        mode = options.get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def _connect(path: Path) -> sqlite3.Connection:
    # a pooled connection serves one thread at a time, not always the same one
    return sqlite3.connect(path, timeout=60, check_same_thread=False)


def _tuned(connection: sqlite3.Connection, wal: bool) -> sqlite3.Connection:
    """A connection as :func:`_sqlite_tuning` describes it: transactions begun by hand."""
    connection.isolation_level = None
    cursor = connection.cursor()
    try:
        if wal:
            # Takes effect only while the file is still empty (no-op afterwards).
            cursor.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            use_wal(cursor)
            cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_PAGES}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()
    return connection
