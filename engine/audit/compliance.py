"""Compliance rules and reports: the names the seed's API imports from one place.

The rule engine lives in :mod:`engine.compliance.rules`, reports in
:mod:`engine.compliance.reports`.
"""

from __future__ import annotations

from engine.compliance.reports.build import ComplianceReport, RuleResult, build_report
from engine.compliance.rules.model import ComplianceRule

__all__ = ["ComplianceReport", "ComplianceRule", "RuleResult", "build_report"]
