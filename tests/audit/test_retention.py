"""Retention: pruning leaves a signed anchor; deleting from the start without one is caught."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from engine.audit import AuditCategory, AuditLevel, AuditSystem
from engine.audit.keys import load_public_keys
from engine.audit.trail import AuditResources
from engine.audit.verify import ProblemKind, verify_store
from engine.cli.audit import audit
from tests.support.audit import fill

PRODUCER = "pipeline:sync"


def check(res: AuditResources) -> list[ProblemKind]:
    report = verify_store(
        res.store,
        res.keyring,
        checkpoint_paths=[res.checkpoint_dir],
        public_keys=load_public_keys(res.workspace),
    )
    return [p.kind for p in report.all_problems()]


def test_prune_keeps_the_trail_verifiable(resources: AuditResources) -> None:
    fill(resources.trail(PRODUCER), 10)
    trail = resources.trail(PRODUCER)
    anchor = trail.prune(keep_last=4)
    assert anchor is not None and anchor.seq == 6
    fill(trail, 3)  # the chain goes on after pruning
    seqs = [e.seq for e in resources.store.iter_chain(PRODUCER)]
    assert seqs == list(range(7, 15))  # 7..10, the retention notice #11, then 12..14
    assert check(resources) == []
    # Pruning again with nothing old enough is a no-op.
    assert trail.prune(keep_last=100) is None


def test_deleting_from_the_start_is_not_pruning(resources: AuditResources) -> None:
    fill(resources.trail(PRODUCER), 8)
    engine = create_engine(f"sqlite:///{resources.workspace / 'audit.db'}")
    with engine.begin() as conn:
        (mac3,) = conn.execute(text("select mac from audit_events where seq = 3")).one()
        conn.execute(text("delete from audit_events where seq <= 3"))
        conn.execute(
            text("update audit_chain_heads set pruned_seq = 3, pruned_mac = :m"), {"m": mac3}
        )
    engine.dispose()
    assert ProblemKind.UNSIGNED_PRUNE in check(resources)


def test_prune_by_age(resources: AuditResources) -> None:
    trail = resources.trail(PRODUCER)
    old = datetime.now(UTC) - timedelta(days=400)
    for i in range(3):
        trail.emit(
            level=AuditLevel.INFO,
            category=AuditCategory.SYSTEM,
            action="old",
            details={"i": i},
            timestamp=old,
        )
    fill(trail, 2)
    anchor = trail.prune(before=datetime.now(UTC) - timedelta(days=365))
    assert anchor is not None and anchor.seq == 3
    assert [e.action for e in resources.store.iter_chain(PRODUCER)] == [
        "batch_read",
        "batch_read",
        "retention_applied",
    ]
    assert check(resources) == []


def test_audit_system_honours_max_events_and_export_still_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_SECRET_KEY", "k")
    monkeypatch.setenv("AUDIT_MAX_EVENTS", "5")
    ws = tmp_path / "ws"
    with AuditSystem(workspace=ws) as system:
        for i in range(12):
            system.log_event(AuditLevel.INFO, AuditCategory.INVENTORY, "move", f"SKU{i}")
    with AuditSystem(workspace=ws) as system:
        stats = system.get_statistics()
        assert stats["total_events"] == 6  # the newest 5 and the retention notice
    runner = CliRunner()
    result = runner.invoke(audit, ["verify", "--workspace", str(ws)])
    assert result.exit_code == 0, result.output
    export = tmp_path / "trail.jsonl"
    result = runner.invoke(audit, ["export", "--workspace", str(ws), "-o", str(export)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        audit,
        [
            "verify",
            "--store",
            str(export),
            "--checkpoint",
            str(ws / "checkpoints"),
            "--public-key",
            str(ws / "audit-ed25519.pub"),
        ],
    )
    assert result.exit_code == 0, result.output
