"""Store schema versions: a version 1 store (made by hand) is migrated in place and keeps
verifying; a read-only open writes nothing; a store newer than the code is refused."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, create_engine, inspect, text

from engine.audit.errors import AuditStoreError
from engine.audit.keys import load_public_keys
from engine.audit.schema import SCHEMA_VERSION, frontier_text
from engine.audit.settings import AuditSettings
from engine.audit.store import AuditStore
from engine.audit.trail import AuditResources, open_resources
from engine.audit.verify import VerifyReport, verify_store
from engine.cli.main import cli
from tests.support.audit import fill, require_postgres

PRODUCER = "pipeline:legacy"
PG = "postgresql+psycopg://postgres{password}@127.0.0.1:5432/test"
HEAD_COLUMNS = ["producer", "seq", "mac", "frontier", "updated_at"]
RETENTION_COLUMNS = {"pruned_seq", "pruned_mac", "pruned_frontier"}


def v1_ddl(blob: str, real: str) -> list[str]:
    """The tables as version 1 made them: no audit_meta, no pruned_* columns."""
    return [
        "CREATE TABLE audit_events (producer VARCHAR(200) NOT NULL, seq BIGINT NOT NULL, "
        "event_id VARCHAR(64) NOT NULL UNIQUE, timestamp VARCHAR(32) NOT NULL, "
        "level VARCHAR(16) NOT NULL, category VARCHAR(32) NOT NULL, "
        "action VARCHAR(200) NOT NULL, pipeline VARCHAR(200), run_id VARCHAR(64), "
        f"user_id VARCHAR(200), stage VARCHAR(200), risk_score {real} NOT NULL, "
        f"mac VARCHAR(64) NOT NULL, body {blob} NOT NULL, PRIMARY KEY (producer, seq))",
        "CREATE INDEX ix_audit_events_timestamp ON audit_events (timestamp)",
        "CREATE INDEX ix_audit_events_run_id ON audit_events (run_id)",
        "CREATE TABLE audit_chain_heads (producer VARCHAR(200) NOT NULL PRIMARY KEY, "
        "seq BIGINT NOT NULL, mac VARCHAR(64) NOT NULL, frontier TEXT NOT NULL, "
        "updated_at VARCHAR(32) NOT NULL)",
    ]


@dataclass
class Backend:
    url: str  # what the engine opens
    raw: Engine  # for hand-made tables and looking behind the store's back
    v1_types: tuple[str, str]
    path: Path | None = None  # the SQLite file

    def execute(self, sql: str, params: object = None) -> None:
        with self.raw.begin() as conn:
            conn.execute(text(sql), params or {})

    def tables(self) -> set[str]:
        with self.raw.connect() as conn:
            return set(inspect(conn).get_table_names())

    def head_columns(self) -> set[str]:
        with self.raw.connect() as conn:
            return {c["name"] for c in inspect(conn).get_columns("audit_chain_heads")}


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)],
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "sqlite":
        path = tmp_path / "legacy.db"
        url = f"sqlite:///{path}"
        raw = create_engine(url)
        yield Backend(url, raw, ("BLOB", "FLOAT"), path)
        raw.dispose()
        return
    require_postgres()
    # A schema of its own, so other tests' tables in public are neither seen nor touched.
    schema = f"audit_migration_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG.format(password=""))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = PG.format(password="") + f"?options=-csearch_path%3D{schema}"
    raw = create_engine(url)
    try:
        yield Backend(url, raw, ("BYTEA", "DOUBLE PRECISION"))
    finally:
        raw.dispose()
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def settings(url: str) -> AuditSettings:
    return AuditSettings(store=url, compliance=False, checkpoint_every=4, flush_every=3)


def make_v1_store(backend: Backend, workspace: Path, tmp_path: Path, events: int = 6) -> None:
    """Sign ``events`` events with today's code in a scratch store, then copy them into
    version 1 tables made by hand."""
    scratch = open_resources(settings(f"sqlite:///{tmp_path / 'scratch.db'}"), workspace)
    try:
        fill(scratch.trail(PRODUCER), events)
        rows = list(scratch.store.iter_chain(PRODUCER))
        head = scratch.store.head(PRODUCER)
    finally:
        scratch.close()
    assert head is not None and head.seq == events
    for statement in v1_ddl(*backend.v1_types):
        backend.execute(statement)
    names = rows[0]._fields
    backend.execute(
        f"INSERT INTO audit_events ({', '.join(names)}) "
        f"VALUES ({', '.join(':' + n for n in names)})",
        [row._asdict() for row in rows],
    )
    backend.execute(
        f"INSERT INTO audit_chain_heads ({', '.join(HEAD_COLUMNS)}) "
        "VALUES (:producer, :seq, :mac, :frontier, :updated_at)",
        {
            "producer": PRODUCER,
            "seq": head.seq,
            "mac": head.mac,
            "frontier": frontier_text(head.frontier),
            "updated_at": "2020-01-01T00:00:00.000000Z",
        },
    )


def verify(res: AuditResources) -> VerifyReport:
    return verify_store(
        res.store,
        res.keyring,
        checkpoint_paths=[res.checkpoint_dir],
        public_keys=load_public_keys(res.workspace),
    )


def test_a_version_1_store_is_migrated_and_keeps_verifying(
    backend: Backend, workspace: Path, tmp_path: Path
) -> None:
    make_v1_store(backend, workspace, tmp_path)
    assert "audit_meta" not in backend.tables()
    assert not RETENTION_COLUMNS & backend.head_columns()

    res = open_resources(settings(backend.url), workspace)
    try:
        assert res.store.schema_version == SCHEMA_VERSION
        assert backend.head_columns() >= RETENTION_COLUMNS
        report = verify(res)  # the hand-copied events still check against their checkpoints
        assert report.ok and report.events == 6, report.to_dict()

        trail = res.trail(PRODUCER)
        fill(trail, 3)  # appends continue the old chain
        assert [e.seq for e in res.store.iter_chain(PRODUCER)] == list(range(1, 10))
        anchor = trail.prune(keep_last=4)  # the added columns work
        assert anchor is not None and anchor.seq == 5
        report = verify(res)
        assert report.ok, report.to_dict()
    finally:
        res.close()

    with backend.raw.connect() as conn:
        rows = conn.execute(text("SELECT name, value FROM audit_meta")).all()
    assert [tuple(r) for r in rows] == [("schema_version", str(SCHEMA_VERSION))]
    # Opening again finds the current version and changes nothing.
    with AuditStore(backend.url) as store:
        assert store.schema_version == SCHEMA_VERSION
        assert store.anchors()[PRODUCER].seq == 5


def test_concurrent_opens_migrate_once(backend: Backend, workspace: Path, tmp_path: Path) -> None:
    make_v1_store(backend, workspace, tmp_path)

    def open_and_close(_: int) -> int:
        with AuditStore(backend.url) as store:
            return store.schema_version

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(open_and_close, range(4))) == [SCHEMA_VERSION] * 4
    assert backend.head_columns() >= RETENTION_COLUMNS
    with backend.raw.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_meta")).scalar() == 1


def test_a_read_only_open_reads_a_version_1_store_and_writes_nothing(
    backend: Backend, workspace: Path, tmp_path: Path
) -> None:
    make_v1_store(backend, workspace, tmp_path)
    tables_before = backend.tables()
    columns_before = backend.head_columns()
    backend.raw.dispose()
    file_before = backend.path.read_bytes() if backend.path else None

    res = open_resources(settings(backend.url), workspace, create=False)
    try:
        assert res.store.schema_version == 1
        assert res.store.anchors() == {}  # version 1 had no retention
        head = res.store.head(PRODUCER)
        assert head is not None and head.seq == 6
        report = verify(res)
        assert report.ok and report.events == 6, report.to_dict()
    finally:
        res.close()

    if backend.path is not None:
        assert backend.path.read_bytes() == file_before
    assert backend.tables() == tables_before
    assert backend.head_columns() == columns_before


def test_engine_audit_verify_accepts_a_version_1_store(
    backend: Backend, workspace: Path, tmp_path: Path
) -> None:
    make_v1_store(backend, workspace, tmp_path)
    result = CliRunner().invoke(
        cli, ["audit", "verify", "--store", backend.url, "--workspace", str(workspace)]
    )
    assert result.exit_code == 0, result.output


def test_a_newer_store_is_refused(backend: Backend, workspace: Path) -> None:
    AuditStore(backend.url).close()
    backend.execute("UPDATE audit_meta SET value = :v", {"v": str(SCHEMA_VERSION + 1)})
    for create in (True, False):
        with pytest.raises(AuditStoreError) as info:
            AuditStore(backend.url, create=create)
        message = str(info.value)
        assert info.value.store in message
        assert f"schema version is {SCHEMA_VERSION + 1}" in message
        assert f"version {SCHEMA_VERSION} that this engine knows" in message
    with backend.raw.connect() as conn:  # left as it was
        assert conn.execute(text("SELECT value FROM audit_meta")).scalar() == str(
            SCHEMA_VERSION + 1
        )


@pytest.mark.services
def test_the_refusal_hides_the_password() -> None:
    require_postgres()
    schema = f"audit_migration_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG.format(password=""))
    with admin.begin() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
        conn.execute(text(f"CREATE TABLE {schema}.audit_meta (name TEXT, value TEXT)"))
        conn.execute(text(f"INSERT INTO {schema}.audit_meta VALUES ('schema_version', '99')"))
    try:
        url = PG.format(password=":s3cret-pw") + f"?options=-csearch_path%3D{schema}"
        with pytest.raises(AuditStoreError, match="schema version is 99") as info:
            AuditStore(url)
        assert "s3cret-pw" not in str(info.value)
        assert "postgres:***@127.0.0.1:5432/test" in str(info.value)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def test_an_unreadable_version_is_an_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'odd.db'}"
    AuditStore(url).close()
    with sqlite3.connect(tmp_path / "odd.db") as conn:
        conn.execute("UPDATE audit_meta SET value = 'two'")
    conn.close()
    with pytest.raises(AuditStoreError, match="unreadable schema version"):
        AuditStore(url)


def test_a_read_only_open_of_a_database_without_audit_tables_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    sqlite3.connect(path).close()
    with pytest.raises(AuditStoreError, match=r"not an audit store \(no audit tables\)"):
        AuditStore(f"sqlite:///{path}", create=False)
    assert path.stat().st_size == 0
