"""Compile a rule's conditions once into predicates; keep the windowed counts."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

from engine.compliance.rules.model import ComplianceRule, EventKind, EventView
from engine.errors import FatalError
from engine.ledger.clock import epoch
from engine.ledger.events import AuditEvent
from engine.mapping import compile_expression
from engine.model.rules import RuleActionName, WindowSpec

__all__ = ["CompiledRule", "RuleError", "compile_rule", "epoch", "matches", "numeric_values"]

EVENT_FIELDS = frozenset(
    {"action", "category", "level", "outcome", "resource", "user_id", "pipeline", "stage"}
    | {"producer", "run_id", "actor", "host", "ip_address"}
)
_SPECIAL = frozenset({"when", "threshold", "value_threshold", "value_field", "window", "tags"})
Predicate = Callable[[EventView], bool]


class RuleError(FatalError):
    """A rule that cannot be compiled (bad expression, unknown action): nothing can be
    judged with it, so whatever ``on_error`` says, the run stops."""


def numeric_values(details: Any) -> list[float]:
    """The top-level numbers of a details object (booleans excluded)."""
    if not isinstance(details, dict):
        return []
    return [
        float(v) for v in details.values() if isinstance(v, int | float) and not isinstance(v, bool)
    ]


def _truthy(value: Any) -> bool:
    # JMESPath truthiness: false, null, "", [] and {} are false; 0 is true.
    return not (value is None or value is False or value in ("", [], {}))


def _equals(name: str, expected: Any) -> Predicate:
    wanted = frozenset(str(v) for v in expected) if isinstance(expected, list | tuple) else None
    single = str(getattr(expected, "value", expected))
    if name in EVENT_FIELDS:
        if wanted is not None:
            return lambda view: str(view.draft.get(name)) in wanted
        return lambda view: str(view.draft.get(name)) == single
    if wanted is not None:
        return lambda view: str(view.details.get(name)) in wanted
    return lambda view: view.details.get(name) == expected or str(view.details.get(name)) == single


def _value_threshold(limit: float, field: str | None) -> Predicate:
    def test(view: EventView) -> bool:
        details = view.details
        if field is not None:
            value = details.get(field)
            return isinstance(value, int | float) and not isinstance(value, bool) and value >= limit
        values = numeric_values(details)
        count = view.draft.get("record_count")
        if isinstance(count, int):
            values.append(float(count))
        return any(abs(v) >= limit for v in values)

    return test


def _when(expr: Any) -> Predicate:
    return lambda view: _truthy(expr.search(view.draft))


def _risk_at_least(limit: float) -> Predicate:
    return lambda view: float(view.draft.get("risk_score") or 0.0) >= limit


def _has_tag(tags: frozenset[str]) -> Predicate:
    return lambda view: view.pipeline is not None and bool(view.pipeline.tags & tags)


class CompiledRule:
    """A rule ready to evaluate: cheap predicates first, then the window."""

    __slots__ = ("_hits", "_kinds", "actions", "predicates", "rule", "window")

    def __init__(self, rule: ComplianceRule) -> None:
        self.rule = rule
        self.predicates: list[Predicate] = []
        self.window: WindowSpec | None = None
        self._hits: dict[str, deque[float]] = {}
        conditions = rule.conditions
        for name in sorted(conditions, key=lambda n: (n in _SPECIAL, n)):
            value = conditions[name]
            if name == "when":
                try:
                    expr = compile_expression(str(value))
                except Exception as exc:  # jmespath's error classes
                    raise RuleError(f"rule {rule.rule_id}: bad `when`: {exc}") from None
                self.predicates.append(_when(expr))
            elif name == "threshold":
                self.predicates.append(_risk_at_least(float(value)))
            elif name == "value_threshold":
                self.predicates.append(
                    _value_threshold(float(value), conditions.get("value_field"))
                )
            elif name == "value_field":
                continue
            elif name == "window":
                self.window = value if isinstance(value, WindowSpec) else WindowSpec(**value)
            elif name == "tags":
                self.predicates.append(
                    _has_tag(frozenset([value] if isinstance(value, str) else value))
                )
            else:
                self.predicates.append(_equals(name, value))
        self.actions = self._actions(rule)
        # Conditions on the action or outcome: checked once per kind of event.
        self._kinds = [
            (
                name,
                frozenset(str(v) for v in value) if isinstance(value, list | tuple) else None,
                str(getattr(value, "value", value)),
            )
            for name, value in conditions.items()
            if name in ("action", "outcome")
        ]

    def in_scope(self, kind: EventKind) -> bool:
        """False when the rule cannot fire on any event of this kind."""
        for name, wanted, single in self._kinds:
            value = kind.action if name == "action" else kind.outcome
            if (value not in wanted) if wanted is not None else value != single:
                return False
        return self.rule.scope is None or self.rule.scope(kind)

    @staticmethod
    def _actions(rule: ComplianceRule) -> frozenset[str]:
        out: set[str] = set()
        for action in rule.actions:
            name = "notify" if action.startswith("notify") else action
            try:
                out.add(RuleActionName(name).value)
            except ValueError:
                valid = ", ".join(a.value for a in RuleActionName)
                raise RuleError(
                    f"rule {rule.rule_id}: unknown action {action!r} (valid: {valid}, notify_*)"
                ) from None
        return frozenset(out)

    def test(self, view: EventView, *, stateless: bool = False) -> bool:
        """Whether the rule fires on this event."""
        return self.evaluate(view, stateless=stateless) is not None

    def evaluate(self, view: EventView, *, stateless: bool = False) -> str | None:
        """The reason the rule fires on this event, or None. Conditions first, then the
        built-in check, then the window (which counts only events that passed both)."""
        for predicate in self.predicates:
            if not predicate(view):
                return None
        check = self.rule.check
        reason = check(view) if check is not None else None
        if check is not None and reason is None:
            return None
        if self.window is not None and not stateless:
            if not self._count(view):
                return None
            w = self.window
            burst = f"{w.count} matching events by one {w.group_by} within {w.within_s:g}s"
            return f"{reason}: {burst}" if reason else burst
        if reason is None and not self.predicates and self.window is None:
            return None  # a rule without conditions matches nothing
        return reason or self.rule.description or self.rule.name

    def _count(self, view: EventView) -> bool:
        window = self.window
        assert window is not None
        key = str(view.draft.get(window.group_by) or view.details.get(window.group_by))
        now = epoch(view.draft["timestamp"])
        times = self._hits.setdefault(key, deque())
        times.append(now)
        while times and now - times[0] > window.within_s:
            times.popleft()
        if len(times) >= window.count:
            times.clear()  # one hit per burst; the next burst counts afresh
            return True
        return False


def compile_rule(rule: ComplianceRule) -> CompiledRule:
    return CompiledRule(rule)


def matches(rule: ComplianceRule, event: AuditEvent) -> bool:
    """Whether the rule's conditions hold for one stored event (no window state)."""
    return compile_rule(rule).test(EventView(dict(event.signed_body())), stateless=True)
