"""The seed's Python API: AuditSystem, log_event, verify_integrity, statistics, rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import engine.audit as audit
from engine.audit import (
    AuditCategory,
    AuditLevel,
    AuditSystem,
    ComplianceRule,
    ComplianceStandard,
)
from engine.settings import SettingsError


def test_public_api_is_pinned() -> None:
    assert sorted(audit.__all__) == [
        "AuditCategory",
        "AuditError",
        "AuditEvent",
        "AuditKeyError",
        "AuditLevel",
        "AuditObserver",
        "AuditSettings",
        "AuditStoreError",
        "AuditSystem",
        "CheckpointError",
        "ComplianceReport",
        "ComplianceRule",
        "ComplianceStandard",
        "Outcome",
        "VerifyReport",
        "create_observer",
        "verify_jsonl",
        "verify_store",
    ]
    assert [m.name for m in AuditLevel] == ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    assert [m.name for m in ComplianceStandard] == [
        "SOX",
        "PCI_DSS",
        "GDPR",
        "HIPAA",
        "ISO27001",
        "CUSTOM",
    ]


def seed_example(system: AuditSystem) -> tuple[str, str]:
    first = system.log_event(
        level=AuditLevel.INFO,
        category=AuditCategory.INVENTORY,
        action="inventory_modification",
        resource="SKU001",
        details={
            "quantity": 100,
            "previous_quantity": 50,
            "user_id": "user123",
            "timestamp": "2024-01-15T10:30:00Z",
        },
        user_id="user123",
        ip_address="192.168.1.100",
    )
    second = system.log_event(
        level=AuditLevel.WARNING,
        category=AuditCategory.SECURITY,
        action="authentication_failed",
        resource="user_account",
        details={"attempts": 3, "password": "hunter2", "card": "4111 1111 1111 1111"},
        user_id="admin",
    )
    return first, second


def test_seed_usage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / "home"))
    with AuditSystem(secret_key="your-secret-key") as system:
        system.risk_model.business_hours = None  # no off-hours contribution, whatever the time
        first, second = seed_example(system)
        assert len(first) == 32 and first != second
        assert system.verify_integrity(first) and system.verify_integrity(second)
        assert not system.verify_integrity("no-such-event")
        stats = system.get_statistics()
        # The card number fired PCI DSS 3.4: masked, and a COMPLIANCE event (ERROR) logged.
        assert stats["total_events"] == 3
        assert stats["events_by_level"] == {"INFO": 1, "WARNING": 1, "ERROR": 1}
        assert stats["events_by_category"] == {"INVENTORY": 1, "SECURITY": 1, "COMPLIANCE": 1}
        # 0.5 + 0.2 for sensitive data; the compliance event: ERROR 0.7 + COMPLIANCE 0.05.
        assert stats["average_risk_score"] == pytest.approx((0.1 + 0.7 + 0.75) / 3)
        assert stats["active_rules"] == 0
        system.compliance_rules["custom_001"] = ComplianceRule(
            rule_id="custom_001",
            name="Custom Inventory Rule",
            description="Custom rule for inventory operations",
            standard=ComplianceStandard.CUSTOM,
            severity=AuditLevel.WARNING,
            conditions={"action": "inventory_modification", "threshold": 0.5},
            actions=["log_event", "notify_admin"],
            enabled=True,
        )
        assert system.get_statistics()["active_rules"] == 1
        (event,) = system.query_events(action="authentication_failed")
        assert event.details["password"] == "***"
        assert event.details["card"] == "411111******1111"  # PCI DSS 3.4: first 6, last 4
        end = datetime.now(UTC) + timedelta(seconds=1)
        report = system.generate_compliance_report(
            end - timedelta(days=30), end, [ComplianceStandard.CUSTOM]
        )
        assert report.total_events >= 2
        # custom_001 wants a risk score of at least 0.5; the inventory event scored 0.1.
        assert report.rule_matches == {}
        assert report.rule("custom_001").status == "pass"
        assert report.events_by_category["SECURITY"] >= 1
        # Reading the trail was itself audited.
        reads = system.query_events(action="audit_trail_read", limit=None)
        assert {e.details["operation"] for e in reads} >= {"query", "compliance_report"}
    assert (tmp_path / "home" / "audit.db").exists()
    assert list((tmp_path / "home" / "checkpoints").rglob("*.json"))


def test_verify_integrity_detects_tampering(tmp_path: Path) -> None:
    with AuditSystem(secret_key="k", workspace=tmp_path) as system:
        ids = [seed_example(system)[0] for _ in range(3)]
        engine = create_engine(f"sqlite:///{tmp_path / 'audit.db'}")
        with engine.begin() as conn:
            conn.execute(
                text(
                    "update audit_events set body = replace(body, 'SKU001', 'SKU999') "
                    "where event_id = :e"
                ),
                {"e": ids[1]},
            )
        engine.dispose()
        assert system.verify_integrity(ids[0])
        assert not system.verify_integrity(ids[1])
    with AuditSystem(secret_key="another key", workspace=tmp_path) as other:
        assert not other.verify_integrity(ids[0])  # wrong key


def test_environment_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDIT_SECRET_KEY", "env-key")
    monkeypatch.setenv("AUDIT_MAX_EVENTS", "1000000")
    monkeypatch.setenv("AUDIT_RETENTION_DAYS", "365")
    with AuditSystem(workspace=tmp_path) as system:
        assert system.max_events == 1_000_000 and system.retention_days == 365
        assert system._resources.keyring.current == b"env-key"
    monkeypatch.setenv("AUDIT_MAX_EVENTS", "lots")
    with pytest.raises(SettingsError, match=r"AUDIT_MAX_EVENTS: not an integer \('lots'\)"):
        AuditSystem(workspace=tmp_path)


def test_debug_mode_logs_ids_not_details(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with AuditSystem(secret_key="k", workspace=tmp_path) as system:
        system.debug_mode = True
        with caplog.at_level("DEBUG", logger="engine.audit"):
            event_id = seed_example(system)[0]
    assert any(event_id in r.getMessage() for r in caplog.records)
    assert not any("hunter2" in r.getMessage() for r in caplog.records)


def test_settings_import_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, engine.model.audit; "
        "print('sqlalchemy' in sys.modules, 'cryptography' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False"]
    assert set(dir(audit)) >= set(audit.__all__)
    with pytest.raises(AttributeError):
        audit.NotAThing  # noqa: B018
