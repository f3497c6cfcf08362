"""The audit store's tables, their schema version and migrations, and the plain types read
from and written to them."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

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
from sqlalchemy.sql import ColumnElement

from engine.ledger.events import GENESIS_MAC, format_time
from engine.ledger.merkle import CompactRange

__all__ = [
    "INDEXED_FIELDS",
    "ROW_FIELDS",
    "SCHEMA_VERSION",
    "ChainHead",
    "EventFilter",
    "PruneAnchor",
    "Sealer",
    "StoreStats",
    "StoredEvent",
    "events_table",
    "heads_table",
    "meta_table",
    "metadata",
    "migrate_schema",
    "stored_version",
]

metadata = MetaData()

events_table = Table(
    "audit_events",
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
    "audit_chain_heads",
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
    "audit_meta",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

# 1: events and chain heads (no audit_meta, no pruned_* columns); 2: audit_meta and retention.
SCHEMA_VERSION = 2
_VERSION_KEY = "schema_version"


def stored_version(conn: Connection) -> int | None:
    """The schema version of the store behind ``conn``: 1 for a store older than
    ``audit_meta``, None for a database without audit tables. Raises ValueError for a
    version that is not a number."""
    tables = set(inspect(conn).get_table_names())
    if meta_table.name in tables:
        value = conn.execute(
            select(meta_table.c.value).where(meta_table.c.name == _VERSION_KEY)
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
        conn.execute(meta_table.delete().where(meta_table.c.name == _VERSION_KEY))
        conn.execute(meta_table.insert().values(name=_VERSION_KEY, value=str(SCHEMA_VERSION)))


# Columns copied from the signed body; verification checks they still agree with it.
INDEXED_FIELDS = (
    "event_id",
    "timestamp",
    "level",
    "category",
    "action",
    "pipeline",
    "run_id",
    "user_id",
    "stage",
    "risk_score",
)


class ChainHead:
    """The last event of a chain: its number, its MAC and the tree's right frontier."""

    __slots__ = ("frontier", "mac", "producer", "seq")

    def __init__(self, producer: str, seq: int, mac: str, frontier: CompactRange) -> None:
        self.producer = producer
        self.seq = seq
        self.mac = mac
        self.frontier = frontier

    @classmethod
    def genesis(cls, producer: str) -> ChainHead:
        return cls(producer, 0, GENESIS_MAC, CompactRange())


@dataclass(frozen=True)
class PruneAnchor:
    """Where a pruned chain resumes: the last deleted event's number and MAC, and the
    Merkle frontier of the deleted prefix."""

    seq: int
    mac: str
    frontier: CompactRange
    intact: bool = True  # False when the stored frontier is malformed (tampered)

    @classmethod
    def none(cls) -> PruneAnchor:
        return cls(0, GENESIS_MAC, CompactRange())


class StoredEvent(NamedTuple):
    producer: str
    seq: int
    event_id: str
    timestamp: str
    level: str
    category: str
    action: str
    pipeline: str | None
    run_id: str | None
    user_id: str | None
    stage: str | None
    risk_score: float
    mac: str
    body: bytes


def stored_event(row: Sequence[Any]) -> StoredEvent:
    """A row as a StoredEvent; the body always as bytes, whatever a tamperer stored."""
    event = StoredEvent(*row)
    body: Any = event.body
    if not isinstance(body, bytes):
        body = body.encode() if isinstance(body, str) else bytes(body)
        event = event._replace(body=body)
    return event


EVENT_COLUMNS = [events_table.c[name] for name in StoredEvent._fields]
# The order of an inserted row tuple: the table's column order.
ROW_FIELDS: tuple[str, ...] = tuple(c.name for c in events_table.columns)


@dataclass(frozen=True)
class EventFilter:
    """Which events a query returns; every field narrows, None means any."""

    since: datetime | None = None
    until: datetime | None = None
    levels: Sequence[str] = ()
    categories: Sequence[str] = ()
    pipeline: str | None = None
    run_id: str | None = None
    user_id: str | None = None
    action: str | None = None
    producer: str | None = None

    def clauses(self) -> list[ColumnElement[bool]]:
        c = events_table.c
        out: list[ColumnElement[bool]] = []
        if self.since is not None:
            out.append(c.timestamp >= format_time(self.since))
        if self.until is not None:
            out.append(c.timestamp < format_time(self.until))
        if self.levels:
            out.append(c.level.in_(list(self.levels)))
        if self.categories:
            out.append(c.category.in_(list(self.categories)))
        for column, value in (
            (c.pipeline, self.pipeline),
            (c.run_id, self.run_id),
            (c.user_id, self.user_id),
            (c.action, self.action),
            (c.producer, self.producer),
        ):
            if value is not None:
                out.append(column == value)
        return out


@dataclass(frozen=True)
class StoreStats:
    total_events: int
    average_risk_score: float
    events_by_level: dict[str, int]
    events_by_category: dict[str, int]
    chains: dict[str, int]
    first_timestamp: str | None
    last_timestamp: str | None


def frontier_text(frontier: CompactRange) -> str:
    return "".join(node.hex() for node in frontier.nodes)


def frontier_parse(seq: int, text: str) -> CompactRange:
    raw = bytes.fromhex(text)
    nodes = [raw[i : i + 32] for i in range(0, len(raw), 32)]
    return CompactRange(seq, nodes)


# Given the locked head, returns the rows to insert (tuples in ROW_FIELDS order) and the new head.
Sealer = Callable[[ChainHead], tuple[list[tuple[Any, ...]], ChainHead]]
