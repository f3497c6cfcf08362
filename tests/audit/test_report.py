"""Compliance reports: content, formats, retention conflicts, tampering shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from engine.audit import AuditCategory, AuditLevel, AuditSystem, ComplianceStandard, Outcome
from engine.cli.audit import audit
from engine.compliance.reports.render import render, to_markdown
from engine.compliance.retention import config_facts, retention_conflicts
from engine.ledger.events import ComplianceStandard as Std
from engine.settings import EngineSettings


def _fill(system: AuditSystem) -> list[str]:
    ids = [
        system.log_event(
            AuditLevel.WARNING,
            AuditCategory.SECURITY,
            "login_failed",
            user_id="eve",
            outcome=Outcome.FAILURE,
            ip_address="10.0.0.1",
            resource="portal",
        )
        for _ in range(5)
    ]
    ids.append(
        system.log_event(
            AuditLevel.INFO,
            AuditCategory.INVENTORY,
            "inventory_modification",
            resource="SKU1",
            user_id="bob",
            ip_address="10.0.0.2",
            details={"quantity": 3},
        )
    )
    return ids


def _window() -> tuple[datetime, datetime]:
    end = datetime.now(UTC) + timedelta(seconds=1)
    return end - timedelta(days=1), end


def test_report_content(tmp_path: Path) -> None:
    with AuditSystem(secret_key="k", workspace=tmp_path) as system:
        ids = _fill(system)
        start, end = _window()
        report = system.generate_compliance_report(start, end, [Std.PCI_DSS, Std.SOX])
    d = report.to_dict()
    assert len(d["report_id"]) == 32 and d["period"]["start"] == start.isoformat()
    assert d["total_events"] == 7  # 6 logged + the burst's compliance event
    # The fifth failure was raised to CRITICAL by the alert; its compliance event too.
    assert d["events_by_level"] == {"WARNING": 4, "INFO": 1, "CRITICAL": 2}
    assert {r["standard"] for r in d["rules"]} == {"PCI_DSS", "SOX"}
    burst = report.rule("PCI_DSS-10.2.1.4-auth-burst")
    assert burst.status == "fail" and burst.evidence == [ids[4]]
    fields = report.rule("PCI_DSS-10.2.2-fields")
    assert fields.status == "pass"  # every event has user, type, time, outcome, origin, resource
    assert report.rule("SOX-404-completeness").status == "pass"
    assert d["verification"]["ok"] and d["verification"]["events"] >= 7
    assert d["rule_matches"] == {"PCI_DSS-10.2.1.4-auth-burst": 1}
    assert d["risk_analysis"]["by_actor"]["eve"] > d["risk_analysis"]["by_actor"]["bob"]
    md = to_markdown(report)
    assert "| FAIL | PCI_DSS | 10.2.1.4 | PCI_DSS-10.2.1.4-auth-burst | 1 |" in md
    assert ids[4] in md and "Chain verification: OK" in md
    assert orjson.loads(render(report, "json"))["report_id"] == report.report_id
    with pytest.raises(ValueError, match="unknown report format"):
        render(report, "pdf")


def test_missing_fields_fail_10_2_2(tmp_path: Path) -> None:
    with AuditSystem(secret_key="k", workspace=tmp_path) as system:
        eid = system.log_event(AuditLevel.INFO, AuditCategory.USER_ACTION, "opened")
        start, end = _window()
        report = system.generate_compliance_report(start, end, [Std.PCI_DSS])
    rule = report.rule("PCI_DSS-10.2.2-fields")
    assert rule.status == "fail" and eid in rule.evidence
    assert "missing: user_id" in rule.reasons[0] and "resource" in rule.reasons[0]


def test_retention_conflicts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    facts = config_facts(EngineSettings.load({"AUDIT_RETENTION_DAYS": "90"}), declared={"crm": 30})
    conflicts = retention_conflicts(facts, {Std.PCI_DSS, Std.GDPR})
    assert any("below the 365 days PCI_DSS requires" in c for c in conflicts)
    assert any("crm declares 30 days" in c and "kept 90 days" in c for c in conflicts)
    assert any("declares 30 days (GDPR maximum) but PCI_DSS requires" in c for c in conflicts)
    kept_400 = EngineSettings.load({"AUDIT_RETENTION_DAYS": "400"})
    assert retention_conflicts(config_facts(kept_400), {Std.PCI_DSS}) == []
    monkeypatch.setenv("AUDIT_RETENTION_DAYS", "30")
    with AuditSystem(secret_key="k", workspace=tmp_path) as system:
        _fill(system)
        start, end = _window()
        report = system.generate_compliance_report(start, end, [Std.PCI_DSS])
    retention = report.rule("PCI_DSS-10.5.1-retention")
    assert retention.status == "fail" and "AUDIT_RETENTION_DAYS=30" in retention.reasons[0]
    assert report.retention["required_minimum_days"] == {"PCI_DSS": 365}
    assert report.retention["conflicts"]


def test_purge_leaves_a_verifiable_trail_in_the_report(tmp_path: Path) -> None:
    with AuditSystem(secret_key="k", workspace=tmp_path) as system:
        _fill(system)
        assert system.apply_retention(max_events=2)
        start, end = _window()
        report = system.generate_compliance_report(start, end)
        assert report.verification is not None and report.verification["ok"]
        purge = system.query_events(action="retention_applied")
        assert purge and purge[0].details["pruned_through"] >= 1


def test_tampering_shows_in_the_report(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    with AuditSystem(secret_key="k", workspace=ws) as system:
        _fill(system)
    engine = create_engine(f"sqlite:///{ws / 'audit.db'}")
    with engine.begin() as conn:
        conn.execute(text("update audit_events set body = replace(body, 'SKU1', 'SKU9')"))
    engine.dispose()
    runner = CliRunner(env={"AUDIT_SECRET_KEY": "k"})
    result = runner.invoke(
        audit, ["report", "--workspace", str(ws), "--format", "json", "--standard", "PCI_DSS"]
    )
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.output)
    assert not data["verification"]["ok"] and data["verification"]["problems"]
    assert data["recommendations"][0].startswith("The audit trail does not verify")
    md = runner.invoke(audit, ["report", "--workspace", str(ws), "--format", "md"])
    assert md.exit_code == 0 and "Chain verification: FAILED" in md.output
    human = runner.invoke(audit, ["report", "--workspace", str(ws), "--from", "1d"])
    assert human.exit_code == 0 and "NOT VERIFIED" in human.output
    assert ComplianceStandard.PCI_DSS.value in human.output


def test_rules_known_only_from_their_triggers_are_reported(tmp_path: Path) -> None:
    from engine.audit import ComplianceRule

    ws = tmp_path / "ws"
    with AuditSystem(secret_key="k", workspace=ws) as system:
        system.compliance_rules["exports"] = ComplianceRule(
            rule_id="exports",
            name="Exports",
            description="every export",
            standard=Std.SOX,
            severity=AuditLevel.WARNING,
            conditions={"action": "export"},
            actions=["log_event"],
            clause="404",
        )
        eid = system.log_event(AuditLevel.INFO, AuditCategory.USER_ACTION, "export")
    # The CLI knows only the built-in rules: the trigger event brings this one in.
    result = CliRunner(env={"AUDIT_SECRET_KEY": "k"}).invoke(
        audit, ["report", "--workspace", str(ws), "--format", "json", "--standard", "SOX"]
    )
    data = orjson.loads(result.output)
    (rule,) = [r for r in data["rules"] if r["rule_id"] == "exports"]
    assert rule["status"] == "fail" and rule["evidence"] == [eid] and rule["clause"] == "404"
    other = CliRunner(env={"AUDIT_SECRET_KEY": "k"}).invoke(
        audit, ["report", "--workspace", str(ws), "--format", "json", "--standard", "GDPR"]
    )
    assert "exports" not in {r["rule_id"] for r in orjson.loads(other.output)["rules"]}
