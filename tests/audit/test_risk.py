"""Risk scores: base, contributions with reason codes, aggregates, thresholds, explain."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from engine.audit import AuditCategory, AuditLevel, AuditSystem, Outcome
from engine.cli.audit import audit
from engine.compliance.risk import RiskModel, aggregate_risk, risk_band, risk_score


def draft(**fields: Any) -> dict[str, Any]:
    base = {
        "timestamp": "2024-01-15T10:30:00.000000Z",
        "level": "INFO",
        "category": "INVENTORY",
        "action": "inventory_modification",
        "outcome": "success",
        "user_id": "u",
        "actor": "api",
        "details": {},
    }
    return base | fields


def codes(model: RiskModel, **fields: Any) -> list[str]:
    return [c.code for c in model.contributions(draft(**fields))]


def test_base_and_bands() -> None:
    assert risk_score(AuditLevel.INFO, AuditCategory.INVENTORY) == 0.1
    assert risk_score(AuditLevel.CRITICAL, AuditCategory.SECURITY) == 1.0
    assert risk_band(0.1) == "minimal" and risk_band(0.85) == "high"
    custom = {"low": 0.1, "medium": 0.3, "high": 0.6, "critical": 0.7}
    assert risk_band(0.65, custom) == "high" and risk_band(0.7, custom) == "critical"


def test_contributions_have_reason_codes() -> None:
    model = RiskModel()
    assert codes(model) == []
    assert codes(model, timestamp="2024-01-15T02:00:00.000000Z") == ["off_hours"]
    assert codes(model, timestamp="2024-01-15T02:00:00.000000Z", actor="engine") == []
    assert codes(model, details={"quantity": 5000, "previous_quantity": 10}) == [
        "large_quantity_change"
    ]
    assert codes(model, details={"quantity": 110, "previous_quantity": 100}) == []
    assert codes(model, action="records_delete", record_count=500) == ["bulk_delete"]
    assert codes(model, action="records_delete", record_count=3) == []
    assert codes(model, action="role_granted") == ["privilege_change"]
    assert codes(model, action="config_changed", category="COMPLIANCE") == ["config_change"]
    assert codes(model, action="integrity_check", outcome="failure") == ["integrity_failure"]
    sensitive = model.contributions(draft(), sensitive="PCI_DSS 3.4")
    assert [c.code for c in sensitive] == ["sensitive_data"]


def test_failed_auth_burst_outranks_routine_events() -> None:
    model = RiskModel()
    scores = []
    for minute in range(5):
        fields = {
            "timestamp": f"2024-01-15T10:3{minute}:00.000000Z",
            "action": "login_failed",
            "outcome": "failure",
            "level": "WARNING",
            "category": "SECURITY",
            "user_id": "eve",
        }
        extra = model.contributions(draft(**fields))
        scores.append(model.score("WARNING", "SECURITY", extra))
    routine = model.score("INFO", "SECURITY", model.contributions(draft(action="login")))
    assert scores[0] == scores[1] == 0.5 < scores[2] == 0.8  # the third in 10 minutes
    assert min(scores) > routine
    # Another user's failures are counted apart.
    other = model.contributions(
        draft(action="login_failed", outcome="failure", user_id="bob", category="SECURITY")
    )
    assert [c.code for c in other] == []


def test_aggregate_formula() -> None:
    assert aggregate_risk([]) == 0.0
    assert aggregate_risk([0.1] * 1000) == pytest.approx(0.1)  # many routine events stay low
    assert aggregate_risk([0.9, 0.1]) == pytest.approx(0.7 * 0.9 + 0.3 * 0.5)
    assert aggregate_risk([0.9] * 5 + [0.0] * 10) == pytest.approx(0.9)
    assert 0.0 <= aggregate_risk([1.0] * 10) <= 1.0


def test_explain_command(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    with AuditSystem(secret_key="k", workspace=ws) as system:
        system.risk_model.business_hours = None
        ids = [
            system.log_event(
                AuditLevel.WARNING,
                AuditCategory.SECURITY,
                "login_failed",
                user_id="eve",
                outcome=Outcome.FAILURE,
                details={"note": "card 4111111111111111"},
            )
            for _ in range(3)
        ]
    runner = CliRunner(env={"AUDIT_SECRET_KEY": "k"})
    result = runner.invoke(audit, ["explain", ids[2], "--workspace", str(ws), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = orjson.loads(result.output)
    got = {c["code"]: c["weight"] for c in data["contributions"]}
    got.pop("off_hours", None)  # the CLI explains with the default business hours
    assert got == {
        "level": 0.4,
        "category": 0.1,
        "failed_auth_burst": 0.3,
        "sensitive_data": 0.2,
    }
    assert data["score"] == 1.0 == data["stored_risk_score"]
    assert "PCI_DSS-3.4-pan-masked" in {r["rule_id"] for r in data["rules"]}
    human = runner.invoke(audit, ["explain", ids[0], "--workspace", str(ws)])
    assert human.exit_code == 0 and "0.700" in human.output  # stored: 0.4 + 0.1 + 0.2
    assert "sensitive_data" in human.output and "failed_auth_burst" not in human.output
    missing = runner.invoke(audit, ["explain", "nope", "--workspace", str(ws)])
    assert missing.exit_code == 1 and "no event nope" in missing.output
