"""PCI DSS 4.0: card numbers masked (3.4), audit log content (10.2), retention (10.5.1),
failures of logging alerted (10.7)."""

from __future__ import annotations

from engine.compliance.rules.detect import find_cards
from engine.compliance.rules.model import ComplianceRule, ConfigFacts, EventView
from engine.compliance.standards.base import (
    AUDIT_FAILURE_ACTIONS,
    MASK,
    RAISE,
    BuiltinConfig,
    audit_failure_kind,
    failed_auth_kind,
    given_details,
    map_strings,
    missing_fields,
    rule,
)
from engine.ledger.events import AuditLevel, ComplianceStandard
from engine.redact import mask_card_numbers

__all__ = ["RETENTION_DAYS", "rules"]

PCI = ComplianceStandard.PCI_DSS
#: 10.5.1: audit history is kept at least 12 months
RETENTION_DAYS = 365


def pan(view: EventView) -> str | None:
    paths = find_cards(view.given_strings())
    return f"card number in {', '.join(paths)}" if paths else None


def mask_pan(view: EventView) -> None:
    view.draft["details"] = map_strings(view.details, mask_card_numbers)


def fields_10_2_2(view: EventView) -> str | None:
    missing = missing_fields(
        view.draft, ("user_id", "action", "timestamp", "outcome", "origin", "resource")
    )
    return f"missing: {', '.join(missing)}" if missing else None


def failed_auth_category(view: EventView) -> str | None:
    d = view.draft
    if not view.failed_auth or d["category"] == "SECURITY":
        return None
    return f"failed authentication recorded as {d['category']}, not SECURITY"


def failed_auth(view: EventView) -> str | None:
    return "failed authentication" if view.failed_auth else None


def logging_failure(view: EventView) -> str | None:
    d = view.draft
    action = str(d["action"])
    if action in AUDIT_FAILURE_ACTIONS or (
        action.startswith("audit") and d.get("outcome") == "failure"
    ):
        return f"audit logging failure: {action}"
    return None


def retention_12_months(facts: ConfigFacts) -> str | None:
    days = facts.retention_days
    if days is not None and days < RETENTION_DAYS:
        return f"AUDIT_RETENTION_DAYS={days} keeps less than the 12 months 10.5.1 requires"
    if facts.max_events is not None:
        return f"AUDIT_MAX_EVENTS={facts.max_events} may remove events younger than 12 months"
    return None


def rules(cfg: BuiltinConfig) -> list[ComplianceRule]:
    """The PCI DSS rules, in evaluation order."""
    return [
        rule(
            "PCI_DSS-3.4-pan-masked", PCI, "3.4", "No unmasked card number",
            "Card numbers (Luhn-valid, 13-19 digits) are masked to first 6 / last 4 before "
            "the event is signed.",
            check=pan, remedy=mask_pan, actions=MASK, severity=AuditLevel.ERROR, sensitive=True,
            scope=given_details,
        ),
        rule(
            "PCI_DSS-10.2.2-fields", PCI, "10.2.2", "Audit log details",
            "Every event records user, type, time, outcome, origin and the resource.",
            check=fields_10_2_2, actions=(), severity=AuditLevel.INFO,
        ),
        rule(
            "PCI_DSS-10.2.1.4-failed-auth", PCI, "10.2.1.4",
            "Failed authentication recorded as a security event",
            "Invalid logical access attempts are logged in the SECURITY category.",
            check=failed_auth_category,
            scope=failed_auth_kind,
        ),
        rule(
            "PCI_DSS-10.2.1.4-auth-burst", PCI, "10.2.1.4", "Failed authentication burst",
            "5 failed authentications by one user within 10 minutes raise an alert.",
            check=failed_auth, actions=RAISE, severity=AuditLevel.CRITICAL,
            conditions={"window": {"count": 5, "within_s": 600, "group_by": "user_id"}},
            scope=failed_auth_kind,
        ),
        rule(
            "PCI_DSS-10.5.1-retention", PCI, "10.5.1", "Audit trail kept 12 months",
            "Retention settings keep at least 12 months of audit history.",
            config_check=retention_12_months, actions=(), severity=AuditLevel.ERROR,
        ),
        rule(
            "PCI_DSS-10.7-logging-failure", PCI, "10.7", "Audit logging failures alerted",
            "A failure of the audit logging itself raises a CRITICAL alert.",
            check=logging_failure, actions=RAISE, severity=AuditLevel.CRITICAL,
            scope=audit_failure_kind,
        ),
    ]  # fmt: skip
