"""``AuditSystem``: the Python façade of the seed's API over the same trail the runtime writes."""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from pydantic import SecretStr

from engine.audit.access import origin, record_access
from engine.audit.wiring import AuditResources, open_resources
from engine.compliance.reports.build import ComplianceReport
from engine.compliance.reports.service import report_from_store, report_retention_conflicts
from engine.compliance.retention import retention_limits
from engine.compliance.risk import DEFAULT_RISK_THRESHOLDS, RiskModel
from engine.compliance.rules.model import RuleSet
from engine.compliance.rules.policy import CompliancePolicy
from engine.ledger.events import (
    AuditCategory,
    AuditEvent,
    AuditLevel,
    ComplianceStandard,
    Outcome,
)
from engine.ledger.pruning import RetentionLimits, prune_chain
from engine.ledger.store import AuditStore, EventFilter, StoredEvent
from engine.ledger.verify import ProblemKind, verify_chain
from engine.model.audit import AuditSettings
from engine.settings import EngineSettings
from engine.workspace import workspace_for

__all__ = ["AuditSystem", "default_workspace", "stored_to_event"]

log = logging.getLogger("engine.audit")


def default_workspace(env: EngineSettings) -> Path:
    """The workspace with no pipeline file: ``$ENGINE_HOME``, else ``./.engine`` (the rule
    of :mod:`engine.workspace`)."""
    return workspace_for(None, env)


def stored_to_event(stored: StoredEvent) -> AuditEvent:
    return AuditEvent.model_validate({**orjson.loads(stored.body), "mac": stored.mac})


class AuditSystem:
    """Log, verify, query and report on audit events from Python.

    ``store`` is a SQLAlchemy URL (default: SQLite in the workspace: ``workspace``, else
    ``$ENGINE_HOME``, else ``./.engine``); ``secret_key`` defaults to ``AUDIT_SECRET_KEY``,
    else a generated key file. Each :meth:`log_event` is signed and stored before it returns. Call
    :meth:`close` (or use ``with``) to write the final signed checkpoint.
    """

    def __init__(
        self,
        secret_key: str | None = None,
        store: str | None = None,
        *,
        workspace: Path | None = None,
        producer: str = "api",
        checkpoint_every: int = 10_000,
        settings: EngineSettings | None = None,
    ) -> None:
        # the environment's settings (ENGINE_HOME, AUDIT_*): read here unless passed
        env = settings if settings is not None else EngineSettings.load()
        self.workspace = workspace_for(None, env, workspace)
        table = AuditSettings(
            key=SecretStr(secret_key) if secret_key else None,
            store=store,
            checkpoint_every=checkpoint_every,
            flush_every=1,
        )
        limits = retention_limits(None, env)
        self.max_events = limits.max_events
        self.retention_days = limits.days
        self.compliance_rules: RuleSet = RuleSet()
        self.risk_thresholds: dict[str, float] = dict(DEFAULT_RISK_THRESHOLDS)
        self._debug = False
        self._resources: AuditResources = open_resources(table, self.workspace, env=env)
        if self._resources.policy is not None:
            # Rules added to compliance_rules apply to the next event logged.
            self._resources.policy.user = self.compliance_rules
            report_retention_conflicts(self._resources.policy, env)
        self._trail = self._resources.trail(producer, actor="api")
        self._finalizer = weakref.finalize(self, self._resources.close)
        self._host = origin()[1]

    # --- seed API -------------------------------------------------------------

    @property
    def debug_mode(self) -> bool:
        return self._debug

    @debug_mode.setter
    def debug_mode(self, value: bool) -> None:
        """Log every event (ids and actions, never details) at DEBUG."""
        self._debug = bool(value)
        if value:
            log.setLevel(logging.DEBUG)

    @property
    def store(self) -> AuditStore:
        return self._resources.store

    @property
    def policy(self) -> CompliancePolicy | None:
        """The compliance policy applied to every event (built-in and added rules)."""
        return self._resources.policy

    @property
    def risk_model(self) -> RiskModel:
        """The weights of the risk contributions (see engine.compliance.risk)."""
        policy = self._resources.policy
        return policy.risk if policy is not None else RiskModel()

    def log_event(
        self,
        level: AuditLevel,
        category: AuditCategory,
        action: str,
        resource: str | None = None,
        details: Mapping[str, Any] | None = None,
        user_id: str | None = None,
        ip_address: str | None = None,
        *,
        outcome: Outcome = Outcome.SUCCESS,
        risk_score: float | None = None,
    ) -> str:
        """Sign, chain and store one event; returns its id. Details are redacted."""
        event_id = self._trail.emit(
            level=level,
            category=category,
            action=action,
            resource=resource,
            details=details,
            user_id=user_id,
            ip_address=ip_address,
            host=self._host,
            outcome=outcome,
            risk=risk_score,
        )
        self._trail.flush()
        if self._debug:
            log.debug("audit event %s %s %s", event_id, level, action)
        return event_id

    def verify_integrity(self, event_id: str) -> bool:
        """True when the event's MAC verifies and it links to its stored neighbours."""
        stored = self.store.get(event_id)
        if stored is None:
            return False
        before, after = self.store.neighbours(stored.producer, stored.seq)
        if before is None and stored.seq != 1:
            return False
        rows = [r for r in (before, stored, after) if r is not None]
        report = verify_chain(
            stored.producer,
            [(bytes(r.body), r.mac, r) for r in rows],
            self._resources.keyring,
        )
        # A window starting past seq 1 shows a gap before it; only problems of the event
        # itself, and the link from the next event to it, count.
        relevant = [
            p
            for p in report.problems
            if p.seq == stored.seq
            or p.event_id == stored.event_id
            or (after is not None and p.seq == after.seq and p.kind is ProblemKind.BROKEN_LINK)
        ]
        return not relevant and (before is None or before.seq == stored.seq - 1)

    def get_statistics(self) -> dict[str, Any]:
        stats = self.store.stats()
        return {
            "total_events": stats.total_events,
            "average_risk_score": stats.average_risk_score,
            "active_rules": sum(1 for r in self.compliance_rules.values() if r.enabled),
            "events_by_level": stats.events_by_level,
            "events_by_category": stats.events_by_category,
            "chains": stats.chains,
            "first_event_at": stats.first_timestamp,
            "last_event_at": stats.last_timestamp,
            "max_events": self.max_events,
            "retention_days": self.retention_days,
        }

    def query_events(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        level: AuditLevel | None = None,
        category: AuditCategory | None = None,
        action: str | None = None,
        user_id: str | None = None,
        pipeline: str | None = None,
        run_id: str | None = None,
        limit: int | None = 100,
    ) -> list[AuditEvent]:
        """Matching events, newest first. The read is itself audited."""
        where = EventFilter(
            since=since,
            until=until,
            levels=[level.value] if level else (),
            categories=[category.value] if category else (),
            action=action,
            user_id=user_id,
            pipeline=pipeline,
            run_id=run_id,
        )
        found = [stored_to_event(s) for s in self.store.query(where, limit=limit)]
        self._audit_read("query", {"returned": len(found)})
        return found

    def generate_compliance_report(
        self,
        start_date: datetime,
        end_date: datetime,
        standards: Sequence[ComplianceStandard] = (),
    ) -> ComplianceReport:
        """Counts, risk, every rule's verdict with evidence, recommendations and the
        chain verification for the period (see engine.compliance.reports)."""
        report = report_from_store(
            self._resources,
            start_date,
            end_date,
            standards,
            user_rules=self.compliance_rules,
            thresholds=self.risk_thresholds,
        )
        self._audit_read(
            "compliance_report",
            {"report_id": report.report_id, "standards": [s.value for s in standards]},
        )
        return report

    def _audit_read(self, what: str, details: Mapping[str, Any]) -> None:
        """A read through the API lands where the CLI's do (see engine.audit.access)."""
        record_access(self._resources, what, details, actor="api")

    def apply_retention(
        self, *, retention_days: int | None = None, max_events: int | None = None
    ) -> dict[str, int]:
        """Prune every chain to ``retention_days`` and ``max_events`` (default: the
        ``AUDIT_RETENTION_DAYS`` / ``AUDIT_MAX_EVENTS`` settings; max per chain).

        Each pruned chain gets a signed ``retention_applied`` event anchoring what was
        removed, so the trail still verifies. Returns chain -> last pruned sequence number.
        """
        limits = RetentionLimits(
            retention_days if retention_days is not None else self.retention_days,
            max_events if max_events is not None else self.max_events,
        )
        if not limits.active:
            return {}
        now = datetime.now(UTC)  # one cutoff for every chain
        pruned: dict[str, int] = {}
        for producer in self.store.producers():
            trail = (
                self._trail
                if producer == self._trail.producer
                else self._resources.trail(producer, actor="retention")
            )
            anchor = prune_chain(trail, limits, now=now)
            if anchor is not None:
                pruned[producer] = anchor.seq
            if trail is not self._trail:
                trail.checkpoint()
        return pruned

    # --- lifecycle ------------------------------------------------------------

    def close(self) -> None:
        """Apply the retention settings, write the final checkpoint, close the store."""
        if self._finalizer.alive:
            try:
                self.apply_retention()
                self._trail.close()
            finally:
                self._finalizer()

    def __enter__(self) -> AuditSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
