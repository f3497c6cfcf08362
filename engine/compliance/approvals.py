"""SOX change approvals: ``engine audit approve`` records them as signed events in the trail."""

from __future__ import annotations

import orjson

from engine.ledger.store import AuditStore, EventFilter

__all__ = ["APPROVAL_ACTION", "approved_hashes"]

APPROVAL_ACTION = "change_approved"


def approved_hashes(store: AuditStore) -> set[str]:
    """SHA-256 values approved with ``engine audit approve`` (signed events in the trail)."""
    found: set[str] = set()
    for row in store.iter_query(EventFilter(action=APPROVAL_ACTION)):
        sha = orjson.loads(row.body).get("details", {}).get("sha256")
        if isinstance(sha, str):
            found.add(sha)
    return found
