"""Build a compliance report over the events of a period.

Each rule of the chosen standards is judged two ways: the ``compliance_rule_triggered``
events logged when it fired (the only record of what masking removed), and a fresh
evaluation of the stored events in time order (with fresh windows). Configuration rules
(retention) are judged against the settings.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from engine.compliance.risk import DEFAULT_RISK_THRESHOLDS, aggregate_risk, risk_band
from engine.compliance.rules.conditions import compile_rule
from engine.compliance.rules.model import ComplianceRule, ConfigFacts, EventView, PipelineFacts
from engine.compliance.rules.policy import TRIGGERED_ACTION
from engine.compliance.runs import OpenRun
from engine.ledger.events import AuditEvent, ComplianceStandard

__all__ = ["ComplianceReport", "RuleResult", "build_report"]

_MAX_EVIDENCE = 50
_SKIP = frozenset({TRIGGERED_ACTION, "retention_applied"})


@dataclass
class RuleResult:
    """One rule's verdict over the period: ``pass``, ``remediated`` (every hit was masked
    before signing) or ``fail``, with the ids of the events that are its evidence."""

    rule_id: str
    name: str
    standard: str
    clause: str | None
    severity: str
    status: str = "pass"
    hits: int = 0
    remediated: int = 0
    evidence: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set, repr=False)

    def add(self, event_id: str | None, reason: str, *, remediated: bool) -> None:
        if event_id is not None:
            if event_id in self._seen:
                return
            self._seen.add(event_id)
            if len(self.evidence) < _MAX_EVIDENCE:
                self.evidence.append(event_id)
        self.hits += 1
        if remediated:
            self.remediated += 1
        if reason not in self.reasons and len(self.reasons) < 3:
            self.reasons.append(reason)

    def finish(self) -> None:
        if self.hits == 0:
            self.status = "pass"
        elif self.remediated == self.hits:
            self.status = "remediated"
        else:
            self.status = "fail"

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "name": self.name,
            "standard": self.standard,
            "clause": self.clause,
            "severity": self.severity,
            "status": self.status,
            "hits": self.hits,
            "remediated": self.remediated,
            "evidence": list(self.evidence),
            "reasons": list(self.reasons),
        }


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
    rules: list[RuleResult] = field(default_factory=list)
    verification: dict[str, Any] | None = None
    events_by_day: dict[str, int] = field(default_factory=dict)
    retention: dict[str, Any] = field(default_factory=dict)

    @property
    def period(self) -> dict[str, str]:
        return {"start": self.start_date.isoformat(), "end": self.end_date.isoformat()}

    def rule(self, rule_id: str) -> RuleResult:
        return next(r for r in self.rules if r.rule_id == rule_id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "report_id": self.report_id,
            "generated_at": self.generated_at.isoformat(),
            "period": self.period,
            "start_date": self.start_date.isoformat(),
            "end_date": self.end_date.isoformat(),
            "standards": [s.value for s in self.standards],
            "total_events": self.total_events,
            "events_by_level": self.events_by_level,
            "events_by_category": self.events_by_category,
            "events_by_day": self.events_by_day,
            "rules": [r.to_dict() for r in self.rules],
            "rule_matches": self.rule_matches,
            "risk_analysis": self.risk_analysis,
            "recommendations": self.recommendations,
            "verification": self.verification,
            "retention": self.retention,
        }


def _select(
    rules: Iterable[ComplianceRule], standards: Sequence[ComplianceStandard]
) -> list[ComplianceRule]:
    return [r for r in rules if r.enabled and (not standards or r.standard in standards)]


def build_report(
    events: Iterable[AuditEvent],
    start_date: datetime,
    end_date: datetime,
    standards: Sequence[ComplianceStandard],
    rules: Mapping[str, ComplianceRule] | Iterable[ComplianceRule],
    thresholds: Mapping[str, float] = DEFAULT_RISK_THRESHOLDS,
    *,
    config: ConfigFacts | None = None,
    verification: Mapping[str, Any] | None = None,
    retention: Mapping[str, Any] | None = None,
    abandoned: Iterable[OpenRun] = (),
) -> ComplianceReport:
    """Counts, risk, rule verdicts with evidence, and recommendations for a period.

    ``abandoned``: runs that started and never finished; those that started in the
    period fail the rules that flag them (SOX completeness)."""
    chosen = _select(rules.values() if isinstance(rules, Mapping) else rules, standards)
    results = {
        r.rule_id: RuleResult(r.rule_id, r.name, r.standard.value, r.clause, r.severity.value)
        for r in chosen
    }
    compiled = [compile_rule(r) for r in chosen if r.config_check is None]
    levels: Counter[str] = Counter()
    categories: Counter[str] = Counter()
    bands: Counter[str] = Counter()
    days: Counter[str] = Counter()
    by_actor: dict[str, list[float]] = defaultdict(list)
    by_pipeline: dict[str, list[float]] = defaultdict(list)
    pipelines: dict[str, PipelineFacts] = {}
    scored: list[tuple[float, str, str]] = []
    started: set[str] = set()
    risk_sum = 0.0
    total = 0
    ordered = sorted(events, key=lambda e: (e.timestamp, e.producer, e.seq))
    for event in ordered:
        total += 1
        score = event.risk_score
        levels[event.level.value] += 1
        categories[event.category.value] += 1
        bands[risk_band(score, thresholds)] += 1
        days[event.timestamp.strftime("%Y-%m-%d")] += 1
        risk_sum += score
        _keep_top(by_actor[event.user_id or event.actor or "-"], score)
        if event.pipeline:
            _keep_top(by_pipeline[event.pipeline], score)
        scored.append((score, event.event_id, event.action))
        if event.action == TRIGGERED_ACTION:
            d = event.details
            result = results.get(str(d.get("rule_id")))
            if result is None:
                result = _from_trigger(d, standards)
                if result is not None:
                    results[result.rule_id] = result  # a rule this report was not given
            if result is not None:
                result.add(
                    str(d.get("event_id")),
                    str(d.get("reason")),
                    remediated=bool(d.get("remediated")),
                )
            continue
        if event.action in _SKIP:
            continue
        body = event.signed_body()
        if event.action == "run_started":
            started.add(event.event_id)
            if event.pipeline:
                pipelines[event.pipeline] = PipelineFacts.from_details(event.details)
        view = EventView(dict(body), None, pipelines.get(event.pipeline or ""))
        for each in compiled:
            reason = each.evaluate(view)
            if reason is not None:
                results[each.rule.rule_id].add(event.event_id, reason, remediated=False)
    flagging = [results[r.rule_id] for r in chosen if r.flags_abandoned]
    for run in abandoned:
        if run.event_id in started and not run.running:
            for result in flagging:
                result.add(
                    run.event_id,
                    f"run {run.run_id} started and never finished (abandoned)",
                    remediated=False,
                )
    facts = config or ConfigFacts()
    for rule in chosen:
        if rule.config_check is not None:
            reason = rule.config_check(facts)
            if reason is not None:
                results[rule.rule_id].add(None, reason, remediated=False)
    for result in results.values():
        result.finish()
    scored.sort(key=lambda item: -item[0])
    high = thresholds.get("high", 0.8)
    average = risk_sum / total if total else 0.0
    risk_analysis = {
        "average_risk_score": round(average, 6),
        "max_risk_score": scored[0][0] if scored else 0.0,
        "by_band": dict(bands),
        "high_risk_events": [eid for s, eid, _ in scored if s >= high][:20],
        "top_events": [
            {"event_id": eid, "risk_score": s, "action": action} for s, eid, action in scored[:10]
        ],
        "by_actor": _aggregates(by_actor),
        "by_pipeline": _aggregates(by_pipeline),
        "aggregate_formula": "0.7 * max + 0.3 * mean(top 5 scores)",
        "thresholds": dict(thresholds),
    }
    ordered_results = list(results.values())
    return ComplianceReport(
        report_id=uuid.uuid4().hex,
        generated_at=datetime.now(UTC),
        start_date=start_date,
        end_date=end_date,
        standards=list(standards),
        total_events=total,
        events_by_level=dict(levels),
        events_by_category=dict(categories),
        risk_analysis=risk_analysis,
        rule_matches={r.rule_id: r.hits for r in ordered_results if r.hits},
        recommendations=_recommendations(
            ordered_results, levels, categories, average, thresholds, verification, bool(chosen)
        ),
        rules=ordered_results,
        verification=dict(verification) if verification is not None else None,
        events_by_day=dict(sorted(days.items())),
        retention=dict(retention or {}),
    )


def _from_trigger(
    details: Mapping[str, Any], standards: Sequence[ComplianceStandard]
) -> RuleResult | None:
    try:
        standard = ComplianceStandard(str(details.get("standard")))
    except ValueError:
        return None
    if standards and standard not in standards:
        return None
    rule_id = str(details.get("rule_id"))
    clause = details.get("clause")
    return RuleResult(
        rule_id,
        rule_id,
        standard.value,
        str(clause) if clause is not None else None,
        str(details.get("severity") or "WARNING"),
    )


def _keep_top(scores: list[float], score: float) -> None:
    scores.append(score)
    if len(scores) > 5:
        scores.sort(reverse=True)
        del scores[5:]


def _aggregates(groups: Mapping[str, list[float]]) -> dict[str, float]:
    ranked = sorted(((aggregate_risk(v), k) for k, v in groups.items()), reverse=True)
    return {k: score for score, k in ranked[:20]}


def _recommendations(
    results: list[RuleResult],
    levels: Counter[str],
    categories: Counter[str],
    average: float,
    thresholds: Mapping[str, float],
    verification: Mapping[str, Any] | None,
    any_rules: bool,
) -> list[str]:
    out: list[str] = []
    if verification is not None and not verification.get("ok", True):
        out.append("The audit trail does not verify: investigate tampering before relying on it.")
    for r in results:
        label = f"{r.standard} {r.clause}" if r.clause else r.rule_id
        if r.status == "fail":
            out.append(f"{label} ({r.name}): {r.hits} finding(s), e.g. {r.reasons[0]}.")
        elif r.status == "remediated":
            out.append(
                f"{label} ({r.name}): {r.hits} event(s) carried data that was masked before "
                "signing; stop it at the source."
            )
    if levels["CRITICAL"] or levels["ERROR"]:
        out.append(f"Review {levels['CRITICAL'] + levels['ERROR']} error or critical events.")
    if categories["SECURITY"]:
        out.append(f"Investigate {categories['SECURITY']} security events.")
    if not any_rules:
        out.append("No enabled compliance rules apply to the chosen standards.")
    if average >= thresholds.get("medium", 0.5):
        out.append("Average risk is at or above the medium threshold.")
    return out
