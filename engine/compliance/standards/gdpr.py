"""GDPR: personal fields pseudonymised (Art. 5(1)(c)), kept no longer than declared
(Art. 5(1)(e)), records of processing declared (Art. 30)."""

from __future__ import annotations

from engine.compliance.rules.detect import pseudonymise_fields, unprotected_personal_fields
from engine.compliance.rules.model import ComplianceRule, EventView
from engine.compliance.standards.base import MASK, BuiltinConfig, given_details, rule
from engine.ledger.events import ComplianceStandard

__all__ = ["rules"]

GDPR = ComplianceStandard.GDPR


def _personal_pipeline(view: EventView) -> bool:
    return (
        view.draft["action"] == "run_started"
        and view.pipeline is not None
        and "personal_data" in view.pipeline.tags
    )


def records_of_processing(view: EventView) -> str | None:
    if not _personal_pipeline(view):
        return None
    assert view.pipeline is not None
    meta = view.pipeline.meta
    missing = [k for k in ("purpose", "data_categories", "retention_days") if not meta.get(k)]
    return f"personal_data pipeline does not declare {', '.join(missing)}" if missing else None


def rules(cfg: BuiltinConfig) -> list[ComplianceRule]:
    """The GDPR rules, in evaluation order."""
    fields = cfg.personal_fields

    def personal(view: EventView) -> str | None:
        if not view.details:
            return None
        found = unprotected_personal_fields(view.details, fields)
        return f"personal field(s) not pseudonymised: {', '.join(found)}" if found else None

    def pseudonymise(view: EventView) -> None:
        view.draft["details"] = pseudonymise_fields(view.details, fields, cfg.pseudonym_key)

    def storage_limitation(view: EventView) -> str | None:
        if not _personal_pipeline(view):
            return None
        assert view.pipeline is not None
        declared = view.pipeline.meta.get("retention_days")
        if not isinstance(declared, int):
            return None
        kept = cfg.retention_days
        if kept is None:
            return f"audit events are kept forever; the pipeline declares {declared} days"
        if kept > declared:
            return f"audit events are kept {kept} days; the pipeline declares {declared} days"
        return None

    return [
        rule(
            "GDPR-5.1.c-pseudonymisation", GDPR, "Art. 5(1)(c)",
            "Personal fields pseudonymised",
            "Personal fields in event details are replaced by a keyed pseudonym (data "
            "minimisation).",
            check=personal, remedy=pseudonymise, actions=MASK, sensitive=True,
            scope=given_details,
        ),
        rule(
            "GDPR-5.1.e-retention", GDPR, "Art. 5(1)(e)", "Kept no longer than declared",
            "Audit retention of a personal_data pipeline is at most its declared retention.",
            check=storage_limitation, conditions={"action": ["run_started"]},
        ),
        rule(
            "GDPR-30-records", GDPR, "Art. 30", "Records of processing",
            "Pipelines tagged personal_data declare purpose, data categories and retention.",
            check=records_of_processing, conditions={"action": ["run_started"]},
        ),
    ]  # fmt: skip
