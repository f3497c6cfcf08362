"""ISO/IEC 27001:2022 Annex A: event logging fields (A.8.15), clock synchronisation
(A.8.17)."""

from __future__ import annotations

from engine.compliance.rules.model import ComplianceRule, EventKind, EventView
from engine.compliance.standards.base import BuiltinConfig, missing_fields, rule
from engine.ledger.clock import epoch
from engine.ledger.events import AuditLevel, ComplianceStandard

__all__ = ["rules"]

ISO = ComplianceStandard.ISO27001


def _stamped_kind(kind: EventKind) -> bool:
    """A time the caller gave: the trail's own stamp is the ingest clock itself."""
    return kind.stamped


def fields_8_15(view: EventView) -> str | None:
    missing = missing_fields(view.draft, ("user_id", "actor", "origin", "action", "outcome"))
    return f"missing: {', '.join(missing)}" if missing else None


def rules(cfg: BuiltinConfig) -> list[ComplianceRule]:
    """The ISO 27001 rules, in evaluation order."""

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

    return [
        rule(
            "ISO27001-8.15-fields", ISO, "A.8.15", "Event logging fields",
            "Events record user, actor, origin, action and outcome.",
            check=fields_8_15, actions=(), severity=AuditLevel.INFO,
        ),
        rule(
            "ISO27001-8.17-clock", ISO, "A.8.17", "Clock synchronisation",
            "Event time and ingest time agree within the allowed skew.",
            check=clock_skew,
            scope=_stamped_kind,
        ),
    ]  # fmt: skip
