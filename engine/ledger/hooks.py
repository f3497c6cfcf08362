"""The seam above the ledger: hooks a writer calls on every event, knowing nothing of them.

Compliance (rules, masking, risk) is one such hook; the ledger does not import it. A hook
sees each draft before it is queued (:meth:`EventHook.inspect`, which may rewrite it in
place) and, when it asked to, after (:meth:`EventHook.follow_up`), where it may log further
events through the writer's public :class:`Emitter` surface, and raise to stop the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from engine.ledger.events import AuditCategory, AuditLevel, DigestResult, EventDraft, Outcome

__all__ = ["Emitter", "EventHook"]


class Emitter(Protocol):
    """What a hook may do with the writer that called it: log an event, flush."""

    def emit(
        self,
        *,
        level: AuditLevel,
        category: AuditCategory,
        action: str,
        resource: str | None = None,
        outcome: Outcome = Outcome.SUCCESS,
        user_id: str | None = None,
        actor: str | None = None,
        ip_address: str | None = None,
        host: str | None = None,
        pipeline: str | None = None,
        run_id: str | None = None,
        stage: str | None = None,
        record_count: int | None = None,
        digest: str | DigestResult | None = None,
        details: Mapping[str, Any] | None = None,
        risk: float | None = None,
        timestamp: datetime | None = None,
        trusted_details: bool = False,
    ) -> str: ...

    def flush(self, *, settled: bool = False) -> object: ...


class EventHook(Protocol):
    """Called by the writer for every event it is given."""

    def inspect(
        self,
        draft: EventDraft,
        raw: Mapping[str, Any] | None,
        *,
        score: bool,
        stamped: bool,
    ) -> object | None:
        """Before the draft is queued: rewrite it in place (mask details, raise the level,
        score the risk). ``raw``: the details as given, None for trusted ones; ``score``:
        the caller gave no risk; ``stamped``: the caller gave the time. Returns what
        :meth:`follow_up` needs, or None when there is nothing to follow up."""
        ...

    def follow_up(self, emitter: Emitter, draft: EventDraft, found: Any) -> None:
        """After the draft is queued, with what :meth:`inspect` returned."""
        ...

    def close(self) -> None:
        """Release what the hook holds (its owner calls this, not the writer)."""
        ...
