"""Compliance rules and a basic compliance report (rule evaluation proper is a later issue)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.audit.events import AuditEvent, AuditLevel, ComplianceStandard
from engine.audit.risk import DEFAULT_RISK_THRESHOLDS, risk_band

__all__ = ["ComplianceReport", "ComplianceRule", "build_report"]

# Condition keys that name event fields; other keys (thresholds) are for later rules.
_EVENT_FIELDS = ("action", "category", "level", "resource", "user_id", "pipeline", "stage")


@dataclass
class ComplianceRule:
    """A rule of a standard: which events it concerns and what to do about them."""

    rule_id: str
    name: str
    description: str
    standard: ComplianceStandard
    severity: AuditLevel
    conditions: dict[str, Any] = field(default_factory=dict)
    actions: list[str] = field(default_factory=list)
    enabled: bool = True

    def matches(self, event: AuditEvent) -> bool:
        """True when every event-field condition equals the event's value."""
        for name in _EVENT_FIELDS:
            if name in self.conditions:
                value = getattr(event, name)
                value = getattr(value, "value", value)
                if value != self.conditions[name]:
                    return False
        return any(name in self.conditions for name in _EVENT_FIELDS)


@dataclass(frozen=True)
class ComplianceReport:
    report_id: str
    generated_at: datetime
    start_date: datetime
    end_date: datetime
    standards: list[ComplianceStandard]
    total_events: int
    events_by_level: dict[str, int]
    events_by_category: dict[str, int]
    risk_analysis: dict[str, Any]
    rule_matches: dict[str, int]
    recommendations: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "report_id": self.report_id,
            "generated_at": self.generated_at.isoformat(),
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "standards": [s.value for s in self.standards],
            "total_events": self.total_events,
            "events_by_level": self.events_by_level,
            "events_by_category": self.events_by_category,
            "risk_analysis": self.risk_analysis,
            "rule_matches": self.rule_matches,
            "recommendations": self.recommendations,
        }


def build_report(
    events: Iterable[AuditEvent],
    start_date: datetime,
    end_date: datetime,
    standards: Sequence[ComplianceStandard],
    rules: Mapping[str, ComplianceRule],
    thresholds: Mapping[str, float] = DEFAULT_RISK_THRESHOLDS,
) -> ComplianceReport:
    """Counts, risk bands and rule matches over the events of a period."""
    levels: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    bands: Counter[str] = Counter()
    matches: Counter[str] = Counter()
    active = [r for r in rules.values() if r.enabled and (not standards or r.standard in standards)]
    total = 0
    risk_sum = 0.0
    risk_max = 0.0
    high_risk: list[str] = []
    high = thresholds.get("high", 0.8)
    for event in events:
        total += 1
        levels[event.level.value] += 1
        categories[event.category.value] += 1
        bands[risk_band(event.risk_score, thresholds)] += 1
        risk_sum += event.risk_score
        risk_max = max(risk_max, event.risk_score)
        if event.risk_score >= high and len(high_risk) < 20:
            high_risk.append(event.event_id)
        for rule in active:
            if rule.matches(event):
                matches[rule.rule_id] += 1
    average = risk_sum / total if total else 0.0
    recommendations: list[str] = []
    if levels["CRITICAL"] or levels["ERROR"]:
        recommendations.append(
            f"Review {levels['CRITICAL'] + levels['ERROR']} error or critical events."
        )
    if categories["SECURITY"]:
        recommendations.append(f"Investigate {categories['SECURITY']} security events.")
    if not active:
        recommendations.append("No enabled compliance rules apply to the chosen standards.")
    if average >= thresholds.get("medium", 0.5):
        recommendations.append("Average risk is at or above the medium threshold.")
    return ComplianceReport(
        report_id=uuid.uuid4().hex,
        generated_at=datetime.now(UTC),
        start_date=start_date,
        end_date=end_date,
        standards=list(standards),
        total_events=total,
        events_by_level=dict(levels),
        events_by_category=dict(categories),
        risk_analysis={
            "average_risk_score": round(average, 6),
            "max_risk_score": risk_max,
            "by_band": dict(bands),
            "high_risk_events": high_risk,
        },
        rule_matches=dict(matches),
        recommendations=recommendations,
    )
