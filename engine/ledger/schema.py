"""The audit store's schema version, and the plain types read from and written to its
tables (the tables themselves: :mod:`engine.ledger.tables`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from engine.ledger.events import GENESIS_MAC, format_time
from engine.ledger.merkle import CompactRange

__all__ = [
    "EVENTS_TABLE",
    "HEADS_TABLE",
    "INDEXED_FIELDS",
    "META_TABLE",
    "ROW_FIELDS",
    "SCHEMA_VERSION",
    "SQLITE_DDL",
    "VERSION_KEY",
    "ChainHead",
    "EventFilter",
    "PruneAnchor",
    "Sealer",
    "StoreStats",
    "StoredEvent",
    "filter_sql",
]

# 1: events and chain heads (no audit_meta, no pruned_* columns); 2: audit_meta and retention.
SCHEMA_VERSION = 2
#: the tables' names
EVENTS_TABLE, HEADS_TABLE, META_TABLE = "audit_events", "audit_chain_heads", "audit_meta"
#: audit_meta's row holding the schema version
VERSION_KEY = "schema_version"

#: the tables of :mod:`engine.ledger.tables` as SQLite creates them (a new SQLite store is
#: made without loading SQLAlchemy; tests/state/test_sqlite_direct holds the two alike)
SQLITE_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {EVENTS_TABLE} (
        producer VARCHAR(200) NOT NULL, seq BIGINT NOT NULL, event_id VARCHAR(64) NOT NULL,
        timestamp VARCHAR(32) NOT NULL, level VARCHAR(16) NOT NULL,
        category VARCHAR(32) NOT NULL, action VARCHAR(200) NOT NULL,
        pipeline VARCHAR(200), run_id VARCHAR(64), user_id VARCHAR(200), stage VARCHAR(200),
        risk_score FLOAT NOT NULL, mac VARCHAR(64) NOT NULL, body BLOB NOT NULL,
        PRIMARY KEY (producer, seq), UNIQUE (event_id))""",
    f"CREATE INDEX IF NOT EXISTS ix_audit_events_timestamp ON {EVENTS_TABLE} (timestamp)",
    f"CREATE INDEX IF NOT EXISTS ix_audit_events_run_id ON {EVENTS_TABLE} (run_id)",
    f"""CREATE TABLE IF NOT EXISTS {HEADS_TABLE} (
        producer VARCHAR(200) NOT NULL, seq BIGINT NOT NULL, mac VARCHAR(64) NOT NULL,
        frontier TEXT NOT NULL, updated_at VARCHAR(32) NOT NULL,
        pruned_seq BIGINT DEFAULT '0' NOT NULL,
        pruned_mac VARCHAR(64) DEFAULT '{GENESIS_MAC}' NOT NULL,
        pruned_frontier TEXT DEFAULT '' NOT NULL, PRIMARY KEY (producer))""",
    f"""CREATE TABLE IF NOT EXISTS {META_TABLE} (
        name VARCHAR(64) NOT NULL, value TEXT NOT NULL, PRIMARY KEY (name))""",
)

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


# The order of an inserted row tuple: the events table's column order.
ROW_FIELDS: tuple[str, ...] = ("producer", "seq", *INDEXED_FIELDS, "mac", "body")


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


def filter_sql(where: EventFilter) -> tuple[str, tuple[Any, ...]]:
    """``where`` as a condition on the events table (``?`` placeholders) and its
    parameters; ``""`` matches every event."""
    terms: list[str] = []
    params: list[Any] = []
    if where.since is not None:
        terms.append("timestamp >= ?")
        params.append(format_time(where.since))
    if where.until is not None:
        terms.append("timestamp < ?")
        params.append(format_time(where.until))
    for column, values in (("level", where.levels), ("category", where.categories)):
        if values:
            terms.append(f"{column} IN ({', '.join('?' * len(values))})")
            params.extend(values)
    for column, value in (
        ("pipeline", where.pipeline),
        ("run_id", where.run_id),
        ("user_id", where.user_id),
        ("action", where.action),
        ("producer", where.producer),
    ):
        if value is not None:
            terms.append(f"{column} = ?")
            params.append(value)
    return " AND ".join(terms), tuple(params)


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
