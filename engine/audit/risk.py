"""A placeholder risk score from level and category (rule-based scoring is a later issue)."""

from __future__ import annotations

from collections.abc import Mapping

from engine.audit.events import AuditCategory, AuditLevel

__all__ = ["DEFAULT_RISK_THRESHOLDS", "risk_band", "risk_score"]

DEFAULT_RISK_THRESHOLDS: dict[str, float] = {
    "low": 0.2,
    "medium": 0.5,
    "high": 0.8,
    "critical": 0.9,
}

_LEVEL = {
    AuditLevel.DEBUG: 0.0,
    AuditLevel.INFO: 0.1,
    AuditLevel.WARNING: 0.4,
    AuditLevel.ERROR: 0.7,
    AuditLevel.CRITICAL: 0.9,
}
_CATEGORY = {
    AuditCategory.SECURITY: 0.1,
    AuditCategory.COMPLIANCE: 0.05,
}


def risk_score(level: AuditLevel, category: AuditCategory) -> float:
    """0.0 (no risk) to 1.0, from the level, raised for security and compliance events."""
    return round(min(1.0, _LEVEL[level] + _CATEGORY.get(category, 0.0)), 3)


def risk_band(score: float, thresholds: Mapping[str, float] = DEFAULT_RISK_THRESHOLDS) -> str:
    """The highest threshold name the score reaches, or "minimal"."""
    band = "minimal"
    for name, limit in sorted(thresholds.items(), key=lambda item: item[1]):
        if score >= limit:
            band = name
    return band
