"""Typed audit events: the enums and the frozen, signed :class:`AuditEvent`."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "GENESIS_MAC",
    "AuditCategory",
    "AuditEvent",
    "AuditLevel",
    "ComplianceStandard",
    "Outcome",
    "format_time",
    "parse_time",
]

# prev_mac of the first event of every chain: 32 zero bytes, hex.
GENESIS_MAC = "0" * 64


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


def format_time(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601 with microseconds, so text order is time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse ISO 8601; a naive time is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


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

    def signed_body(self) -> dict[str, Any]:
        """The JSON object whose canonical form is MAC'd: every field but ``mac``."""
        return {
            "event_id": self.event_id,
            "producer": self.producer,
            "seq": self.seq,
            "timestamp": format_time(self.timestamp),
            "ingested_at": format_time(self.ingested_at),
            "level": self.level.value,
            "category": self.category.value,
            "action": self.action,
            "resource": self.resource,
            "outcome": self.outcome.value,
            "user_id": self.user_id,
            "actor": self.actor,
            "ip_address": self.ip_address,
            "host": self.host,
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "stage": self.stage,
            "record_count": self.record_count,
            "digest": self.digest,
            "details": self.details,
            "risk_score": self.risk_score,
            "key_id": self.key_id,
            "prev_mac": self.prev_mac,
        }

    def to_json_dict(self) -> dict[str, Any]:
        """The whole event as JSON, ``mac`` included (the export format)."""
        body = self.signed_body()
        body["mac"] = self.mac
        return body
