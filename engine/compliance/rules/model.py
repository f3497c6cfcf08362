"""``ComplianceRule`` (the seed's shape), what a rule sees of an event, and what a hit is."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from engine.compliance.risk import is_failed_auth
from engine.compliance.rules.detect import walk_strings
from engine.ledger.events import AuditLevel, ComplianceStandard

if TYPE_CHECKING:
    from engine.model.rules import RuleSpec

__all__ = [
    "ComplianceRule",
    "ConfigFacts",
    "EventKind",
    "EventView",
    "Hit",
    "PipelineFacts",
    "RuleSet",
]


@dataclass(frozen=True)
class ConfigFacts:
    """The settings that configuration rules judge (retention, for now)."""

    retention_days: int | None = None
    max_events: int | None = None
    declared_retention_days: Mapping[str, int] = field(default_factory=dict)


@dataclass
class PipelineFacts:
    """What the ``run_started`` event said about a pipeline: tags and declarations."""

    tags: frozenset[str] = frozenset()
    meta: Mapping[str, Any] = field(default_factory=dict)
    components: Mapping[str, str] = field(default_factory=dict)
    # How each transform accounts for its records: "exact", "may_drop" or "fan_out".
    accounting: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_details(cls, details: Mapping[str, Any]) -> PipelineFacts:
        """From a ``run_started`` event's details (tags, pipeline_meta, components,
        accounting)."""
        meta = details.get("pipeline_meta")
        return cls(
            tags=frozenset(str(t) for t in details.get("tags") or ()),
            meta=meta if isinstance(meta, dict) else {},
            components=_texts(details.get("components")),
            accounting=_texts(details.get("accounting")),
        )


def _texts(value: Any) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


@dataclass(slots=True)
class EventView:
    """An event as rules see it: the draft (the signed body's fields, details redacted),
    the details as given (``raw``; None for the runtime's own trusted details) and
    the facts of its pipeline."""

    draft: dict[str, Any]
    raw: Mapping[str, Any] | None = None
    pipeline: PipelineFacts | None = None
    _given: list[tuple[str, str]] | None = None
    _failed_auth: bool | None = None

    @property
    def details(self) -> dict[str, Any]:
        details: dict[str, Any] = self.draft.get("details") or {}
        return details

    def given_strings(self) -> list[tuple[str, str]]:
        """(path, text) of the strings in the details as given (``raw``, else the draft's),
        walked once per event however many rules scan them."""
        if self._given is None:
            self._given = list(walk_strings(self.raw if self.raw is not None else self.details))
        return self._given

    @property
    def failed_auth(self) -> bool:
        """Whether the event is a failed authentication (computed once)."""
        if self._failed_auth is None:
            d = self.draft
            self._failed_auth = is_failed_auth(str(d["action"]), d.get("outcome"))
        return self._failed_auth


class EventKind(NamedTuple):
    """What is known of an event before its content is read: rules whose scope excludes
    a kind are never evaluated on events of that kind."""

    action: str
    outcome: str
    # The runtime's own details (counts, digests, the stage's role and type), not given.
    trusted: bool
    # The caller gave the event time; otherwise the trail stamped it (no clock skew).
    stamped: bool
    # The tags of the event's pipeline (from its run_started event).
    tags: frozenset[str] = frozenset()


# A built-in rule's scope: whether it can fire on events of this kind at all.
Scope = Callable[[EventKind], bool]
# A built-in check: the reason a rule fires on this event, or None.
Check = Callable[[EventView], "str | None"]
# A built-in check of settings rather than events (retention): the reason it fails, or None.
ConfigCheck = Callable[["ConfigFacts"], "str | None"]
# A built-in remedy for the ``mask`` action: changes the draft in place.
Remedy = Callable[[EventView], None]


@dataclass
class ComplianceRule:
    """A rule of a standard: which events it concerns and what to do about them.

    ``conditions`` keys: event fields (``action``, ``category``, ``level``, ``outcome``,
    ``resource``, ``user_id``, ``pipeline``, ``stage``, ``producer``; a value or a list),
    ``when`` (JMESPath over the event), ``threshold`` (risk score at least),
    ``value_threshold`` / ``value_field`` (a numeric detail at least), ``window``
    (``{"count": 5, "within_s": 600, "group_by": "user_id"}``) and ``tags`` (the
    pipeline carries one of them). Any other key must equal the detail of that name.
    ``actions``: ``log_event``, ``notify`` (also ``notify_<target>``), ``alert``,
    ``halt``, ``mask``.
    """

    rule_id: str
    name: str
    description: str
    standard: ComplianceStandard
    severity: AuditLevel
    conditions: dict[str, Any] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    enabled: bool = True
    clause: str | None = None
    mask: list[str] = field(default_factory=list)
    check: Check | None = field(default=None, repr=False, compare=False)
    remedy: Remedy | None = field(default=None, repr=False, compare=False)
    # Rules that find sensitive data raise the event's risk (reason sensitive_data).
    sensitive: bool = False
    config_check: ConfigCheck | None = field(default=None, repr=False, compare=False)
    scope: Scope | None = field(default=None, repr=False, compare=False)
    # Also fails on every run that started and never finished (judged in reports).
    flags_abandoned: bool = False

    @classmethod
    def from_spec(cls, spec: RuleSpec) -> ComplianceRule:
        conditions: dict[str, Any] = dict(spec.match)
        if spec.when is not None:
            conditions["when"] = spec.when
        if spec.threshold is not None:
            conditions["threshold"] = spec.threshold
        if spec.value_threshold is not None:
            conditions["value_threshold"] = spec.value_threshold
        if spec.value_field is not None:
            conditions["value_field"] = spec.value_field
        if spec.window is not None:
            conditions["window"] = spec.window.model_dump()
        return cls(
            rule_id=spec.id,
            name=spec.name or spec.id,
            description=spec.description,
            standard=spec.standard,
            severity=spec.severity,
            conditions=conditions,
            actions=[a.value for a in spec.actions],
            enabled=spec.enabled,
            clause=spec.clause,
            mask=list(spec.mask),
        )

    @property
    def label(self) -> str:
        """``<standard> <clause>``, or the rule id."""
        return f"{self.standard.value} {self.clause}" if self.clause else self.rule_id


@dataclass(frozen=True, slots=True)
class Hit:
    """A rule that fired on one event; ``remediated`` when its ``mask`` action fixed it."""

    rule: ComplianceRule
    reason: str
    remediated: bool = False


class RuleSet(dict[str, ComplianceRule]):
    """The user's rules by id; counts its changes so compiled rules are rebuilt only then."""

    version = 0

    def _changed(self) -> None:
        self.version += 1

    def __setitem__(self, key: str, value: ComplianceRule) -> None:
        super().__setitem__(key, value)
        self._changed()

    def __delitem__(self, key: str) -> None:
        super().__delitem__(key)
        self._changed()

    def update(self, *args: Any, **kwargs: Any) -> None:
        super().update(*args, **kwargs)
        self._changed()

    def pop(self, key: str, *default: Any) -> Any:
        self._changed()
        return super().pop(key, *default)

    def clear(self) -> None:
        super().clear()
        self._changed()

    def setdefault(self, key: str, default: Any = None) -> Any:
        self._changed()
        return super().setdefault(key, default)
