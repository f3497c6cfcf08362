"""The audit store's tables as SQLAlchemy objects, and the migrations between schema
versions (see :mod:`engine.ledger.schema`). A run whose store is a SQLite file at the
current version never loads this module."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
)
from sqlalchemy.schema import CreateColumn

from engine.ledger.events import GENESIS_MAC
from engine.ledger.schema import (
    EVENTS_TABLE,
    HEADS_TABLE,
    META_TABLE,
    ROW_FIELDS,
    SCHEMA_VERSION,
    VERSION_KEY,
    StoredEvent,
)

__all__ = [
    "EVENT_COLUMNS",
    "events_table",
    "heads_table",
    "meta_table",
    "metadata",
    "migrate_schema",
    "stored_version",
]

metadata = MetaData()

events_table = Table(
    EVENTS_TABLE,
    metadata,
    Column("producer", String(200), primary_key=True),
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", String(64), nullable=False, unique=True),
    Column("timestamp", String(32), nullable=False),
    Column("level", String(16), nullable=False),
    Column("category", String(32), nullable=False),
    Column("action", String(200), nullable=False),
    Column("pipeline", String(200)),
    Column("run_id", String(64)),
    Column("user_id", String(200)),
    Column("stage", String(200)),
    Column("risk_score", Float, nullable=False),
    Column("mac", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    Index("ix_audit_events_timestamp", "timestamp"),
    Index("ix_audit_events_run_id", "run_id"),
)

heads_table = Table(
    HEADS_TABLE,
    metadata,
    Column("producer", String(200), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("mac", String(64), nullable=False),
    Column("frontier", Text, nullable=False),
    Column("updated_at", String(32), nullable=False),
    # Retention: events 1..pruned_seq were deleted; the anchor lets verification resume.
    Column("pruned_seq", BigInteger, nullable=False, server_default="0"),
    Column("pruned_mac", String(64), nullable=False, server_default=GENESIS_MAC),
    Column("pruned_frontier", Text, nullable=False, server_default=""),
)

# Facts about the store itself, one row per name: "schema_version" for now.
meta_table = Table(
    META_TABLE,
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)


def stored_version(conn: Connection) -> int | None:
    """The schema version of the store behind ``conn``: 1 for a store older than
    ``audit_meta``, None for a database without audit tables. Raises ValueError for a
    version that is not a number."""
    tables = set(inspect(conn).get_table_names())
    if meta_table.name in tables:
        value = conn.execute(
            select(meta_table.c.value).where(meta_table.c.name == VERSION_KEY)
        ).scalar()
        if value is not None:
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"unreadable schema version {value!r} in audit_meta") from None
    if tables & {events_table.name, heads_table.name}:
        return 1
    return None


def _add_retention_columns(conn: Connection) -> None:
    present = {c["name"] for c in inspect(conn).get_columns(heads_table.name)}
    table = conn.dialect.identifier_preparer.format_table(heads_table)
    for name in ("pruned_seq", "pruned_mac", "pruned_frontier"):
        if name not in present:  # stores made between the columns and audit_meta have them
            spec = CreateColumn(heads_table.c[name]).compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {spec}")


# Version n -> n + 1, each run in the caller's transaction.
_MIGRATIONS: dict[int, Callable[[Connection], None]] = {1: _add_retention_columns}


def migrate_schema(conn: Connection, found: int | None) -> None:
    """Bring a store at version ``found`` (None: empty) up to :data:`SCHEMA_VERSION`:
    migrate, create what is missing, record the version. The caller holds the schema
    lock and the transaction."""
    for version in range(found or SCHEMA_VERSION, SCHEMA_VERSION):
        _MIGRATIONS[version](conn)
    metadata.create_all(conn)
    if found != SCHEMA_VERSION:
        conn.execute(meta_table.delete().where(meta_table.c.name == VERSION_KEY))
        conn.execute(meta_table.insert().values(name=VERSION_KEY, value=str(SCHEMA_VERSION)))


EVENT_COLUMNS = [events_table.c[name] for name in StoredEvent._fields]
if tuple(c.name for c in events_table.columns) != ROW_FIELDS:
    raise AssertionError("ROW_FIELDS is not the events table's column order")
