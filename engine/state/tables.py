"""The state store's tables: names prefixed, and schema-qualified where the database has
schemas (PostgreSQL). Created on first use; see :mod:`engine.state.store`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import MetaData, Table

__all__ = ["DEFAULT_PREFIX", "TABLE_NAMES", "StateTables", "sqlite_ddl"]

#: what every table name starts with, so the state can share a database with other tables
DEFAULT_PREFIX = "engine_"
#: each table by its short name, its name after the prefix
TABLE_NAMES = {
    "cursors": "cursors",
    "leases": "leases",
    "runs": "runs",
    "dead_letters": "dead_letters",
    "claims": "schedule_claims",
    "partitions": "partitions",
}


def sqlite_ddl(prefix: str) -> list[str]:
    """The tables of :meth:`StateTables.build` as SQLite creates them (a new SQLite store
    is made without loading SQLAlchemy; tests/state/test_sqlite_direct holds the two
    alike)."""
    t = {short: f'"{prefix}{full}"' for short, full in TABLE_NAMES.items()}
    return [
        f"""CREATE TABLE IF NOT EXISTS {t["cursors"]} (
            pipeline VARCHAR(128) NOT NULL, component VARCHAR(200) NOT NULL,
            "key" VARCHAR(200) NOT NULL, value TEXT NOT NULL, version INTEGER NOT NULL,
            updated_at VARCHAR(32) NOT NULL, PRIMARY KEY (pipeline, component, "key"))""",
        f"""CREATE TABLE IF NOT EXISTS {t["leases"]} (
            pipeline VARCHAR(128) NOT NULL, run_id VARCHAR(64) NOT NULL,
            host VARCHAR(255) NOT NULL, pid INTEGER NOT NULL, since VARCHAR(32) NOT NULL,
            expires FLOAT NOT NULL, PRIMARY KEY (pipeline))""",
        f"""CREATE TABLE IF NOT EXISTS {t["runs"]} (
            run_id VARCHAR(64) NOT NULL, pipeline VARCHAR(128) NOT NULL,
            started VARCHAR(32) NOT NULL, ended VARCHAR(32), outcome VARCHAR(16) NOT NULL,
            records_in INTEGER NOT NULL, records_out INTEGER NOT NULL,
            rejected INTEGER NOT NULL, dead_letters INTEGER NOT NULL, duration_s FLOAT,
            host VARCHAR(255) NOT NULL, attempt INTEGER NOT NULL, error TEXT, details TEXT,
            PRIMARY KEY (run_id))""",
        f'CREATE INDEX IF NOT EXISTS "{prefix}runs_by_pipeline" ON {t["runs"]} (pipeline, started)',
        f"""CREATE TABLE IF NOT EXISTS {t["dead_letters"]} (
            id INTEGER NOT NULL, pipeline VARCHAR(128) NOT NULL, run_id VARCHAR(64) NOT NULL,
            time VARCHAR(40) NOT NULL, component VARCHAR(200) NOT NULL,
            stage VARCHAR(32) NOT NULL, reason TEXT NOT NULL, location TEXT,
            record TEXT NOT NULL, PRIMARY KEY (id))""",
        f'CREATE INDEX IF NOT EXISTS "{prefix}dead_letters_by_run" ON {t["dead_letters"]} (run_id)',
        f"""CREATE TABLE IF NOT EXISTS {t["claims"]} (
            pipeline VARCHAR(128) NOT NULL, fire_time VARCHAR(32) NOT NULL,
            holder VARCHAR(255) NOT NULL, claimed_at VARCHAR(32) NOT NULL,
            PRIMARY KEY (pipeline, fire_time))""",
        f"""CREATE TABLE IF NOT EXISTS {t["partitions"]} (
            run_id VARCHAR(64) NOT NULL, idx INTEGER NOT NULL, spec TEXT NOT NULL,
            state VARCHAR(16) NOT NULL, attempts INTEGER NOT NULL, worker VARCHAR(255),
            redelivered INTEGER NOT NULL, error TEXT, result TEXT,
            updated_at VARCHAR(32) NOT NULL, PRIMARY KEY (run_id, idx))""",
    ]


@dataclass(frozen=True)
class StateTables:
    metadata: MetaData
    cursors: Table
    leases: Table
    runs: Table
    dead_letters: Table
    claims: Table
    partitions: Table

    @classmethod
    def build(cls, prefix: str = DEFAULT_PREFIX, schema: str | None = None) -> StateTables:
        from sqlalchemy import (
            Column,
            Float,
            Index,
            Integer,
            MetaData,
            PrimaryKeyConstraint,
            String,
            Table,
            Text,
        )

        md = MetaData(schema=schema)
        cursors = Table(
            prefix + TABLE_NAMES["cursors"],
            md,
            Column("pipeline", String(128), nullable=False),
            Column("component", String(200), nullable=False),
            Column("key", String(200), nullable=False),
            Column("value", Text, nullable=False),  # JSON
            Column("version", Integer, nullable=False),  # compare-and-set
            Column("updated_at", String(32), nullable=False),
            PrimaryKeyConstraint("pipeline", "component", "key"),
        )
        leases = Table(
            prefix + TABLE_NAMES["leases"],
            md,
            Column("pipeline", String(128), primary_key=True),
            Column("run_id", String(64), nullable=False),
            Column("host", String(255), nullable=False),
            Column("pid", Integer, nullable=False),
            Column("since", String(32), nullable=False),
            Column("expires", Float, nullable=False),
        )
        runs = Table(
            prefix + TABLE_NAMES["runs"],
            md,
            Column("run_id", String(64), primary_key=True),
            Column("pipeline", String(128), nullable=False),
            Column("started", String(32), nullable=False),
            Column("ended", String(32)),
            Column("outcome", String(16), nullable=False),
            Column("records_in", Integer, nullable=False, default=0),
            Column("records_out", Integer, nullable=False, default=0),
            Column("rejected", Integer, nullable=False, default=0),
            Column("dead_letters", Integer, nullable=False, default=0),
            Column("duration_s", Float),
            Column("host", String(255), nullable=False),
            Column("attempt", Integer, nullable=False, default=1),
            Column("error", Text),
            Column("details", Text),  # JSON: file, per-component counts, dead-letter file
            Index(f"{prefix}runs_by_pipeline", "pipeline", "started"),
        )
        dead_letters = Table(
            prefix + TABLE_NAMES["dead_letters"],
            md,
            Column("id", Integer, primary_key=True, autoincrement=True),
            Column("pipeline", String(128), nullable=False),
            Column("run_id", String(64), nullable=False),
            Column("time", String(40), nullable=False),
            Column("component", String(200), nullable=False),
            Column("stage", String(32), nullable=False),
            Column("reason", Text, nullable=False),
            Column("location", Text),
            Column("record", Text, nullable=False),  # JSON
            Index(f"{prefix}dead_letters_by_run", "run_id"),
        )
        claims = Table(
            prefix + TABLE_NAMES["claims"],
            md,
            Column("pipeline", String(128), nullable=False),
            Column("fire_time", String(32), nullable=False),
            Column("holder", String(255), nullable=False),
            Column("claimed_at", String(32), nullable=False),
            PrimaryKeyConstraint("pipeline", "fire_time"),
        )
        # the partitions of distributed runs (engine.partitions.board)
        partitions = Table(
            prefix + TABLE_NAMES["partitions"],
            md,
            Column("run_id", String(64), nullable=False),
            Column("idx", Integer, nullable=False),
            Column("spec", Text, nullable=False),  # JSON: the PartitionSpec
            Column("state", String(16), nullable=False),
            Column("attempts", Integer, nullable=False),
            Column("worker", String(255)),
            Column("redelivered", Integer, nullable=False),
            Column("error", Text),
            Column("result", Text),  # JSON: the PartitionResult of its successful attempt
            Column("updated_at", String(32), nullable=False),
            PrimaryKeyConstraint("run_id", "idx"),
        )
        return cls(md, cursors, leases, runs, dead_letters, claims, partitions)
