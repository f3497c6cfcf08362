"""Compliance rules and reports: the names the seed's API imports from one place.

The rule engine lives in :mod:`engine.audit.rules`, reports in :mod:`engine.audit.reports`.
"""

from __future__ import annotations

from engine.audit.reports.build import ComplianceReport, RuleResult, build_report
from engine.audit.rules.model import ComplianceRule

__all__ = ["ComplianceReport", "ComplianceRule", "RuleResult", "build_report"]
