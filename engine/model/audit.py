"""The pipeline file's ``[audit]`` table: where the trail is kept, how it is signed, and
which compliance rules apply."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from engine.model.rules import RuleSpec
from engine.redact import KEY_MATERIAL

__all__ = ["DEFAULT_PERSONAL_FIELDS", "AuditSettings"]

DEFAULT_PERSONAL_FIELDS = (
    "email",
    "phone",
    "ssn",
    "full_name",
    "first_name",
    "last_name",
    "address",
    "date_of_birth",
)


class AuditSettings(BaseModel):
    """Where the trail is kept and how it is signed. Defaults need no setup."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    enabled: bool = Field(True, description="Emit audit events for this pipeline's runs.")
    store: str | None = Field(
        None,
        description="SQLAlchemy URL of the audit store; default: SQLite in the workspace.",
        examples=["sqlite:///audit.db", "postgresql+psycopg://audit@db/audit"],
    )
    key: SecretStr | None = Field(
        None, description="HMAC key; default: AUDIT_SECRET_KEY, else a generated key file."
    )
    key_id: str | None = Field(None, description="Identifier of the HMAC key, for rotation.")
    previous_keys: list[SecretStr] = Field(
        default_factory=list, description="Retired HMAC keys that must still verify old events."
    )
    signing_key: Annotated[SecretStr | None, KEY_MATERIAL] = Field(
        None,
        description=(
            "Ed25519 checkpoint key (PEM or base64; `${file:...}` of a PEM file works); "
            "default: AUDIT_SIGNING_KEY, else a generated key file."
        ),
    )
    checkpoint: str | None = Field(
        None, description="Folder for signed checkpoints; default: the workspace's checkpoints/."
    )
    checkpoint_every: int = Field(
        10_000, ge=1, description="Write a signed checkpoint every N events (and at run end)."
    )
    flush_every: int = Field(
        256, ge=1, description="Append buffered events to the store every N events."
    )
    retention_days: int | None = Field(
        None,
        ge=1,
        description="Prune this pipeline's chain at the end of each run to the last N days; "
        "AUDIT_RETENTION_DAYS wins when set. Default: keep everything.",
        examples=[365],
    )
    max_events: int | None = Field(
        None,
        ge=1,
        description="Prune this pipeline's chain at the end of each run to its newest N events; "
        "AUDIT_MAX_EVENTS wins when set. Default: no cap.",
        examples=[1_000_000],
    )
    mask_fields: list[str] = Field(
        default_factory=list,
        description="Personal fields masked wherever they appear in event details.",
        examples=[["email", "phone"]],
    )
    standards: list[str] = Field(
        default_factory=list,
        description="Compliance standards checked for this pipeline; default: every standard "
        "not switched off by COMPLIANCE_<STANDARD>_ENABLED.",
        examples=[["PCI_DSS", "SOX"]],
    )
    compliance: bool = Field(
        True,
        description="Evaluate compliance rules on every event (AUDIT_COMPLIANCE_ENABLED=false "
        "also turns them off).",
    )
    rules: list[RuleSpec] = Field(
        default_factory=list, description="Extra compliance rules, as in a rules file."
    )
    rules_file: str | None = Field(
        None,
        description="A TOML or YAML file of `[[rules]]` (a relative path is relative to the "
        "working directory, like `store`).",
        examples=["compliance-rules.toml"],
    )
    personal_fields: list[str] = Field(
        default_factory=lambda: list(DEFAULT_PERSONAL_FIELDS),
        description="Personal fields replaced by a keyed pseudonym in event details (GDPR "
        "5(1)(c)).",
    )
    approved_sha256: list[str] = Field(
        default_factory=list,
        description="SHA-256 of approved pipeline file versions (SOX change management); "
        "`engine audit approve FILE` records approvals in the trail instead.",
    )
    notify_url: str | None = Field(
        None,
        description="Webhook that rules with the `notify` action POST to (HMAC-signed).",
        examples=["https://hooks.example.com/compliance"],
    )
    notify_secret: SecretStr | None = Field(
        None,
        description="Key of the X-Engine-Signature HMAC of notifications; default: "
        "AUDIT_NOTIFY_SECRET.",
    )
    max_clock_skew_s: float = Field(
        300.0, gt=0, description="Event time further than this from ingest time is flagged."
    )
