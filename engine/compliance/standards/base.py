"""What every standard's rules share: their settings, the rule builder, event scopes.

Each standard is one module of this package with a ``rules(cfg)`` function; rules without
actions are judged only when a report is built (they concern every event, e.g. required
fields); the others also run as events are logged.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from engine.compliance.risk import is_failed_auth
from engine.compliance.rules.model import ComplianceRule, ConfigFacts, EventKind, EventView, Scope
from engine.ledger.events import AuditLevel, ComplianceStandard

__all__ = [
    "AUDIT_FAILURE_ACTIONS",
    "BATCH_ACTIONS",
    "MASK",
    "RAISE",
    "BuiltinConfig",
    "audit_failure_kind",
    "failed_auth_kind",
    "given_details",
    "map_strings",
    "missing_fields",
    "rule",
]

AUDIT_FAILURE_ACTIONS = frozenset(
    {"audit_failure", "audit_store_error", "audit_write_failed", "checkpoint_failed"}
)
BATCH_ACTIONS = frozenset({"batch_read", "batch_transformed", "batch_written"})


@dataclass(frozen=True)
class BuiltinConfig:
    """The settings the built-in rules read (from ``[audit]`` and the environment)."""

    personal_fields: frozenset[str]
    pseudonym_key: bytes
    is_approved: Callable[[str], bool]
    max_clock_skew_s: float = 300.0
    retention_days: int | None = None
    now_text: Callable[[], str] | None = None


def missing_fields(draft: dict[str, Any], names: Collection[str]) -> list[str]:
    """The fields of ``names`` the event leaves empty (``origin``: host or ip address)."""
    missing = [n for n in names if draft.get(n) in (None, "")]
    if "origin" in names:
        missing.remove("origin")
        if not draft.get("host") and not draft.get("ip_address"):
            missing.append("origin")
    return missing


def rule(
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
    """A built-in rule (``log_event`` on a hit unless ``actions`` says otherwise)."""
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


#: the actions of a rule that rewrites the event (masking runs before the other rules)
MASK = ("mask", "log_event")
#: the actions of a rule that raises an alert
RAISE = ("alert", "log_event", "notify")


# Scopes: which kinds of event a rule can fire on at all (see EventKind).
def given_details(kind: EventKind) -> bool:
    """Details someone gave; the runtime's batch events carry only counts, a digest and
    the stage's role and type, which no content rule concerns."""
    return not (kind.trusted and kind.action in BATCH_ACTIONS)


def failed_auth_kind(kind: EventKind) -> bool:
    return is_failed_auth(kind.action, kind.outcome)


def audit_failure_kind(kind: EventKind) -> bool:
    return kind.action in AUDIT_FAILURE_ACTIONS or (
        kind.action.startswith("audit") and kind.outcome == "failure"
    )


def map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    """``value`` with ``fn`` applied to every string in it."""
    if isinstance(value, str):
        return fn(value)
    if isinstance(value, dict):
        return {k: map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [map_strings(v, fn) for v in value]
    return value
