"""The SQLite state and audit stores on ``sqlite3`` directly, beside SQLAlchemy's
connections (a run in a made workspace loading no SQLAlchemy: tests/core/test_import_cost)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from engine.ledger.sqlite import sqlite_target
from engine.ledger.store import AuditStore
from engine.state import StateStore
from engine.state.history import RunRecord


def test_an_in_memory_store_is_one_database_for_both_ways_in() -> None:
    store = StateStore("sqlite://")
    try:
        store.set("p", "src", "k", {"at": 3})
        store.record_run(RunRecord("r1", "p", "2026-12-07T00:00:00Z", "host"))
        assert store.get("p", "src", "k") == {"at": 3}
        # SQLAlchemy's connection (engine.partitions.board) sees the same rows
        found = store._read(
            lambda conn: conn.exec_driver_sql(
                "SELECT run_id FROM engine_runs UNION ALL SELECT value FROM engine_cursors"
            ).all(),
            [],
        )
        assert sorted(r[0] for r in found) == ["r1", '{"at": 3}']
    finally:
        store.close()


def test_a_failed_transaction_leaves_nothing_and_the_connection_usable(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state.db")
    try:
        store.set("p", "src", "k", 1)
        with pytest.raises(RuntimeError), store.session() as session:
            session.run(
                f"UPDATE {store.table('cursors')} SET value = '99' WHERE pipeline = :pipeline",
                {"pipeline": "p"},
            )
            raise RuntimeError("in the middle")
        assert store.get("p", "src", "k") == 1
        store.set("p", "src", "k", 2)  # the pooled connection is in no transaction
        other = StateStore(tmp_path / "state.db", read_only=True)
        assert other.get("p", "src", "k") == 2
        other.close()
    finally:
        store.close()


def test_an_audit_store_opened_on_sqlite3_reads_what_sqlalchemy_wrote(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    first = AuditStore(f"{url}?timeout=30")  # a URL with a query: made through SQLAlchemy
    assert first._engine_ is not None
    first.close()
    again = AuditStore(url)  # at the current version: sqlite3 only
    try:
        assert again._engine_ is None
        assert again.head("nobody") is None and again.head_event("nobody") is None
        assert again.last_matching("nobody", ["config_loaded"]) is None
        assert again._engine_ is None
    finally:
        again.close()


def _schema(path: Path) -> dict[str, object]:
    """What SQLite holds of a database's tables: columns, indexes and their columns."""
    conn = sqlite3.connect(path)
    try:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        found: dict[str, object] = {}
        for table in tables:
            indexes = {
                name: (unique, [c[2] for c in conn.execute(f'PRAGMA index_info("{name}")')])
                for _, name, unique, *_ in conn.execute(f'PRAGMA index_list("{table}")')
            }
            found[table] = (list(conn.execute(f'PRAGMA table_info("{table}")')), indexes)
        return found
    finally:
        conn.close()


def test_a_new_sqlite_store_has_the_tables_sqlalchemy_would_make(tmp_path: Path) -> None:
    from sqlalchemy import create_engine

    from engine.ledger.tables import metadata
    from engine.state.tables import StateTables

    made = StateStore(tmp_path / "made.db", prefix="p_")
    made.set("p", "c", "k", 1)  # creates the tables on sqlite3
    made.close()
    audit = AuditStore(f"sqlite:///{tmp_path / 'made.db'}")
    assert audit._engine_ is None  # made without SQLAlchemy too
    audit.close()
    reference = create_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    with reference.begin() as conn:
        StateTables.build("p_").metadata.create_all(conn)
        metadata.create_all(conn)
    reference.dispose()
    made_schema, reference_schema = (
        _schema(tmp_path / "made.db"),
        _schema(tmp_path / "reference.db"),
    )
    assert sorted(made_schema) == sorted(reference_schema)
    for table, shape in reference_schema.items():
        assert made_schema[table] == shape, table


@pytest.mark.parametrize(
    "url",
    [
        "sqlite:///a/b.db",
        "sqlite:////abs/c.db",
        "sqlite:///:memory:",
        "sqlite://",
        "sqlite:///x.db?timeout=5",
        "sqlite:///my%20file.db",
        "sqlite+pysqlite:///x.db",
        "sqlite:///file:x?mode=memory&uri=true",
        "postgresql://u@h/db",
    ],
)
def test_only_a_plain_sqlite_url_is_read_without_sqlalchemy_and_as_it_reads_it(url: str) -> None:
    from sqlalchemy.engine import make_url

    found = sqlite_target(url)
    assert (found is not None) == (url in {"sqlite:///a/b.db", "sqlite:////abs/c.db"})
    if found is not None:  # the file SQLAlchemy would open
        assert str(found) == make_url(url).database
