"""Helpers of the audit tests: events on a trail, the machine's PostgreSQL, raw store SQL."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from engine.audit.events import AuditCategory, AuditLevel
from engine.audit.system import AuditSystem
from engine.audit.trail import AuditTrail
from engine.runtime.observer import RunInfo


def fill(trail: AuditTrail, n: int, *, action: str = "batch_read") -> list[str]:
    ids = [
        trail.emit(
            level=AuditLevel.INFO,
            category=AuditCategory.INTEGRATION,
            action=action,
            resource="data/inventory.csv",
            pipeline="sync",
            run_id="run-1",
            stage="warehouse",
            record_count=i,
            digest=f"{i:064x}",
            details={"i": i},
        )
        for i in range(n)
    ]
    trail.close()
    return ids


def env_requires_services() -> bool:
    return os.environ.get("ENGINE_REQUIRE_SERVICES") == "1"


def require_postgres() -> None:
    """Skip the test when the machine's PostgreSQL is unreachable (fail under
    ENGINE_REQUIRE_SERVICES=1)."""
    try:
        import psycopg

        psycopg.connect(
            "host=127.0.0.1 port=5432 user=postgres dbname=test", connect_timeout=3
        ).close()
    except Exception:
        if env_requires_services():
            pytest.fail("PostgreSQL at 127.0.0.1:5432 (db test) is required but unreachable")
        pytest.skip("PostgreSQL at 127.0.0.1:5432 (user postgres, db test) is not reachable")


def store_sql(workspace: Path, statement: str, **params: object) -> list[tuple[object, ...]]:
    """Run SQL against a workspace's default SQLite store, as an attacker with file access."""
    engine = create_engine(f"sqlite:///{workspace / 'audit.db'}")
    try:
        with engine.begin() as conn:
            result = conn.execute(text(statement), params)
            return [tuple(r) for r in result.all()] if result.returns_rows else []
    finally:
        engine.dispose()


def log_events(ws: Path, n: int, start: int = 0, producer: str = "pipeline:sync") -> None:
    """``n`` API events on one chain through AuditSystem (checkpoints every 5)."""
    with AuditSystem(workspace=ws, producer=producer, checkpoint_every=5) as system:
        for i in range(start, start + n):
            system.log_event(
                level=AuditLevel.INFO,
                category=AuditCategory.INVENTORY,
                action="batch_read",
                resource=f"SKU{i:03d}",
                details={"quantity": i},
            )


def run_info(run_id: str = "run-1") -> RunInfo:
    return RunInfo(
        run_id=run_id,
        pipeline="orders",
        pipeline_file=None,
        pipeline_sha256=None,
        started_at=datetime.now(UTC),
        user="alice",
        host="build-01",
    )
