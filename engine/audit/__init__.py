"""The audit trail's façade: the seed's Python API, the run observer, access records.

``AuditSystem`` is the Python API of the seed; ``AuditObserver`` / ``create_observer``
is what the runtime plugs in; ``verify_store`` is what ``engine audit verify`` uses. The
provable log itself is :mod:`engine.ledger`; the rules, risk and reports over it are
:mod:`engine.compliance`; :mod:`engine.audit.wiring` joins the two.

Names are imported on first use (PEP 562): running a pipeline that writes no audit
events must not pay for SQLAlchemy and cryptography. Importing this package makes the
``audit`` sink able to open its chain (:mod:`engine.audit.ingest`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import engine.audit.ingest  # noqa: F401  (the audit sink's chain opener)
from engine.exports import lazy_exports

if TYPE_CHECKING:
    from engine.audit.compliance import ComplianceReport, ComplianceRule
    from engine.audit.observer import AuditObserver, create_observer
    from engine.audit.system import AuditSystem
    from engine.ledger.errors import AuditError, AuditKeyError, AuditStoreError, CheckpointError
    from engine.ledger.events import (
        AuditCategory,
        AuditEvent,
        AuditLevel,
        ComplianceStandard,
        Outcome,
    )
    from engine.ledger.verify import VerifyReport, verify_jsonl, verify_store
    from engine.model.audit import AuditSettings

__all__ = [
    "AuditCategory",
    "AuditError",
    "AuditEvent",
    "AuditKeyError",
    "AuditLevel",
    "AuditObserver",
    "AuditSettings",
    "AuditStoreError",
    "AuditSystem",
    "CheckpointError",
    "ComplianceReport",
    "ComplianceRule",
    "ComplianceStandard",
    "Outcome",
    "VerifyReport",
    "create_observer",
    "verify_jsonl",
    "verify_store",
]

_HOME = {
    "AuditCategory": "engine.ledger.events",
    "AuditError": "engine.ledger.errors",
    "AuditEvent": "engine.ledger.events",
    "AuditKeyError": "engine.ledger.errors",
    "AuditLevel": "engine.ledger.events",
    "AuditObserver": "engine.audit.observer",
    "AuditSettings": "engine.model.audit",
    "AuditStoreError": "engine.ledger.errors",
    "AuditSystem": "engine.audit.system",
    "CheckpointError": "engine.ledger.errors",
    "ComplianceReport": "engine.audit.compliance",
    "ComplianceRule": "engine.audit.compliance",
    "ComplianceStandard": "engine.ledger.events",
    "Outcome": "engine.ledger.events",
    "VerifyReport": "engine.ledger.verify",
    "create_observer": "engine.audit.observer",
    "verify_jsonl": "engine.ledger.verify",
    "verify_store": "engine.ledger.verify",
}


__getattr__, __dir__ = lazy_exports(__name__, _HOME, __all__)
