"""Reads of the trail (and changes to its keys) are themselves recorded, on one chain.

Every reader of the trail — ``AuditSystem.query_events`` and ``generate_compliance_report``
in Python, ``engine audit verify|query|stats|report|export|prove`` on the command line —
records the read here, through :func:`record_access`, on the chain ``audit-access``
(:data:`ACCESS_PRODUCER`). The event's ``actor`` says which way it came (``api`` or
``cli``); its details name the operation.
"""

from __future__ import annotations

import getpass
import socket
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from engine.audit.wiring import AuditResources
from engine.ledger.events import AuditCategory, AuditLevel

__all__ = ["ACCESS_PRODUCER", "READ_ACTION", "origin", "record_access"]

#: the chain every read of the trail is recorded on
ACCESS_PRODUCER = "audit-access"
READ_ACTION = "audit_trail_read"


@lru_cache(maxsize=1)
def origin() -> tuple[str, str, str | None]:
    """(user, host, ip address) of this process, looked up once."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown"
    host = socket.gethostname()
    try:
        ip: str | None = socket.gethostbyname(host)
    except OSError:
        ip = None
    return user, host, ip


def record_access(
    resources: AuditResources,
    operation: str,
    details: Mapping[str, Any],
    *,
    actor: str,
    action: str = READ_ACTION,
) -> str:
    """Record one read of the trail (or, by ``action``, a change to its keys) as a signed
    SECURITY event on :data:`ACCESS_PRODUCER`; returns the event's id."""
    user, host, ip = origin()
    trail = resources.trail(ACCESS_PRODUCER, actor=actor)
    event_id = trail.emit(
        level=AuditLevel.INFO,
        category=AuditCategory.SECURITY,
        action=action,
        resource=resources.store.url,
        user_id=user,
        host=host,
        ip_address=ip,
        details={"operation": operation, **details},
    )
    trail.close()
    return event_id
