"""Typed audit events: the enums, the one draft shape and the frozen, signed :class:`AuditEvent`.

An event is written in one shape, :class:`EventDraft`, built by :func:`new_draft` only: the
writer fills in the chain's fields (``producer``, ``seq``, ``ingested_at``, ``key_id``,
``prev_mac``) when it seals the draft, and :meth:`AuditEvent.signed_body` renders a stored
event back into the same shape.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from engine.ledger.clock import format_time, parse_time

__all__ = [
    "CATEGORY_RISK",
    "GENESIS_MAC",
    "LEVEL_RISK",
    "RETENTION_ACTION",
    "AuditCategory",
    "AuditEvent",
    "AuditLevel",
    "ComplianceStandard",
    "DigestResult",
    "EventDraft",
    "Outcome",
    "base_risk",
    "format_time",
    "new_draft",
    "parse_time",
]

# prev_mac of the first event of every chain: 32 zero bytes, hex.
GENESIS_MAC = "0" * 64
#: the action of the signed event that anchors a pruned prefix of a chain
RETENTION_ACTION = "retention_applied"


class AuditLevel(StrEnum):
    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class AuditCategory(StrEnum):
    INVENTORY = "INVENTORY"
    USER_ACTION = "USER_ACTION"
    SYSTEM = "SYSTEM"
    SECURITY = "SECURITY"
    COMPLIANCE = "COMPLIANCE"
    INTEGRATION = "INTEGRATION"
    PERFORMANCE = "PERFORMANCE"


class ComplianceStandard(StrEnum):
    SOX = "SOX"
    PCI_DSS = "PCI_DSS"
    GDPR = "GDPR"
    HIPAA = "HIPAA"
    ISO27001 = "ISO27001"
    CUSTOM = "CUSTOM"


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    #: a run stopped by a signal before its input ran out
    INTERRUPTED = "interrupted"
    UNKNOWN = "unknown"


#: the base risk of each level and the raise of each category (see :func:`base_risk`)
LEVEL_RISK = {
    AuditLevel.DEBUG: 0.0,
    AuditLevel.INFO: 0.1,
    AuditLevel.WARNING: 0.4,
    AuditLevel.ERROR: 0.7,
    AuditLevel.CRITICAL: 0.9,
}
CATEGORY_RISK = {
    AuditCategory.SECURITY: 0.1,
    AuditCategory.COMPLIANCE: 0.05,
}


def base_risk(level: AuditLevel, category: AuditCategory) -> float:
    """The base risk score every event carries: 0.0 (no risk) to 1.0, from the level,
    raised for security and compliance events (compliance adds named contributions)."""
    return round(min(1.0, LEVEL_RISK[level] + CATEGORY_RISK.get(category, 0.0)), 3)


class DigestResult(Protocol):
    """A digest computed later (one a sink will hand over, say): resolved at sealing."""

    def result(self) -> str: ...

    def ready(self) -> bool:
        """Whether :meth:`result` is known without computing it."""
        ...


class EventDraft(TypedDict):
    """The one shape of an event before and as it is signed: every field but ``mac``.

    Keys are declared (and built by :func:`new_draft`) in sorted order, which is the
    canonical order, so the body is encoded without sorting. Until the event is sealed the
    chain's fields are None and ``digest`` may still be a :class:`DigestResult`.
    """

    action: str
    actor: str | None
    category: str
    details: dict[str, Any]
    digest: str | DigestResult | None
    event_id: str
    host: str | None
    ingested_at: str | None
    ip_address: str | None
    key_id: str | None
    level: str
    outcome: str
    pipeline: str | None
    prev_mac: str | None
    producer: str | None
    record_count: int | None
    resource: str | None
    risk_score: float
    run_id: str | None
    seq: int | None
    stage: str | None
    timestamp: str
    user_id: str | None


def new_draft(
    *,
    event_id: str,
    timestamp: str,
    level: str,
    category: str,
    action: str,
    risk_score: float,
    details: dict[str, Any],
    outcome: str = "success",
    resource: str | None = None,
    actor: str | None = None,
    user_id: str | None = None,
    ip_address: str | None = None,
    host: str | None = None,
    pipeline: str | None = None,
    run_id: str | None = None,
    stage: str | None = None,
    record_count: int | None = None,
    digest: str | DigestResult | None = None,
) -> EventDraft:
    """An unsealed event: the writer fills in its chain, number, key and links."""
    return {
        "action": action,
        "actor": actor,
        "category": category,
        "details": details,
        "digest": digest,
        "event_id": event_id,
        "host": host,
        "ingested_at": None,
        "ip_address": ip_address,
        "key_id": None,
        "level": level,
        "outcome": outcome,
        "pipeline": pipeline,
        "prev_mac": None,
        "producer": None,
        "record_count": record_count,
        "resource": resource,
        "risk_score": risk_score,
        "run_id": run_id,
        "seq": None,
        "stage": stage,
        "timestamp": timestamp,
        "user_id": user_id,
    }


class AuditEvent(BaseModel):
    """One signed, numbered, chained event of the trail.

    ``mac = HMAC-SHA256(key[key_id], bytes.fromhex(prev_mac) || canonical_json(body))``
    where the body is :meth:`signed_body`: every field but ``mac``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: str = Field(description="Unique id (32 hex digits).")
    producer: str = Field(description="The chain this event belongs to, e.g. 'pipeline:sync'.")
    seq: int = Field(ge=1, description="Per-producer sequence number, from 1, no gaps.")
    timestamp: datetime = Field(description="When it happened (UTC).")
    ingested_at: datetime = Field(description="When the store sealed it (UTC).")
    level: AuditLevel
    category: AuditCategory
    action: str
    resource: str | None = None
    outcome: Outcome = Outcome.SUCCESS
    user_id: str | None = None
    actor: str | None = Field(None, description="The software acting: engine, cli, api.")
    ip_address: str | None = None
    host: str | None = None
    pipeline: str | None = None
    run_id: str | None = None
    stage: str | None = None
    record_count: int | None = None
    digest: str | None = Field(None, description="SHA-256 of the batch content, hex.")
    details: dict[str, Any] = Field(default_factory=dict)
    risk_score: float = 0.0
    key_id: str
    prev_mac: str = GENESIS_MAC
    mac: str

    def signed_body(self) -> EventDraft:
        """The JSON object whose canonical form is MAC'd: every field but ``mac``."""
        draft = new_draft(
            event_id=self.event_id,
            timestamp=format_time(self.timestamp),
            level=self.level.value,
            category=self.category.value,
            action=self.action,
            risk_score=self.risk_score,
            details=self.details,
            outcome=self.outcome.value,
            resource=self.resource,
            actor=self.actor,
            user_id=self.user_id,
            ip_address=self.ip_address,
            host=self.host,
            pipeline=self.pipeline,
            run_id=self.run_id,
            stage=self.stage,
            record_count=self.record_count,
            digest=self.digest,
        )
        draft["producer"] = self.producer
        draft["seq"] = self.seq
        draft["ingested_at"] = format_time(self.ingested_at)
        draft["key_id"] = self.key_id
        draft["prev_mac"] = self.prev_mac
        return draft

    def to_json_dict(self) -> dict[str, Any]:
        """The whole event as JSON, ``mac`` included (the export format)."""
        body: dict[str, Any] = dict(self.signed_body())
        body["mac"] = self.mac
        return body
