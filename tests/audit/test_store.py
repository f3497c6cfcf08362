"""Stores: keys on disk, fail-closed errors, two processes appending to one chain, PostgreSQL."""

from __future__ import annotations

import multiprocessing
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

import pytest
from pydantic import SecretStr

from engine.audit.wiring import open_resources
from engine.ledger.errors import AuditStoreError
from engine.ledger.events import AuditCategory, AuditLevel
from engine.ledger.keys import (
    HMAC_KEYRING_FILE,
    SIGNING_KEY_FILE,
    load_keyring,
    load_public_keys,
)
from engine.ledger.store import SQLITE_PAGE_SIZE, AuditStore
from engine.ledger.verify import verify_store
from engine.model.audit import AuditSettings
from engine.settings import EngineSettings
from tests.support.audit import fill, require_postgres

PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def test_generated_keys_are_private_and_announced(
    workspace: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="engine.audit"):
        res = open_resources(AuditSettings(), workspace)
        res.close()
    for name in (HMAC_KEYRING_FILE, SIGNING_KEY_FILE):
        mode = stat.S_IMODE((workspace / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
        assert any(str(workspace / name) in r.getMessage() for r in caplog.records)
    # The second open reuses the same keys and says nothing.
    caplog.clear()
    again = open_resources(AuditSettings(), workspace)
    again.close()
    assert not caplog.records
    assert load_keyring(workspace).current_id == again.keyring.current_id


def test_key_precedence(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = EngineSettings.load({"AUDIT_SECRET_KEY": "from-env"})
    with closing(open_resources(AuditSettings(), workspace, env=env)) as resources:
        assert resources.keyring.current == b"from-env"
    table = AuditSettings(key=SecretStr("from-settings"))
    with closing(open_resources(table, workspace, env=env)) as resources:
        assert resources.keyring.current == b"from-settings"
    assert load_keyring(workspace, key="from-settings").current == b"from-settings"
    assert not (workspace / HMAC_KEYRING_FILE).exists()


def test_unreachable_store_fails_closed_without_credentials() -> None:
    with pytest.raises(AuditStoreError) as info:
        AuditStore("postgresql+psycopg://auditor:s3cret-pw@127.0.0.1:1/audit")
    message = str(info.value)
    assert "s3cret-pw" not in message
    assert "auditor:***@127.0.0.1:1/audit" in message


def test_store_failure_during_append_raises(workspace: Path) -> None:
    res = open_resources(AuditSettings(), workspace)
    try:
        trail = res.trail("pipeline:sync")
        fill(trail, 2)
        res.store.close()  # drop pooled connections; the next one opens the path again
        for suffix in ("", "-wal", "-shm"):
            (workspace / f"audit.db{suffix}").unlink(missing_ok=True)
        (workspace / "audit.db").mkdir()  # the store's file is now unusable
        trail.emit(level=AuditLevel.INFO, category=AuditCategory.SYSTEM, action="x")
        with pytest.raises(AuditStoreError, match=r"audit store sqlite:///.*audit\.db"):
            trail.flush()
        assert trail.pending == 1  # nothing was dropped silently
    finally:
        res.close()


def test_one_flush_larger_than_a_statement_lands_whole(workspace: Path) -> None:
    # SQLite binds at most 32,766 parameters per statement: a batch of 5,000 events is
    # inserted as several statements of many rows, in one transaction, in order.
    res = open_resources(AuditSettings(flush_every=100_000), workspace)
    try:
        ids = fill(res.trail("pipeline:big"), 5_000)
        stored = list(res.store.iter_chain("pipeline:big"))
        assert [e.seq for e in stored] == list(range(1, 5_001))
        assert [e.event_id for e in stored] == ids
        report = verify_store(
            res.store,
            res.keyring,
            checkpoint_paths=[res.checkpoint_dir],
            public_keys=load_public_keys(workspace),
        )
        assert report.ok and report.events == 5_000, report.to_dict()
        with sqlite3.connect(workspace / "audit.db") as db:
            assert db.execute("PRAGMA page_size").fetchone() == (SQLITE_PAGE_SIZE,)
    finally:
        res.close()


def test_unsupported_dialect_is_refused() -> None:
    with pytest.raises(AuditStoreError, match="unsupported"):
        AuditStore("mysql://u:p@localhost/db")


def _writer(url: str, workspace: str, n: int) -> None:
    res = open_resources(AuditSettings(store=url, flush_every=7), Path(workspace))
    try:
        fill(res.trail("pipeline:shared"), n)
    finally:
        res.close()


def _run_two_writers(url: str, workspace: Path, n: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(url, str(workspace), n)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0


def test_two_processes_append_to_one_sqlite_chain(workspace: Path) -> None:
    open_resources(AuditSettings(), workspace).close()  # keys exist before both start
    url = f"sqlite:///{workspace / 'audit.db'}"
    _run_two_writers(url, workspace, 200)
    res = open_resources(AuditSettings(store=url), workspace)
    try:
        seqs = [e.seq for e in res.store.iter_chain("pipeline:shared")]
        assert seqs == list(range(1, 401))
        report = verify_store(
            res.store,
            res.keyring,
            checkpoint_paths=[res.checkpoint_dir],
            public_keys=load_public_keys(workspace),
        )
        assert report.ok, report.to_dict()
    finally:
        res.close()


@pytest.fixture
def pg_url() -> str:
    require_postgres()
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(text("drop table if exists audit_events, audit_chain_heads"))
    engine.dispose()
    return PG_URL


@pytest.mark.services
def test_postgresql_two_processes_and_verify(pg_url: str, workspace: Path) -> None:
    open_resources(AuditSettings(), workspace).close()
    _run_two_writers(pg_url, workspace, 150)
    res = open_resources(AuditSettings(store=pg_url), workspace)
    try:
        seqs = [e.seq for e in res.store.iter_chain("pipeline:shared")]
        assert seqs == list(range(1, 301))
        report = verify_store(
            res.store,
            res.keyring,
            checkpoint_paths=[res.checkpoint_dir],
            public_keys=load_public_keys(workspace),
        )
        assert report.ok, report.to_dict()
        # Split across forked workers, each with its own PostgreSQL connections.
        split = verify_store(
            res.store,
            res.keyring,
            checkpoint_paths=[res.checkpoint_dir],
            public_keys=load_public_keys(workspace),
            workers=3,
        )
        assert split.to_dict() == report.to_dict()
        assert split.events == 300
        stats = res.store.stats()
        assert stats.total_events == 300
    finally:
        res.close()


def test_unusable_workspace_is_a_key_error(tmp_path: Path) -> None:
    from engine.ledger.errors import AuditKeyError

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.raises(AuditKeyError, match="cannot write key file"):
        open_resources(AuditSettings(), blocker / ".engine")
