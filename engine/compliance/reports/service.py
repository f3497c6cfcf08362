"""Reports and explanations read from a store: what ``AuditSystem`` and the CLI call."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import orjson

from engine.compliance.reports.build import ComplianceReport, build_report
from engine.compliance.retention import config_facts, retention_conflicts, retention_summary
from engine.compliance.risk import DEFAULT_RISK_THRESHOLDS, RiskModel, is_failed_auth
from engine.compliance.rules.model import ComplianceRule
from engine.compliance.rules.policy import TRIGGERED_ACTION, CompliancePolicy
from engine.compliance.runs import open_runs, running_run_ids
from engine.ledger.events import AuditEvent, ComplianceStandard
from engine.ledger.keys import HmacKeyring, SigningKey, load_public_keys
from engine.ledger.store import AuditStore, EventFilter
from engine.ledger.verify import verify_store
from engine.settings import EngineSettings

__all__ = ["TrailResources", "explain_event", "report_from_store", "report_retention_conflicts"]

log = logging.getLogger("engine.audit.compliance")


def _event(body: bytes, mac: str) -> AuditEvent:
    return AuditEvent.model_validate({**orjson.loads(body), "mac": mac})


class TrailResources(Protocol):
    """What a report reads: a trail's store, keys, checkpoints and policy (the audit
    layer's ``AuditResources``)."""

    store: AuditStore
    keyring: HmacKeyring
    signing: SigningKey | None
    checkpoint_dir: Path
    workspace: Path
    policy: CompliancePolicy | None
    env: EngineSettings


def report_retention_conflicts(
    policy: CompliancePolicy, env: EngineSettings | None = None
) -> list[str]:
    """Log (WARNING) every conflict between retention settings (``env``) and enabled
    standards."""
    conflicts = retention_conflicts(config_facts(env), policy.standards)
    for line in conflicts:
        log.warning("retention conflict: %s", line)
    return conflicts


def report_from_store(
    resources: TrailResources,
    start: datetime,
    end: datetime,
    standards: Sequence[ComplianceStandard] = (),
    *,
    user_rules: Mapping[str, ComplianceRule] | None = None,
    thresholds: Mapping[str, float] = DEFAULT_RISK_THRESHOLDS,
) -> ComplianceReport:
    """The report of a period: the policy's rules (and ``user_rules``) for ``standards``
    (default: every enabled standard), with the store's verification."""
    policy = resources.policy
    rules: list[ComplianceRule] = []
    chosen: Sequence[ComplianceStandard] = standards
    if policy is not None:
        rules = [*policy.builtin, *policy.configured]
        if not chosen:
            chosen = sorted(policy.standards)
    rules += [r for r in (user_rules or {}).values() if r not in rules]
    store = resources.store
    events = (
        _event(bytes(s.body), s.mac) for s in store.iter_query(EventFilter(since=start, until=end))
    )
    verification = verify_store(
        store,
        resources.keyring,
        checkpoint_paths=[resources.checkpoint_dir],
        public_keys=load_public_keys(resources.workspace, signing=resources.signing),
    )
    declared = _declared_retention(store, start, end)
    facts = config_facts(resources.env, declared=declared)
    return build_report(
        events,
        start,
        end,
        chosen,
        rules,
        thresholds,
        config=facts,
        verification={
            "ok": verification.ok,
            "events": verification.events,
            "checkpoints": verification.checkpoints,
            "chains": len(verification.chains),
            "problems": [p.to_dict() for p in verification.all_problems()[:20]],
        },
        retention=retention_summary(facts, chosen),
        abandoned=open_runs(store, running_run_ids(resources.workspace)),
    )


def _declared_retention(store: AuditStore, start: datetime, end: datetime) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in store.iter_query(EventFilter(since=start, until=end, action="run_started")):
        body = orjson.loads(row.body)
        meta = body.get("details", {}).get("pipeline_meta") or {}
        tags = body.get("details", {}).get("tags") or []
        days = meta.get("retention_days") if isinstance(meta, dict) else None
        if "personal_data" in tags and isinstance(days, int) and body.get("pipeline"):
            out[str(body["pipeline"])] = days
    return out


def explain_event(
    store: AuditStore, event_id: str, model: RiskModel | None = None
) -> dict[str, Any] | None:
    """How an event's risk score is made up, and which rules fired on it; None if unknown."""
    stored = store.get(event_id)
    if stored is None:
        return None
    event = _event(bytes(stored.body), stored.mac)
    model = model or RiskModel()
    body = event.signed_body()
    before = 0
    if is_failed_auth(event.action, event.outcome.value):
        window = EventFilter(
            since=event.timestamp - timedelta(seconds=model.burst_window_s),
            until=event.timestamp,
            user_id=event.user_id,
        )
        for row in store.iter_query(window):
            other = orjson.loads(row.body)
            if other["event_id"] != event.event_id and is_failed_auth(
                str(other["action"]), other.get("outcome")
            ):
                before += 1
    fired = _triggers(store, event)
    sensitive = next((f["label"] for f in fired if f.get("sensitive")), None)
    explanation = model.explain(body, failed_auth_before=before, sensitive=sensitive)
    return {
        "event_id": event.event_id,
        "action": event.action,
        "level": event.level.value,
        "category": event.category.value,
        "timestamp": body["timestamp"],
        "stored_risk_score": event.risk_score,
        **explanation,
        "rules": [{k: v for k, v in f.items() if k != "sensitive"} for f in fired],
    }


_SENSITIVE_PREFIXES = ("PCI_DSS-3.4", "HIPAA-164.312.b-identifiers", "GDPR-5.1.c")


def _triggers(store: AuditStore, event: AuditEvent) -> list[dict[str, Any]]:
    where = EventFilter(
        since=event.timestamp - timedelta(seconds=1),
        until=event.timestamp + timedelta(hours=1),
        action=TRIGGERED_ACTION,
    )
    found: list[dict[str, Any]] = []
    rows: Iterable[Any] = store.iter_query(where)
    for row in rows:
        details = orjson.loads(row.body).get("details", {})
        if details.get("event_id") == event.event_id:
            rule_id = str(details.get("rule_id"))
            found.append(
                {
                    "rule_id": rule_id,
                    "label": f"{details.get('standard')} {details.get('clause')}",
                    "reason": details.get("reason"),
                    "remediated": details.get("remediated"),
                    "sensitive": rule_id.startswith(_SENSITIVE_PREFIXES),
                }
            )
    return found
