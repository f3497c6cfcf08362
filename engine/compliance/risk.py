"""Explainable risk scores: a base from level and category plus named contributions.

``score = min(1, base(level) + base(category) + sum(contribution weights))``, each
contribution a reason code (see :data:`REASONS`). Aggregates per actor and per pipeline
are ``0.7 * max + 0.3 * mean(top 5)`` of their events' scores: one very risky event
dominates, a run of risky ones raises it further, and many routine events do not add up
to a high score.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from engine.ledger.clock import epoch
from engine.ledger.events import CATEGORY_RISK, LEVEL_RISK, AuditCategory, AuditLevel, base_risk

__all__ = [
    "DEFAULT_RISK_THRESHOLDS",
    "REASONS",
    "Contribution",
    "RiskModel",
    "aggregate_risk",
    "is_failed_auth",
    "risk_band",
    "risk_score",
]

DEFAULT_RISK_THRESHOLDS: dict[str, float] = {
    "low": 0.2,
    "medium": 0.5,
    "high": 0.8,
    "critical": 0.9,
}

REASONS: dict[str, str] = {
    "level": "base score of the event's level",
    "category": "raised for security and compliance events",
    "failed_auth_burst": "failed authentications by the same user within the burst window",
    "off_hours": "a person acted outside business hours (UTC)",
    "large_quantity_change": "quantity changed by at least the large-change limit or 10x",
    "bulk_delete": "a delete touching at least the bulk-delete limit of records",
    "privilege_change": "a change of privileges, roles or permissions",
    "config_change": "the pipeline's configuration changed",
    "integrity_failure": "an integrity or verification failure",
    "sensitive_data": "sensitive data (card number, SSN, personal field) found in the event",
}
_AUTH_WORDS = ("auth", "login", "logon", "signin", "sign_in", "password")
_FAIL_WORDS = ("fail", "denied", "invalid", "rejected", "locked")
_PRIVILEGE_WORDS = ("privilege", "permission", "role", "grant", "revoke", "admin")
_INTEGRITY_WORDS = ("integrity", "tamper", "verify", "verification", "checksum")
_PEOPLE = frozenset({AuditCategory.USER_ACTION, AuditCategory.SECURITY, AuditCategory.INVENTORY})


def risk_score(level: AuditLevel, category: AuditCategory) -> float:
    """The base score: 0.0 (no risk) to 1.0, from the level, raised for security and
    compliance events (the one every event is signed with: the ledger's base risk)."""
    return base_risk(level, category)


def risk_band(score: float, thresholds: Mapping[str, float] = DEFAULT_RISK_THRESHOLDS) -> str:
    """The highest threshold name the score reaches, or "minimal"."""
    band = "minimal"
    for name, limit in sorted(thresholds.items(), key=lambda item: item[1]):
        if score >= limit:
            band = name
    return band


def aggregate_risk(scores: Iterable[float]) -> float:
    """``0.7 * max + 0.3 * mean(top 5)``, in [0, 1]; 0.0 for no events."""
    top = sorted(scores, reverse=True)[:5]
    if not top:
        return 0.0
    return round(min(1.0, 0.7 * top[0] + 0.3 * sum(top) / len(top)), 4)


def is_failed_auth(action: str, outcome: str | None) -> bool:
    """An authentication attempt that failed, judged from the action name and outcome."""
    lowered = action.lower()
    if not any(word in lowered for word in _AUTH_WORDS):
        return False
    return outcome == "failure" or any(word in lowered for word in _FAIL_WORDS)


@dataclass(frozen=True, slots=True)
class Contribution:
    code: str
    weight: float
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "weight": self.weight, "detail": self.detail}


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


@dataclass
class RiskModel:
    """The weights and limits of the contributions; keeps the failed-auth window."""

    burst_count: int = 3
    burst_window_s: float = 600.0
    burst_weight: float = 0.3
    business_hours: tuple[int, int] | None = (6, 20)
    off_hours_weight: float = 0.1
    large_quantity_change: float = 1000.0
    quantity_weight: float = 0.2
    bulk_delete_records: int = 100
    bulk_delete_weight: float = 0.3
    change_weight: float = 0.2
    integrity_weight: float = 0.4
    sensitive_weight: float = 0.2
    _auth: dict[str, deque[float]] = field(default_factory=dict, repr=False)
    # (action, outcome, weights) -> (failed auth, a delete, the action's own contributions)
    _by_action: dict[tuple[Any, ...], tuple[bool, bool, list[Contribution]]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def _action_facts(self, action: str, outcome: Any) -> tuple[bool, bool, list[Contribution]]:
        """What the action name and outcome alone contribute (computed once per pair)."""
        key = (action, outcome, self.change_weight, self.integrity_weight)
        found = self._by_action.get(key)
        if found is None:
            lowered = action.lower()
            static: list[Contribution] = []
            if any(word in lowered for word in _PRIVILEGE_WORDS):
                static.append(Contribution("privilege_change", self.change_weight, action))
            elif action == "config_changed":
                static.append(
                    Contribution("config_change", self.change_weight, "pipeline file changed")
                )
            if outcome == "failure" and any(word in lowered for word in _INTEGRITY_WORDS):
                static.append(Contribution("integrity_failure", self.integrity_weight, action))
            found = (is_failed_auth(action, outcome), "delete" in lowered, static)
            if len(self._by_action) < 4096:
                self._by_action[key] = found
        return found

    def contributions(
        self,
        draft: Mapping[str, Any],
        *,
        sensitive: str | None = None,
        record: bool = True,
        failed_auth: bool | None = None,
    ) -> list[Contribution]:
        """The contributions for one event (``draft``: the signed body's fields).

        ``record`` counts a failed authentication in the burst window (off when
        explaining a stored event whose burst is given by ``failed_auth_before``).
        """
        out: list[Contribution] = []
        action = str(draft.get("action") or "")
        outcome = draft.get("outcome")
        details = draft.get("details") or {}
        known_failed_auth, deletes, static = self._action_facts(action, outcome)
        if failed_auth is None:
            failed_auth = known_failed_auth
        if record and failed_auth:
            count = self.record_failed_auth(draft)
            if count >= self.burst_count:
                out.append(
                    Contribution(
                        "failed_auth_burst",
                        self.burst_weight,
                        f"{count} failed authentications within {self.burst_window_s:g}s",
                    )
                )
        hours = self.business_hours
        category = draft.get("category")
        if hours is not None and category in _PEOPLE and draft.get("actor") != "engine":
            hour = int(str(draft.get("timestamp", ""))[11:13] or 12)
            if not hours[0] <= hour < hours[1]:
                out.append(Contribution("off_hours", self.off_hours_weight, f"at {hour:02d}h UTC"))
        quantity = (
            _number(details["quantity"])
            if isinstance(details, dict) and "quantity" in details
            else None
        )
        if quantity is not None:
            previous = _number(details.get("previous_quantity"))
            change = abs(quantity - previous) if previous is not None else 0.0
            ratio = quantity / previous if previous else 1.0
            if change >= self.large_quantity_change or ratio >= 10 or ratio <= 0.1:
                out.append(
                    Contribution(
                        "large_quantity_change", self.quantity_weight, f"changed by {change:g}"
                    )
                )
        if deletes:
            counts = [draft.get("record_count")]
            if isinstance(details, dict):
                counts += [details.get("count"), details.get("deleted"), details.get("records")]
            biggest = max((n for n in map(_number, counts) if n is not None), default=0.0)
            if biggest >= self.bulk_delete_records:
                out.append(
                    Contribution("bulk_delete", self.bulk_delete_weight, f"{biggest:g} records")
                )
        if static:
            out.extend(static)
        if sensitive:
            out.append(Contribution("sensitive_data", self.sensitive_weight, sensitive))
        return out

    def record_failed_auth(self, draft: Mapping[str, Any]) -> int:
        """Count a failed authentication; the number in the window for that user."""
        user = str(draft.get("user_id") or draft.get("ip_address") or "-")
        now = epoch(draft.get("timestamp"))
        times = self._auth.setdefault(user, deque())
        times.append(now)
        while times and now - times[0] > self.burst_window_s:
            times.popleft()
        return len(times)

    def score(
        self, level: AuditLevel | str, category: AuditCategory | str, extra: list[Contribution]
    ) -> float:
        base = risk_score(AuditLevel(level), AuditCategory(category))
        return round(min(1.0, base + sum(c.weight for c in extra)), 3)

    def explain(
        self, draft: Mapping[str, Any], *, failed_auth_before: int = 0, sensitive: str | None = None
    ) -> dict[str, Any]:
        """Base, contributions and score of a stored event (its burst given by the caller)."""
        level = AuditLevel(draft["level"])
        category = AuditCategory(draft["category"])
        parts = [
            Contribution("level", LEVEL_RISK[level], level.value),
            Contribution("category", CATEGORY_RISK.get(category, 0.0), category.value),
        ]
        extra = self.contributions(draft, sensitive=sensitive, record=False)
        if is_failed_auth(str(draft.get("action") or ""), draft.get("outcome")):
            count = failed_auth_before + 1
            if count >= self.burst_count:
                extra.insert(
                    0,
                    Contribution(
                        "failed_auth_burst",
                        self.burst_weight,
                        f"{count} failed authentications within {self.burst_window_s:g}s",
                    ),
                )
        return {
            "score": self.score(level, category, extra),
            "contributions": [c.to_dict() for c in parts + extra],
            "formula": "min(1, level + category + sum(contributions))",
        }
