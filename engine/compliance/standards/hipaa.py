"""HIPAA Security Rule 164.312(b) audit controls: access to PHI recorded, identifiers
masked; 6 years of documentation (164.316(b)(2))."""

from __future__ import annotations

from engine.compliance.rules.detect import find_identifiers, mask_identifiers
from engine.compliance.rules.model import ComplianceRule, EventKind, EventView
from engine.compliance.standards.base import (
    BATCH_ACTIONS,
    MASK,
    BuiltinConfig,
    given_details,
    missing_fields,
    rule,
)
from engine.ledger.events import ComplianceStandard

__all__ = ["RETENTION_DAYS", "rules"]

HIPAA = ComplianceStandard.HIPAA
RETENTION_DAYS = 6 * 365


def _phi_batch_kind(kind: EventKind) -> bool:
    return kind.action in BATCH_ACTIONS and "phi" in kind.tags


def phi_access(view: EventView) -> str | None:
    if view.pipeline is None or "phi" not in view.pipeline.tags:
        return None
    d = view.draft
    if d["action"] not in BATCH_ACTIONS:
        return None
    missing = missing_fields(d, ("user_id", "actor", "record_count"))
    return f"access to phi data without {', '.join(missing)}" if missing else None


def identifiers(view: EventView) -> str | None:
    if view.raw is None and view.draft["action"] in BATCH_ACTIONS:
        return None  # the runtime's batch events carry counts and digests only
    # The details as given: what the personal-field rule pseudonymised counts too.
    found = find_identifiers(view.given_strings())
    if not found:
        return None
    return "plaintext " + ", ".join(f"{kind} in {path}" for path, kind in found)


def mask_ids(view: EventView) -> None:
    view.draft["details"] = mask_identifiers(view.details)


def rules(cfg: BuiltinConfig) -> list[ComplianceRule]:
    """The HIPAA rules, in evaluation order."""
    return [
        rule(
            "HIPAA-164.312.b-identifiers", HIPAA, "164.312(b)",
            "No plaintext SSN, email or phone",
            "SSNs, email addresses and phone numbers in event details are masked.",
            check=identifiers, remedy=mask_ids, actions=MASK, sensitive=True,
            scope=given_details,
        ),
        rule(
            "HIPAA-164.312.b-phi-access", HIPAA, "164.312(b)", "Access to PHI recorded",
            "Reads and writes of phi-tagged pipelines record the actor, user and count.",
            check=phi_access,
            scope=_phi_batch_kind,
        ),
    ]  # fmt: skip
