"""Retention policy: the configured period against what each enabled standard requires.

``AUDIT_RETENTION_DAYS`` (and ``AUDIT_MAX_EVENTS``) say what pruning removes; PCI DSS
10.5.1 wants 12 months, SOX 7 years, HIPAA 6 years; a GDPR pipeline's declared retention
is a maximum. Conflicts are reported (in the log when an ``AuditSystem`` opens and in
every report); pruning itself does what it is told and leaves a signed
``retention_applied`` record, so the remaining trail still verifies.

Both ``AuditSystem.apply_retention`` (every chain, on close) and the runtime's observer
(its own ``pipeline:<name>`` chain, at run end) prune through
:func:`engine.ledger.pruning.prune_chain` with the limits :func:`retention_limits` gives.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from engine.compliance.rules.model import ConfigFacts
from engine.compliance.standards import retention_minimums
from engine.ledger.events import ComplianceStandard
from engine.ledger.pruning import RetentionLimits
from engine.model.audit import AuditSettings
from engine.settings import EngineSettings

__all__ = [
    "RetentionLimits",
    "config_facts",
    "retention_conflicts",
    "retention_limits",
    "retention_summary",
]


def retention_limits(
    settings: AuditSettings | None = None, env: EngineSettings | None = None
) -> RetentionLimits:
    """The limits in force: ``AUDIT_RETENTION_DAYS`` / ``AUDIT_MAX_EVENTS`` where set, else
    ``[audit] retention_days`` / ``max_events``.

    The environment wins so that an operator's policy, which the compliance rules and
    reports judge, is the one applied; a pipeline file only fills in what it leaves unset.
    """
    env = env if env is not None else EngineSettings.defaults()
    days = env.audit_retention_days
    events = env.audit_max_events
    if settings is not None:
        days = settings.retention_days if days is None else days
        events = settings.max_events if events is None else events
    return RetentionLimits(days, events)


def config_facts(
    env: EngineSettings | None = None, declared: Mapping[str, int] | None = None
) -> ConfigFacts:
    env = env if env is not None else EngineSettings.defaults()
    return ConfigFacts(
        retention_days=env.audit_retention_days,
        max_events=env.audit_max_events,
        declared_retention_days=dict(declared or {}),
    )


def retention_conflicts(facts: ConfigFacts, standards: Collection[ComplianceStandard]) -> list[str]:
    """Every way the retention settings contradict an enabled standard or a declaration."""
    out: list[str] = []
    minimums = {s: d for s, d in retention_minimums().items() if s in standards}
    days = facts.retention_days
    for standard, minimum in sorted(minimums.items()):
        if days is not None and days < minimum:
            out.append(
                f"AUDIT_RETENTION_DAYS={days} is below the {minimum} days {standard.value} requires"
            )
    if ComplianceStandard.GDPR in standards:
        for pipeline, declared in sorted(facts.declared_retention_days.items()):
            if days is None or days > declared:
                kept = "forever" if days is None else f"{days} days"
                out.append(
                    f"pipeline {pipeline} declares {declared} days of retention (GDPR) but "
                    f"audit events are kept {kept}"
                )
            for standard, minimum in sorted(minimums.items()):
                if declared < minimum:
                    out.append(
                        f"pipeline {pipeline} declares {declared} days (GDPR maximum) but "
                        f"{standard.value} requires at least {minimum}"
                    )
    return out


def retention_summary(
    facts: ConfigFacts, standards: Collection[ComplianceStandard]
) -> dict[str, Any]:
    minimums = {s.value: d for s, d in retention_minimums().items() if s in standards}
    return {
        "retention_days": facts.retention_days,
        "max_events": facts.max_events,
        "required_minimum_days": minimums,
        "conflicts": retention_conflicts(facts, standards),
    }
