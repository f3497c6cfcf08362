"""The pipeline file's ``[audit]`` table."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["AuditSettings"]


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
    signing_key: SecretStr | None = Field(
        None,
        description=(
            "Ed25519 checkpoint key (PEM or base64); default: AUDIT_SIGNING_KEY, else a "
            "generated key file."
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
    mask_fields: list[str] = Field(
        default_factory=list,
        description="Personal fields masked wherever they appear in event details.",
        examples=[["email", "phone"]],
    )
    standards: list[str] = Field(
        default_factory=list, description="Compliance standards checked for this pipeline."
    )
