"""Pruning a chain: delete its oldest events, leaving a signed anchor of what went.

Pruning deletes a prefix of the chain and, in the same transaction, appends a signed
``retention_applied`` event stating the last pruned number, its MAC and the Merkle
frontier, so verification resumes from that anchor and tells pruning from deletion.
What the limits should be (settings, the environment, what a standard requires) is
compliance's business; this module only carries them out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from engine.ledger.clock import new_event_id, now_text
from engine.ledger.events import (
    RETENTION_ACTION,
    AuditCategory,
    AuditLevel,
    EventDraft,
    base_risk,
    format_time,
    new_draft,
)
from engine.ledger.schema import ChainHead, PruneAnchor
from engine.ledger.writer import AuditTrail, Row

__all__ = ["RETENTION_ACTION", "RetentionLimits", "prune", "prune_chain"]

log = logging.getLogger("engine.audit")


@dataclass(frozen=True)
class RetentionLimits:
    """What pruning keeps of a chain: events of the last ``days`` and the newest
    ``max_events``; None leaves that dimension unbounded."""

    days: int | None = None
    max_events: int | None = None

    @property
    def active(self) -> bool:
        return self.days is not None or self.max_events is not None

    def cutoff(self, now: datetime | None = None) -> datetime | None:
        """Events older than this go (None: age does not matter)."""
        if self.days is None:
            return None
        return (now or datetime.now(UTC)) - timedelta(days=self.days)


def _notice(
    trail: AuditTrail,
    anchor: PruneAnchor,
    event_id: str,
    before: datetime | None,
    keep_last: int | None,
) -> EventDraft:
    return new_draft(
        event_id=event_id,
        timestamp=now_text(),
        level=AuditLevel.INFO.value,
        category=AuditCategory.COMPLIANCE.value,
        action=RETENTION_ACTION,
        risk_score=base_risk(AuditLevel.INFO, AuditCategory.COMPLIANCE),
        details={
            "anchor_frontier": [n.hex() for n in anchor.frontier.nodes],
            "anchor_mac": anchor.mac,
            "anchor_root": anchor.frontier.root().hex(),
            "before": format_time(before) if before else None,
            "keep_last": keep_last,
            "pruned_through": anchor.seq,
        },
        actor=trail.actor,
        resource=trail.producer,
        record_count=anchor.seq,
    )


def prune(
    trail: AuditTrail, *, before: datetime | None = None, keep_last: int | None = None
) -> PruneAnchor | None:
    """Delete ``trail``'s chain's events older than ``before`` or beyond the newest
    ``keep_last``, leaving a signed ``retention_applied`` event that anchors what was
    removed (so verification resumes there and can tell pruning from deletion)."""
    if not trail.head_checked:
        trail.check_head()
    trail.flush()
    notice_id = new_event_id()

    def seal(head: ChainHead, anchor: PruneAnchor) -> tuple[list[Row], ChainHead]:
        return trail.seal(head, [_notice(trail, anchor, notice_id, before, keep_last)])

    anchor = trail.store.prune(
        trail.producer,
        before=format_time(before) if before else None,
        keep_last=keep_last,
        seal=seal,
    )
    if anchor is not None:
        trail.head = trail.store.head(trail.producer)
        log.info("pruned %s through event #%s", trail.producer, anchor.seq)
    return anchor


def prune_chain(
    trail: AuditTrail, limits: RetentionLimits, *, now: datetime | None = None
) -> PruneAnchor | None:
    """Prune ``trail``'s chain to ``limits`` (a signed ``retention_applied`` event anchors
    what went); returns the new anchor, or None when nothing was old enough."""
    if not limits.active:
        return None
    return prune(trail, before=limits.cutoff(now), keep_last=limits.max_events)
