"""The built-in rules, one per control, each with the clause of its standard.

Rules without actions are judged only when a report is built (they concern every event,
e.g. required fields); the others also run as events are logged.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from engine.audit.events import AuditLevel, ComplianceStandard
from engine.audit.redact import mask_card_numbers
from engine.audit.risk import is_failed_auth
from engine.audit.rules.conditions import epoch
from engine.audit.rules.detect import (
    find_cards,
    find_identifiers,
    mask_identifiers,
    pseudonymise_fields,
    unprotected_personal_fields,
)
from engine.audit.rules.model import ComplianceRule, ConfigFacts, EventKind, EventView, Scope

__all__ = ["AUDIT_FAILURE_ACTIONS", "BuiltinConfig", "builtin_rules", "retention_minimums"]

AUDIT_FAILURE_ACTIONS = frozenset(
    {"audit_failure", "audit_store_error", "audit_write_failed", "checkpoint_failed"}
)
_BATCH = frozenset({"batch_read", "batch_transformed", "batch_written"})
PCI, SOX, HIPAA, GDPR, ISO = (
    ComplianceStandard.PCI_DSS,
    ComplianceStandard.SOX,
    ComplianceStandard.HIPAA,
    ComplianceStandard.GDPR,
    ComplianceStandard.ISO27001,
)
# Minimum retention of the audit trail, in days, that a standard asks for.
_MINIMUMS = {PCI: 365, SOX: 7 * 365, HIPAA: 6 * 365}


def retention_minimums() -> dict[ComplianceStandard, int]:
    """Days of audit trail each standard requires (PCI DSS 10.5.1: 12 months; SOX:
    7 years, SEC 17 CFR 210.2-06; HIPAA 164.316(b)(2): 6 years)."""
    return dict(_MINIMUMS)


@dataclass(frozen=True)
class BuiltinConfig:
    personal_fields: frozenset[str]
    pseudonym_key: bytes
    is_approved: Callable[[str], bool]
    max_clock_skew_s: float = 300.0
    retention_days: int | None = None
    now_text: Callable[[], str] | None = None


def _missing(draft: dict[str, Any], names: Collection[str]) -> list[str]:
    missing = [n for n in names if draft.get(n) in (None, "")]
    if "origin" in names:
        missing.remove("origin")
        if not draft.get("host") and not draft.get("ip_address"):
            missing.append("origin")
    return missing


def _rule(
    rule_id: str,
    standard: ComplianceStandard,
    clause: str,
    name: str,
    description: str,
    *,
    check: Callable[[EventView], str | None] | None = None,
    actions: tuple[str, ...] = ("log_event",),
    severity: AuditLevel = AuditLevel.WARNING,
    conditions: dict[str, Any] | None = None,
    remedy: Callable[[EventView], None] | None = None,
    sensitive: bool = False,
    config_check: Callable[[ConfigFacts], str | None] | None = None,
    scope: Scope | None = None,
    flags_abandoned: bool = False,
) -> ComplianceRule:
    return ComplianceRule(
        rule_id=rule_id,
        name=name,
        description=description,
        standard=standard,
        severity=severity,
        conditions=conditions or {},
        actions=list(actions),
        clause=clause,
        check=check,
        remedy=remedy,
        sensitive=sensitive,
        config_check=config_check,
        scope=scope,
        flags_abandoned=flags_abandoned,
    )


# Scopes: which kinds of event a rule can fire on at all (see EventKind).
def _given_details(kind: EventKind) -> bool:
    """Details someone gave; the runtime's batch events carry only counts, a digest and
    the stage's role and type, which no content rule concerns."""
    return not (kind.trusted and kind.action in _BATCH)


def _failed_auth_kind(kind: EventKind) -> bool:
    return is_failed_auth(kind.action, kind.outcome)


def _audit_failure_kind(kind: EventKind) -> bool:
    return kind.action in AUDIT_FAILURE_ACTIONS or (
        kind.action.startswith("audit") and kind.outcome == "failure"
    )


def _phi_batch_kind(kind: EventKind) -> bool:
    return kind.action in _BATCH and "phi" in kind.tags


def _stamped_kind(kind: EventKind) -> bool:
    """A time the caller gave: the trail's own stamp is the ingest clock itself."""
    return kind.stamped


def builtin_rules(cfg: BuiltinConfig) -> list[ComplianceRule]:
    """Every built-in rule, in evaluation order (masking rules before the others)."""
    fields = cfg.personal_fields

    # --- PCI DSS -------------------------------------------------------------------
    def pan(view: EventView) -> str | None:
        paths = find_cards(view.given_strings())
        return f"card number in {', '.join(paths)}" if paths else None

    def mask_pan(view: EventView) -> None:
        view.draft["details"] = _map_strings(view.details, mask_card_numbers)

    def fields_10_2_2(view: EventView) -> str | None:
        missing = _missing(
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
        if days is not None and days < 365:
            return f"AUDIT_RETENTION_DAYS={days} keeps less than the 12 months 10.5.1 requires"
        if facts.max_events is not None:
            return f"AUDIT_MAX_EVENTS={facts.max_events} may remove events younger than 12 months"
        return None

    # --- SOX -------------------------------------------------------------------------
    def unapproved_change(view: EventView) -> str | None:
        d = view.draft
        if d["action"] != "config_changed":
            return None
        sha = str(view.details.get("sha256") or "")
        # The first version seen is the baseline; a later, different one needs approval.
        if not sha or not view.details.get("previous_sha256") or cfg.is_approved(sha):
            return None
        return f"pipeline file changed to sha256 {sha[:16]}… without a recorded approval"

    def completeness(view: EventView) -> str | None:
        stages = view.details.get("stages")
        if view.draft["action"] != "run_finished" or not isinstance(stages, dict):
            return None
        kinds = view.pipeline.components if view.pipeline is not None else {}
        gaps = []
        for name, stats in stages.items():
            kind = kinds.get(name)
            if not isinstance(stats, dict) or kind == "route":
                continue  # a route may send one record to several outputs
            seen = int(stats.get("records_in") or 0)
            accounted = int(stats.get("records_out") or 0) + int(stats.get("rejected") or 0)
            # A filter drops records on purpose: it may account for fewer, never more.
            if seen and (accounted > seen if kind == "filter" else accounted != seen):
                gaps.append(f"{name}: {seen} in, {accounted} out or rejected")
        return "records unaccounted for: " + "; ".join(gaps) if gaps else None

    # --- HIPAA -----------------------------------------------------------------------
    def phi_access(view: EventView) -> str | None:
        if view.pipeline is None or "phi" not in view.pipeline.tags:
            return None
        d = view.draft
        if d["action"] not in _BATCH:
            return None
        missing = _missing(d, ("user_id", "actor", "record_count"))
        return f"access to phi data without {', '.join(missing)}" if missing else None

    def identifiers(view: EventView) -> str | None:
        if view.raw is None and view.draft["action"] in _BATCH:
            return None  # the runtime's batch events carry counts and digests only
        # The details as given: what the personal-field rule pseudonymised counts too.
        found = find_identifiers(view.given_strings())
        if not found:
            return None
        return "plaintext " + ", ".join(f"{kind} in {path}" for path, kind in found)

    def mask_ids(view: EventView) -> None:
        view.draft["details"] = mask_identifiers(view.details)

    # --- GDPR ------------------------------------------------------------------------
    def personal(view: EventView) -> str | None:
        if not view.details:
            return None
        found = unprotected_personal_fields(view.details, fields)
        return f"personal field(s) not pseudonymised: {', '.join(found)}" if found else None

    def pseudonymise(view: EventView) -> None:
        view.draft["details"] = pseudonymise_fields(view.details, fields, cfg.pseudonym_key)

    def _personal_pipeline(view: EventView) -> bool:
        return (
            view.draft["action"] == "run_started"
            and view.pipeline is not None
            and "personal_data" in view.pipeline.tags
        )

    def records_of_processing(view: EventView) -> str | None:
        if not _personal_pipeline(view):
            return None
        assert view.pipeline is not None
        meta = view.pipeline.meta
        missing = [k for k in ("purpose", "data_categories", "retention_days") if not meta.get(k)]
        return f"personal_data pipeline does not declare {', '.join(missing)}" if missing else None

    def storage_limitation(view: EventView) -> str | None:
        if not _personal_pipeline(view):
            return None
        assert view.pipeline is not None
        declared = view.pipeline.meta.get("retention_days")
        if not isinstance(declared, int):
            return None
        kept = cfg.retention_days
        if kept is None:
            return f"audit events are kept forever; the pipeline declares {declared} days"
        if kept > declared:
            return f"audit events are kept {kept} days; the pipeline declares {declared} days"
        return None

    # --- ISO 27001 ---------------------------------------------------------------------
    def fields_8_15(view: EventView) -> str | None:
        missing = _missing(view.draft, ("user_id", "actor", "origin", "action", "outcome"))
        return f"missing: {', '.join(missing)}" if missing else None

    def clock_skew(view: EventView) -> str | None:
        d = view.draft
        stamp = str(d["timestamp"])
        ref = d.get("ingested_at") or (cfg.now_text() if cfg.now_text else None)
        if ref is None:
            return None
        ref = str(ref)
        if cfg.max_clock_skew_s >= 60 and ref[:16] == stamp[:16]:
            return None  # same minute: well within the limit
        skew = abs(epoch(ref) - epoch(stamp))
        if skew <= cfg.max_clock_skew_s:
            return None
        return f"event time is {skew:.0f}s from ingest time (limit {cfg.max_clock_skew_s:g}s)"

    mask = ("mask", "log_event")
    raise_ = ("alert", "log_event", "notify")
    return [
        _rule(
            "GDPR-5.1.c-pseudonymisation", GDPR, "Art. 5(1)(c)",
            "Personal fields pseudonymised",
            "Personal fields in event details are replaced by a keyed pseudonym (data "
            "minimisation).",
            check=personal, remedy=pseudonymise, actions=mask, sensitive=True,
            scope=_given_details,
        ),
        _rule(
            "PCI_DSS-3.4-pan-masked", PCI, "3.4", "No unmasked card number",
            "Card numbers (Luhn-valid, 13-19 digits) are masked to first 6 / last 4 before "
            "the event is signed.",
            check=pan, remedy=mask_pan, actions=mask, severity=AuditLevel.ERROR, sensitive=True,
            scope=_given_details,
        ),
        _rule(
            "HIPAA-164.312.b-identifiers", HIPAA, "164.312(b)",
            "No plaintext SSN, email or phone",
            "SSNs, email addresses and phone numbers in event details are masked.",
            check=identifiers, remedy=mask_ids, actions=mask, sensitive=True,
            scope=_given_details,
        ),
        _rule(
            "PCI_DSS-10.2.2-fields", PCI, "10.2.2", "Audit log details",
            "Every event records user, type, time, outcome, origin and the resource.",
            check=fields_10_2_2, actions=(), severity=AuditLevel.INFO,
        ),
        _rule(
            "PCI_DSS-10.2.1.4-failed-auth", PCI, "10.2.1.4",
            "Failed authentication recorded as a security event",
            "Invalid logical access attempts are logged in the SECURITY category.",
            check=failed_auth_category,
            scope=_failed_auth_kind,
        ),
        _rule(
            "PCI_DSS-10.2.1.4-auth-burst", PCI, "10.2.1.4", "Failed authentication burst",
            "5 failed authentications by one user within 10 minutes raise an alert.",
            check=failed_auth, actions=raise_, severity=AuditLevel.CRITICAL,
            conditions={"window": {"count": 5, "within_s": 600, "group_by": "user_id"}},
            scope=_failed_auth_kind,
        ),
        _rule(
            "PCI_DSS-10.5.1-retention", PCI, "10.5.1", "Audit trail kept 12 months",
            "Retention settings keep at least 12 months of audit history.",
            config_check=retention_12_months, actions=(), severity=AuditLevel.ERROR,
        ),
        _rule(
            "PCI_DSS-10.7-logging-failure", PCI, "10.7", "Audit logging failures alerted",
            "A failure of the audit logging itself raises a CRITICAL alert.",
            check=logging_failure, actions=raise_, severity=AuditLevel.CRITICAL,
            scope=_audit_failure_kind,
        ),
        _rule(
            "SOX-404-change-management", SOX, "404 ITGC change management",
            "Changed pipelines are approved",
            "The pipeline file's SHA-256 is recorded per run; a run of a changed file "
            "without an approval is flagged.",
            check=unapproved_change, actions=raise_, severity=AuditLevel.ERROR,
            conditions={"action": ["config_changed"]},
        ),
        _rule(
            "SOX-404-completeness", SOX, "404 ITGC completeness", "Records accounted for",
            "In every stage of a run, records in = records out + rejected; a run that "
            "started and never finished (abandoned) accounts for nothing.",
            check=completeness, severity=AuditLevel.ERROR,
            conditions={"action": ["run_finished"]}, flags_abandoned=True,
        ),
        _rule(
            "HIPAA-164.312.b-phi-access", HIPAA, "164.312(b)", "Access to PHI recorded",
            "Reads and writes of phi-tagged pipelines record the actor, user and count.",
            check=phi_access,
            scope=_phi_batch_kind,
        ),
        _rule(
            "GDPR-5.1.e-retention", GDPR, "Art. 5(1)(e)", "Kept no longer than declared",
            "Audit retention of a personal_data pipeline is at most its declared retention.",
            check=storage_limitation, conditions={"action": ["run_started"]},
        ),
        _rule(
            "GDPR-30-records", GDPR, "Art. 30", "Records of processing",
            "Pipelines tagged personal_data declare purpose, data categories and retention.",
            check=records_of_processing, conditions={"action": ["run_started"]},
        ),
        _rule(
            "ISO27001-8.15-fields", ISO, "A.8.15", "Event logging fields",
            "Events record user, actor, origin, action and outcome.",
            check=fields_8_15, actions=(), severity=AuditLevel.INFO,
        ),
        _rule(
            "ISO27001-8.17-clock", ISO, "A.8.17", "Clock synchronisation",
            "Event time and ingest time agree within the allowed skew.",
            check=clock_skew,
            scope=_stamped_kind,
        ),
    ]  # fmt: skip


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    return value
