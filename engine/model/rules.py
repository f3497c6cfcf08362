"""The declared form of a compliance rule: what a rules file or ``[audit] rules`` holds."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.ledger.events import AuditLevel, ComplianceStandard

__all__ = ["RuleActionName", "RuleSpec", "RulesFile", "WindowSpec"]


class RuleActionName(StrEnum):
    LOG_EVENT = "log_event"
    NOTIFY = "notify"
    ALERT = "alert"
    HALT = "halt"
    MASK = "mask"


class WindowSpec(BaseModel):
    """Match only when ``count`` matching events share ``group_by`` within ``within_s``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    count: int = Field(ge=2, description="How many matching events make a hit.", examples=[5])
    within_s: float = Field(gt=0, description="The window, in seconds.", examples=[600])
    group_by: str = Field(
        "user_id", description="Event field that keys the count.", examples=["user_id"]
    )


class RuleSpec(BaseModel):
    """One compliance rule: conditions over an event, and what to do when they all hold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=128, description="Stable rule id.")
    name: str = Field("", description="Short title.")
    description: str = Field("", description="What the rule checks and why.")
    standard: ComplianceStandard = Field(ComplianceStandard.CUSTOM, description="The standard.")
    clause: str | None = Field(None, description="Clause of the standard.", examples=["10.2.2"])
    severity: AuditLevel = Field(AuditLevel.WARNING, description="Level of a hit.")
    when: str | None = Field(
        None,
        description="JMESPath over the event; the rule matches when it is truthy.",
        examples=["outcome == 'failure' && contains(action, 'auth')"],
    )
    match: dict[str, str | list[str]] = Field(
        default_factory=dict,
        description="Event fields that must equal a value (or one of a list).",
        examples=[{"category": "SECURITY"}],
    )
    threshold: float | None = Field(
        None, ge=0, le=1, description="Match only events whose risk score reaches this."
    )
    value_threshold: float | None = Field(
        None, description="Match only when a numeric detail (or `value_field`) reaches this."
    )
    value_field: str | None = Field(None, description="Detail that `value_threshold` reads.")
    window: WindowSpec | None = Field(None, description="A windowed count.")
    actions: list[RuleActionName] = Field(
        default_factory=lambda: [RuleActionName.LOG_EVENT], description="What a hit does."
    )
    mask: list[str] = Field(
        default_factory=list, description="Detail fields the `mask` action redacts."
    )
    enabled: bool = Field(True, description="Whether the rule is evaluated.")

    @field_validator("when")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            from engine.mapping import compile_expression

            try:
                compile_expression(value)
            except Exception as exc:  # jmespath's own error classes
                raise ValueError(f"invalid JMESPath expression: {exc}") from None
        return value


class RulesFile(BaseModel):
    """A rules file: ``[[rules]]`` tables (TOML) or a ``rules:`` list (YAML)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rules: list[RuleSpec] = Field(default_factory=list, description="The rules.")
