"""The rule engine: seed conditions, JMESPath, thresholds, windows, actions, rules files,
switches and the built-in detectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.audit import AuditCategory, AuditLevel, AuditSystem, ComplianceRule, Outcome
from engine.compliance.rules.conditions import RuleError, compile_rule
from engine.compliance.rules.detect import find_cards, find_identifiers, pseudonym
from engine.compliance.rules.model import EventView
from engine.compliance.rules.policy import TRIGGERED_ACTION, ComplianceHalt, enabled_standards
from engine.config.rules_file import load_rules_file, parse_rules
from engine.errors import ConfigError
from engine.ledger.events import ComplianceStandard
from engine.model.audit import AuditSettings
from engine.settings import EngineSettings

STAMP = "2024-01-15T10:30:00.000000Z"


def draft(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "e1",
        "timestamp": STAMP,
        "level": "INFO",
        "category": "INVENTORY",
        "action": "inventory_modification",
        "outcome": "success",
        "user_id": "u1",
        "details": {},
        "risk_score": 0.1,
    }
    base.update(fields)
    return base


def rule(conditions: dict[str, Any], actions: list[str] | None = None, **kw: Any) -> ComplianceRule:
    return ComplianceRule(
        rule_id=kw.pop("rule_id", "r1"),
        name="test rule",
        description="a test rule",
        standard=kw.pop("standard", ComplianceStandard.CUSTOM),
        severity=kw.pop("severity", AuditLevel.WARNING),
        conditions=conditions,
        actions=actions if actions is not None else ["log_event"],
        **kw,
    )


def fires(r: ComplianceRule, **fields: Any) -> bool:
    return compile_rule(r).evaluate(EventView(draft(**fields))) is not None


def test_seed_conditions_threshold_and_value_threshold() -> None:
    seed = rule({"action": "inventory_modification", "threshold": 0.5})
    assert not fires(seed, risk_score=0.1)
    assert fires(seed, risk_score=0.5)
    assert not fires(seed, action="other", risk_score=0.9)
    high_value = rule({"action": "inventory_modification", "value_threshold": 1000})
    assert not fires(high_value, details={"quantity": 100, "previous_quantity": 50})
    assert fires(high_value, details={"quantity": 1500})
    assert fires(high_value, details={"quantity": -2000})  # a large decrease counts too
    named = rule({"value_threshold": 10, "value_field": "price"})
    assert not fires(named, details={"quantity": 500, "price": 3})
    assert fires(named, details={"price": 12.5})


def test_jmespath_lists_and_detail_conditions() -> None:
    expr = rule({"when": "outcome == 'failure' && contains(action, 'login')"})
    assert fires(expr, action="login_failed", outcome="failure")
    assert not fires(expr, action="login_failed", outcome="success")
    deep = rule({"when": "details.amount > `100`"})
    assert fires(deep, details={"amount": 101}) and not fires(deep, details={"amount": 5})
    listed = rule({"category": ["SECURITY", "COMPLIANCE"]})
    assert fires(listed, category="SECURITY") and not fires(listed, category="INVENTORY")
    detail = rule({"warehouse": "WH-1"})
    assert fires(detail, details={"warehouse": "WH-1"})
    assert not fires(detail, details={"warehouse": "WH-2"})
    assert not fires(rule({}))  # no conditions: matches nothing


def test_bad_rules_are_refused() -> None:
    with pytest.raises(RuleError, match="unknown action 'explode'"):
        compile_rule(rule({"action": "x"}, ["explode"]))
    with pytest.raises(RuleError, match="bad `when`"):
        compile_rule(rule({"when": "a ==="}))


def test_window_counts_per_user_within_the_window() -> None:
    compiled = compile_rule(
        rule({"action": "login_failed", "window": {"count": 3, "within_s": 60}})
    )

    def at(second: int, user: str = "eve") -> bool:
        stamp = f"2024-01-15T10:{second // 60:02d}:{second % 60:02d}.000000Z"
        view = EventView(draft(action="login_failed", user_id=user, timestamp=stamp))
        return compiled.evaluate(view) is not None

    assert [at(0), at(10), at(20, "bob")] == [False, False, False]
    assert at(30)  # eve's third within 60 s
    assert not at(40)  # counting starts again after a hit
    assert not at(200) and not at(300) and not at(400)  # too far apart


def test_actions_on_the_python_api(tmp_path: Path) -> None:
    with AuditSystem(secret_key="k", workspace=tmp_path) as system:
        system.compliance_rules["big"] = rule(
            {"action": "stock_write_off", "value_threshold": 1000},
            ["log_event", "alert", "mask"],
            rule_id="big",
            severity=AuditLevel.ERROR,
            mask=["supplier"],
        )
        quiet = system.log_event(
            AuditLevel.INFO, AuditCategory.INVENTORY, "stock_write_off", details={"qty": 5}
        )
        loud = system.log_event(
            AuditLevel.INFO,
            AuditCategory.INVENTORY,
            "stock_write_off",
            details={"qty": 5000, "supplier": "ACME"},
        )
        events = {e.event_id: e for e in system.query_events(limit=None)}
        assert events[quiet].level is AuditLevel.INFO
        assert events[loud].level is AuditLevel.ERROR  # alert raised it
        assert events[loud].details == {"qty": 5000, "supplier": "***"}  # masked before signing
        (hit,) = [e for e in events.values() if e.action == TRIGGERED_ACTION]
        assert hit.details["event_id"] == loud and hit.details["rule_id"] == "big"
        assert hit.category is AuditCategory.COMPLIANCE and hit.level is AuditLevel.ERROR
        assert system.verify_integrity(loud) and system.verify_integrity(hit.event_id)
        # A disabled rule no longer fires.
        system.compliance_rules["big"].enabled = False
        system.log_event(
            AuditLevel.INFO, AuditCategory.INVENTORY, "stock_write_off", details={"qty": 9999}
        )
        assert len(system.query_events(action=TRIGGERED_ACTION, limit=None)) == 1


def test_halt_stores_the_event_then_stops(tmp_path: Path) -> None:
    with AuditSystem(secret_key="k", workspace=tmp_path) as system:
        system.compliance_rules["stop"] = rule(
            {"action": "export_all"}, ["log_event", "halt"], rule_id="stop"
        )
        with pytest.raises(ComplianceHalt, match=r"compliance rule stop .* halted the run") as err:
            system.log_event(AuditLevel.INFO, AuditCategory.USER_ACTION, "export_all")
        assert system.store.get(err.value.event_id) is not None
        assert system.query_events(action=TRIGGERED_ACTION, limit=None)


def test_rules_file_toml_and_yaml(tmp_path: Path) -> None:
    toml = tmp_path / "rules.toml"
    toml.write_text(
        """
[[rules]]
id = "night-deletes"
standard = "SOX"
clause = "404"
when = "contains(action, 'delete')"
window = { count = 2, within_s = 300 }
actions = ["log_event", "notify"]
"""
    )
    (loaded,) = load_rules_file(toml)
    assert loaded.standard is ComplianceStandard.SOX and loaded.clause == "404"
    assert loaded.conditions["window"] == {"count": 2, "within_s": 300.0, "group_by": "user_id"}
    yaml_rules = parse_rules(
        "rules:\n  - id: a\n    match: {category: SECURITY}\n    severity: ERROR\n",
        fmt="yaml",
    )
    assert yaml_rules[0].severity is AuditLevel.ERROR


def test_rules_file_errors_are_located_and_all_reported(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        """
[[rules]]
id = "one"
when = "a ==="

[[rules]]
id = "two"
actions = ["explode"]
colour = "red"
"""
    )
    with pytest.raises(ConfigError) as err:
        load_rules_file(bad)
    text = str(err.value)
    assert f"{bad}:4:" in text and "invalid JMESPath" in text
    assert f"{bad}:8:" in text and "rules.1.actions.0" in text and "'log_event'" in text
    assert f"{bad}:9:" in text and "colour" in text
    assert len(err.value.errors) == 3
    twice = tmp_path / "twice.yaml"
    twice.write_text("rules:\n  - id: one\n    when: a\n  - id: one\n    when: b\n")
    with pytest.raises(ConfigError, match=r"twice.yaml:4:\d+: .*duplicate rule id 'one'"):
        load_rules_file(twice)


def test_switches(monkeypatch: pytest.MonkeyPatch) -> None:
    none = EngineSettings.load({})
    everything = enabled_standards(AuditSettings(), none)
    assert everything == frozenset(ComplianceStandard)
    hipaa_off = EngineSettings.load({"COMPLIANCE_HIPAA_ENABLED": "false"})
    off = enabled_standards(AuditSettings(), hipaa_off)
    assert ComplianceStandard.HIPAA not in off and ComplianceStandard.PCI_DSS in off
    all_off = EngineSettings.load({"AUDIT_COMPLIANCE_ENABLED": "0"})
    assert enabled_standards(AuditSettings(), all_off) == frozenset()
    assert enabled_standards(AuditSettings(compliance=False), none) == frozenset()
    chosen = enabled_standards(AuditSettings(standards=["pci_dss"]), none)
    assert chosen == {ComplianceStandard.PCI_DSS}


def test_pci_switched_off_leaves_redaction_but_no_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMPLIANCE_PCI_DSS_ENABLED", "false")
    with AuditSystem(secret_key="k", workspace=tmp_path) as system:
        eid = system.log_event(
            AuditLevel.INFO, AuditCategory.INVENTORY, "pay", details={"c": "4111111111111111"}
        )
        (event,) = [e for e in system.query_events(limit=None) if e.event_id == eid]
        assert event.details["c"] == "411111******1111"  # redaction is not a rule
        assert not system.query_events(action=TRIGGERED_ACTION, limit=None)


def test_detectors() -> None:
    assert find_cards({"a": "card 4111-1111-1111-1111 ok"}) == ["details.a"]
    assert find_cards({"a": "4111111111111112"}) == []  # fails Luhn
    assert find_cards({"a": "411111******1111"}) == []  # already masked
    # a Luhn-valid run inside a hex digest or an id is not a card number
    digest = "9f0e" + "4111111111111111" + "ab" * 22
    assert find_cards({"sha256": digest, "id": "run4111111111111111x"}) == []
    found = find_identifiers(
        {"n": "ssn 123-45-6789", "e": ["mail bob@example.com"], "p": "(555) 123-4567"}
    )
    assert sorted(found) == [
        ("details.e[0]", "email"),
        ("details.n", "ssn"),
        ("details.p", "phone"),
    ]
    assert find_identifiers({"d": "2024-01-15T10:30:00Z", "ip": "10.0.0.1"}) == []
    assert pseudonym(b"k", "bob") == pseudonym(b"k", "bob") != pseudonym(b"other", "bob")


def test_identifiers_and_personal_fields_never_stored_plain(tmp_path: Path) -> None:
    with AuditSystem(secret_key="k", workspace=tmp_path) as system:
        eid = system.log_event(
            AuditLevel.INFO,
            AuditCategory.USER_ACTION,
            "profile_updated",
            details={
                "email": "ann@example.com",
                "comment": "call 555-123-4567 or mail ann@example.com",
                "full_name": "Ann Smith",
            },
            user_id="ann",
        )
        (event,) = [e for e in system.query_events(limit=None) if e.event_id == eid]
        assert event.details["email"].startswith("pseud:")
        assert event.details["full_name"].startswith("pseud:")
        assert event.details["comment"] == "call ***-***-4567 or mail ***@example.com"
        fired = {e.details["rule_id"] for e in system.query_events(action=TRIGGERED_ACTION)}
        assert fired == {"GDPR-5.1.c-pseudonymisation", "HIPAA-164.312.b-identifiers"}


def test_failed_auth_outside_security_is_flagged(tmp_path: Path) -> None:
    with AuditSystem(secret_key="k", workspace=tmp_path) as system:
        eid = system.log_event(
            AuditLevel.WARNING,
            AuditCategory.USER_ACTION,
            "login_failed",
            user_id="eve",
            outcome=Outcome.FAILURE,
        )
        (hit,) = system.query_events(action=TRIGGERED_ACTION)
        assert hit.details["rule_id"] == "PCI_DSS-10.2.1.4-failed-auth"
        assert hit.details["event_id"] == eid and hit.details["clause"] == "10.2.1.4"


def test_logging_failure_is_critical(tmp_path: Path) -> None:
    with AuditSystem(secret_key="k", workspace=tmp_path) as system:
        eid = system.log_event(
            AuditLevel.ERROR, AuditCategory.SYSTEM, "audit_store_error", outcome=Outcome.FAILURE
        )
        (event,) = [e for e in system.query_events(limit=None) if e.event_id == eid]
        assert event.level is AuditLevel.CRITICAL
        (hit,) = system.query_events(action=TRIGGERED_ACTION)
        assert hit.details["rule_id"] == "PCI_DSS-10.7-logging-failure"
