"""SOX section 404 IT general controls: change management and completeness; 7 years of
audit history (SEC 17 CFR 210.2-06)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from engine.compliance.rules.model import ComplianceRule, EventView
from engine.compliance.standards.base import RAISE, BuiltinConfig, rule
from engine.ledger.events import AuditLevel, ComplianceStandard

__all__ = ["RETENTION_DAYS", "rules", "unaccounted"]

SOX = ComplianceStandard.SOX
RETENTION_DAYS = 7 * 365


def unaccounted(stages: Mapping[str, Any], accounting: Mapping[str, str]) -> list[str]:
    """The stages of a finished run whose records in are not records out plus rejected.

    ``accounting`` says, per stage, how its records may differ from one in, one out (the
    ``records`` the run declared for it): ``"fan_out"`` stages may send a record to several
    outputs and are not judged, ``"may_drop"`` stages may account for fewer, never more.
    """
    gaps = []
    for name, stats in stages.items():
        kind = accounting.get(name, "exact")
        if not isinstance(stats, dict) or kind == "fan_out":
            continue
        seen = int(stats.get("records_in") or 0)
        accounted = int(stats.get("records_out") or 0) + int(stats.get("rejected") or 0)
        if seen and (accounted > seen if kind == "may_drop" else accounted != seen):
            gaps.append(f"{name}: {seen} in, {accounted} out or rejected")
    return gaps


def rules(cfg: BuiltinConfig) -> list[ComplianceRule]:
    """The SOX rules, in evaluation order."""

    def unapproved_change(view: EventView) -> str | None:
        d = view.draft
        if d["action"] != "config_changed":
            return None
        sha = str(view.details.get("sha256") or "")
        # The first version seen is the baseline; a later, different one needs approval.
        if not sha or not view.details.get("previous_sha256") or cfg.is_approved(sha):
            return None
        return f"pipeline file changed to sha256 {sha[:16]}… without a recorded approval"

    def completeness(view: EventView) -> str | None:
        stages = view.details.get("stages")
        if view.draft["action"] != "run_finished" or not isinstance(stages, dict):
            return None
        accounting = view.pipeline.accounting if view.pipeline is not None else {}
        gaps = unaccounted(stages, accounting)
        return "records unaccounted for: " + "; ".join(gaps) if gaps else None

    return [
        rule(
            "SOX-404-change-management", SOX, "404 ITGC change management",
            "Changed pipelines are approved",
            "The pipeline file's SHA-256 is recorded per run; a run of a changed file "
            "without an approval is flagged.",
            check=unapproved_change, actions=RAISE, severity=AuditLevel.ERROR,
            conditions={"action": ["config_changed"]},
        ),
        rule(
            "SOX-404-completeness", SOX, "404 ITGC completeness", "Records accounted for",
            "In every stage of a run, records in = records out + rejected; a run that "
            "started and never finished (abandoned) accounts for nothing.",
            check=completeness, severity=AuditLevel.ERROR,
            conditions={"action": ["run_finished"]}, flags_abandoned=True,
        ),
    ]  # fmt: skip
