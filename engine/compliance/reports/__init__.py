"""Compliance reports: build one over a period, render it as JSON, Markdown or HTML."""

from engine.compliance.reports.build import ComplianceReport, RuleResult, build_report

__all__ = ["ComplianceReport", "RuleResult", "build_report"]
