"""Retention policy: the configured period against what each enabled standard requires.

``AUDIT_RETENTION_DAYS`` (and ``AUDIT_MAX_EVENTS``) say what pruning removes; PCI DSS
10.5.1 wants 12 months, SOX 7 years, HIPAA 6 years; a GDPR pipeline's declared retention
is a maximum. Conflicts are reported (in the log when an ``AuditSystem`` opens and in
every report); pruning itself does what it is told and leaves a signed
``retention_applied`` record, so the remaining trail still verifies.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any

from engine.audit.events import ComplianceStandard
from engine.audit.rules.builtin import retention_minimums
from engine.audit.rules.model import ConfigFacts

__all__ = ["config_facts", "retention_conflicts", "retention_summary"]


def _int(raw: str | None) -> int | None:
    return int(raw) if raw and raw.strip().isdigit() else None


def config_facts(
    env: Mapping[str, str] | None = None, declared: Mapping[str, int] | None = None
) -> ConfigFacts:
    env = os.environ if env is None else env
    return ConfigFacts(
        retention_days=_int(env.get("AUDIT_RETENTION_DAYS")),
        max_events=_int(env.get("AUDIT_MAX_EVENTS")),
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
