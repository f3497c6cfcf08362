"""The signed, chained, provable audit trail.

``AuditSystem`` is the Python API of the seed; ``AuditObserver`` / ``create_observer``
is what the runtime plugs in; ``verify_store`` and ``engine.audit.merkle`` are what
``engine audit verify|prove`` use.
"""

from engine.audit.compliance import ComplianceReport, ComplianceRule
from engine.audit.errors import AuditError, AuditKeyError, AuditStoreError, CheckpointError
from engine.audit.events import (
    AuditCategory,
    AuditEvent,
    AuditLevel,
    ComplianceStandard,
    Outcome,
)
from engine.audit.observer import AuditObserver, create_observer
from engine.audit.settings import AuditSettings
from engine.audit.system import AuditSystem
from engine.audit.verify import VerifyReport, verify_jsonl, verify_store

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
