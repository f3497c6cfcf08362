"""Build the compliance policy of a set of audit resources (store, keys, settings)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from engine.audit.rules.policy import CompliancePolicy
from engine.audit.store import EventFilter

if TYPE_CHECKING:
    from engine.audit.store import AuditStore
    from engine.audit.trail import AuditResources

__all__ = ["APPROVAL_ACTION", "approved_hashes", "policy_for"]

APPROVAL_ACTION = "change_approved"


def approved_hashes(store: AuditStore) -> set[str]:
    """SHA-256 values approved with ``engine audit approve`` (signed events in the trail)."""
    found: set[str] = set()
    for row in store.iter_query(EventFilter(action=APPROVAL_ACTION)):
        sha = orjson.loads(row.body).get("details", {}).get("sha256")
        if isinstance(sha, str):
            found.add(sha)
    return found


def policy_for(resources: AuditResources) -> CompliancePolicy:
    from engine.audit.trail import now_text

    store = resources.store
    return CompliancePolicy.from_settings(
        resources.settings,
        hmac_key=resources.keyring.current,
        is_approved=lambda sha: sha in approved_hashes(store),
        now_text=now_text,
        env=resources.env,
    )
