"""The compliance policy a trail applies to every event before it is signed.

The policy is an :class:`~engine.ledger.hooks.EventHook` of the ledger's writer:
:meth:`CompliancePolicy.inspect` runs on the draft (masking, raising the level, scoring
the risk); :meth:`CompliancePolicy.follow_up` runs after the draft is queued (the
``compliance_rule_triggered`` event through the writer's public ``emit``, notifications,
halting). Rules without actions are left to reports, so logging pays only for the rules
that can act.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from engine.compliance.risk import RiskModel
from engine.compliance.rules.conditions import CompiledRule, compile_rule
from engine.compliance.rules.model import (
    ComplianceRule,
    EventKind,
    EventView,
    Hit,
    PipelineFacts,
    RuleSet,
)
from engine.compliance.standards import BuiltinConfig, builtin_rules
from engine.compliance.standards.custom import configured_rules
from engine.errors import FatalError
from engine.ledger.errors import AuditError
from engine.ledger.events import AuditCategory, AuditLevel, ComplianceStandard, EventDraft, Outcome
from engine.ledger.hooks import Emitter
from engine.model.audit import AuditSettings
from engine.redact import MASK
from engine.settings import EngineSettings

__all__ = [
    "TRIGGERED_ACTION",
    "ComplianceHalt",
    "CompliancePolicy",
    "enabled_standards",
    "pseudonym_key",
]

log = logging.getLogger("engine.audit.compliance")

TRIGGERED_ACTION = "compliance_rule_triggered"
_LEVELS = list(AuditLevel)
_NO_TAGS: frozenset[str] = frozenset()


class ComplianceHalt(AuditError, FatalError):
    """A rule with the ``halt`` action fired: the run stops (the event is stored first),
    whatever ``on_error`` says."""

    def __init__(self, rule: ComplianceRule, event_id: str, reason: str) -> None:
        self.rule_id = rule.rule_id
        self.event_id = event_id
        super().__init__(
            f"compliance rule {rule.rule_id} ({rule.label}) halted the run on event "
            f"{event_id}: {reason}"
        )


def enabled_standards(
    settings: AuditSettings, env: EngineSettings | None = None
) -> frozenset[ComplianceStandard]:
    """The standards whose rules run: none when compliance is off (``[audit] compliance``
    or ``AUDIT_COMPLIANCE_ENABLED``); else ``[audit] standards`` (default: all), minus any
    switched off by ``COMPLIANCE_<STANDARD>_ENABLED``. CUSTOM rules follow the same switch."""
    env = env if env is not None else EngineSettings.defaults()
    if not settings.compliance or env.audit_compliance_enabled is False:
        return frozenset()
    chosen = (
        {ComplianceStandard(s.upper()) for s in settings.standards}
        if settings.standards
        else set(ComplianceStandard)
    )
    return frozenset(s for s in chosen if env.compliance_switch(s.value) is not False)


def pseudonym_key(hmac_key: bytes, env: EngineSettings | None = None) -> bytes:
    """``AUDIT_PSEUDONYM_KEY``, else a key derived from the audit HMAC key."""
    given = env.audit_pseudonym_key if env is not None else None
    if given:
        return given.get_secret_value().encode()
    return hmac.new(hmac_key, b"engine-audit pseudonym", hashlib.sha256).digest()


def _mask_fields(value: Any, names: frozenset[str]) -> Any:
    if isinstance(value, dict):
        return {
            k: MASK if str(k).lower() in names else _mask_fields(v, names) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_mask_fields(v, names) for v in value]
    return value


class CompliancePolicy:
    """Built-in, configured and user rules for the enabled standards, plus the risk model."""

    def __init__(
        self,
        *,
        builtin: Iterable[ComplianceRule] = (),
        configured: Iterable[ComplianceRule] = (),
        standards: frozenset[ComplianceStandard] = frozenset(ComplianceStandard),
        risk: RiskModel | None = None,
        notifier: Any = None,
    ) -> None:
        self.builtin = list(builtin)
        self.configured = list(configured)
        self.user: RuleSet = RuleSet()
        self.standards = standards
        self.risk = risk or RiskModel()
        self.notifier = notifier
        self.pipelines: dict[str, PipelineFacts] = {}
        self._compiled: list[CompiledRule] = []
        self._acting: list[CompiledRule] = []
        # The acting rules in scope, per kind of event (cleared when the rules change).
        self._plans: dict[tuple[str, str, bool, bool, frozenset[str]], list[CompiledRule]] = {}
        self._version: tuple[int, int] = (-1, -1)
        self._busy = False
        self.hits = 0

    @classmethod
    def from_settings(
        cls,
        settings: AuditSettings,
        *,
        hmac_key: bytes,
        is_approved: Callable[[str], bool],
        now_text: Callable[[], str] | None = None,
        base_dir: str | None = None,
        env: EngineSettings | None = None,
        load_rules: Callable[[str], list[ComplianceRule]] | None = None,
    ) -> CompliancePolicy:
        """The policy of a pipeline's ``[audit]`` table (and its rules file, read with
        ``load_rules``: the config layer's located loader)."""
        env = env if env is not None else EngineSettings.defaults()
        config = BuiltinConfig(
            personal_fields=frozenset(f.lower() for f in settings.personal_fields),
            pseudonym_key=pseudonym_key(hmac_key, env),
            is_approved=lambda sha: sha in settings.approved_sha256 or is_approved(sha),
            max_clock_skew_s=settings.max_clock_skew_s,
            retention_days=env.audit_retention_days,
            now_text=now_text,
        )
        configured = configured_rules(settings, load_rules, base_dir=base_dir)
        notifier = None
        if settings.notify_url:
            from engine.compliance.rules.notify import Notifier

            given = settings.notify_secret or env.audit_notify_secret
            secret = (
                given.get_secret_value().encode()
                if given
                else hmac.new(hmac_key, b"engine-audit notify", hashlib.sha256).digest()
            )
            notifier = Notifier(settings.notify_url, secret)
        return cls(
            builtin=builtin_rules(config),
            configured=configured,
            standards=enabled_standards(settings, env),
            notifier=notifier,
        )

    # --- rules -------------------------------------------------------------------

    def all_rules(self) -> list[ComplianceRule]:
        """Every rule known, enabled or not, built-in first."""
        return [*self.builtin, *self.configured, *self.user.values()]

    def compiled(self) -> list[CompiledRule]:
        """The enabled rules of enabled standards, compiled (rebuilt when rules change)."""
        version = (self.user.version, len(self.user))
        if version != self._version:
            self._compiled = [
                compile_rule(r)
                for r in self.all_rules()
                if r.enabled and r.config_check is None and r.standard in self.standards
            ]
            self._acting = [c for c in self._compiled if c.actions]
            self._plans = {}
            self._version = version
        return self._compiled

    def acting(self) -> list[CompiledRule]:
        """The compiled rules that have actions (those run as events are logged)."""
        if (self.user.version, len(self.user)) != self._version:
            self.compiled()
        return self._acting

    def facts(self, draft: Mapping[str, Any]) -> PipelineFacts | None:
        name = draft.get("pipeline")
        return self.pipelines.get(name) if isinstance(name, str) else None

    def note_pipeline(self, draft: Mapping[str, Any]) -> None:
        """Remember a pipeline's tags and declarations from its ``run_started`` event."""
        details = draft.get("details") or {}
        self.pipelines[str(draft.get("pipeline"))] = PipelineFacts.from_details(details)

    # --- the trail's hooks ---------------------------------------------------------

    def plan(
        self,
        action: str,
        outcome: str,
        trusted: bool,
        stamped: bool,
        tags: frozenset[str] = frozenset(),
    ) -> list[CompiledRule]:
        """The acting rules that can fire on events of this kind (computed once per kind)."""
        acting = self.acting()  # rebuilds (and forgets the plans) when the rules changed
        key = (action, outcome, trusted, stamped, tags)
        found = self._plans.get(key)
        if found is None:
            kind = EventKind(*key)
            found = [c for c in acting if c.in_scope(kind)]
            if len(self._plans) < 4096:
                self._plans[key] = found
        return found

    def inspect(
        self,
        draft: EventDraft,
        raw: Mapping[str, Any] | None,
        *,
        score: bool = True,
        stamped: bool = True,
    ) -> list[Hit] | None:
        """Apply the acting rules and the risk model to a draft, in place.

        ``raw``: the details as given (None for the runtime's own); ``stamped``: the
        caller gave the event time (False when the trail stamped it).
        """
        if self._busy:
            return None
        action = draft["action"]
        if action == "run_started":
            self.note_pipeline(draft)
        hits: list[Hit] | None = None
        sensitive: str | None = None
        level = draft["level"]
        facts = self.facts(draft)
        tags = facts.tags if facts is not None else _NO_TAGS
        plan = self.plan(action, draft["outcome"], raw is None, stamped, tags)
        if plan:
            view = EventView(draft, raw, facts)  # type: ignore[arg-type]
            for compiled in plan:
                if not compiled.rule.enabled:
                    continue
                reason = compiled.evaluate(view)
                if reason is None:
                    continue
                rule = compiled.rule
                actions = compiled.actions
                remediated = False
                if "mask" in actions:
                    if rule.remedy is not None:
                        rule.remedy(view)
                    if rule.mask:
                        draft["details"] = _mask_fields(
                            view.details, frozenset(f.lower() for f in rule.mask)
                        )
                    remediated = True
                if "alert" in actions and _LEVELS.index(rule.severity) > _LEVELS.index(
                    AuditLevel(draft["level"])
                ):
                    draft["level"] = rule.severity.value
                if rule.sensitive:
                    sensitive = rule.label
                if hits is None:
                    hits = []
                hits.append(Hit(rule, reason, remediated))
        if score:
            extra = self.risk.contributions(draft, sensitive=sensitive)
            if extra or draft["level"] != level:
                draft["risk_score"] = self.risk.score(draft["level"], draft["category"], extra)
        return hits

    def follow_up(self, trail: Emitter, draft: EventDraft, hits: list[Hit]) -> None:
        """After the event is queued: log, notify and halt for each hit."""
        halting: Hit | None = None
        self._busy = True
        try:
            for hit in hits:
                self.hits += 1
                rule = hit.rule
                actions = _actions(rule)
                message = {
                    "rule_id": rule.rule_id,
                    "standard": rule.standard.value,
                    "clause": rule.clause,
                    "severity": rule.severity.value,
                    "event_id": draft["event_id"],
                    "event_action": draft["action"],
                    "reason": hit.reason,
                    "remediated": hit.remediated,
                }
                if "log_event" in actions:
                    trail.emit(
                        level=rule.severity,
                        category=AuditCategory.COMPLIANCE,
                        action=TRIGGERED_ACTION,
                        resource=draft.get("resource"),
                        outcome=Outcome.SUCCESS if hit.remediated else Outcome.FAILURE,
                        user_id=draft.get("user_id"),
                        actor=draft.get("actor"),
                        ip_address=draft.get("ip_address"),
                        host=draft.get("host"),
                        pipeline=draft.get("pipeline"),
                        run_id=draft.get("run_id"),
                        stage=draft.get("stage"),
                        details=message,
                        trusted_details=True,
                    )
                if "notify" in actions:
                    targets = [a[7:] for a in rule.actions if a.startswith("notify_")]
                    log.warning(
                        "compliance rule %s (%s) fired on event %s%s",
                        rule.rule_id,
                        rule.label,
                        draft["event_id"],
                        f" (notify {', '.join(targets)})" if targets else "",
                    )
                    if self.notifier is not None:
                        self.notifier.send({**message, "targets": targets, "type": "compliance"})
                if "halt" in actions and halting is None:
                    halting = hit
        finally:
            self._busy = False
        if halting is not None:
            trail.flush()
            raise ComplianceHalt(halting.rule, str(draft["event_id"]), halting.reason)

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.close()


def _actions(rule: ComplianceRule) -> frozenset[str]:
    return frozenset("notify" if a.startswith("notify") else a for a in rule.actions)
