"""The built-in rules, one module per standard, each rule with its clause.

:func:`builtin_rules` puts them in evaluation order: the rules that rewrite an event
(masking) first, so the others judge what will be signed, then the rest standard by
standard.
"""

from __future__ import annotations

from engine.compliance.rules.model import ComplianceRule
from engine.compliance.standards import custom, gdpr, hipaa, iso27001, pci_dss, sox
from engine.compliance.standards.base import AUDIT_FAILURE_ACTIONS, BuiltinConfig
from engine.ledger.events import ComplianceStandard

__all__ = [
    "AUDIT_FAILURE_ACTIONS",
    "STANDARDS",
    "BuiltinConfig",
    "builtin_rules",
    "retention_minimums",
]

#: each standard's module (``rules(cfg)``), in evaluation order after the masking rules
STANDARDS = {
    ComplianceStandard.PCI_DSS: pci_dss,
    ComplianceStandard.SOX: sox,
    ComplianceStandard.HIPAA: hipaa,
    ComplianceStandard.GDPR: gdpr,
    ComplianceStandard.ISO27001: iso27001,
    ComplianceStandard.CUSTOM: custom,
}
# Masking rules rewrite the details in this order: pseudonyms, then card numbers, then
# the remaining identifiers.
_MASKING_ORDER = (ComplianceStandard.GDPR, ComplianceStandard.PCI_DSS, ComplianceStandard.HIPAA)


def retention_minimums() -> dict[ComplianceStandard, int]:
    """Days of audit trail each standard requires (PCI DSS 10.5.1: 12 months; SOX:
    7 years, SEC 17 CFR 210.2-06; HIPAA 164.316(b)(2): 6 years)."""
    return {
        ComplianceStandard.PCI_DSS: pci_dss.RETENTION_DAYS,
        ComplianceStandard.SOX: sox.RETENTION_DAYS,
        ComplianceStandard.HIPAA: hipaa.RETENTION_DAYS,
    }


def _masks(rule: ComplianceRule) -> bool:
    return "mask" in rule.actions


def builtin_rules(cfg: BuiltinConfig) -> list[ComplianceRule]:
    """Every built-in rule, in evaluation order (masking rules before the others)."""
    by_standard = {standard: module.rules(cfg) for standard, module in STANDARDS.items()}
    masking = [r for s in _MASKING_ORDER for r in by_standard[s] if _masks(r)]
    others = [r for rules in by_standard.values() for r in rules if not _masks(r)]
    return masking + others
