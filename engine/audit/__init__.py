"""The signed, chained, provable audit trail.

``AuditSystem`` is the Python API of the seed; ``AuditObserver`` / ``create_observer``
is what the runtime plugs in; ``verify_store`` and ``engine.audit.merkle`` are what
``engine audit verify|prove`` use.

Names are imported on first use (PEP 562): ``engine.config`` imports
``engine.audit.settings``, and validating a pipeline must not pay for SQLAlchemy and
cryptography.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOME = {
    "AuditCategory": "events",
    "AuditError": "errors",
    "AuditEvent": "events",
    "AuditKeyError": "errors",
    "AuditLevel": "events",
    "AuditObserver": "observer",
    "AuditSettings": "settings",
    "AuditStoreError": "errors",
    "AuditSystem": "system",
    "CheckpointError": "errors",
    "ComplianceReport": "compliance",
    "ComplianceRule": "compliance",
    "ComplianceStandard": "events",
    "Outcome": "events",
    "VerifyReport": "verify",
    "create_observer": "observer",
    "verify_jsonl": "verify",
    "verify_store": "verify",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.audit' has no attribute {name!r}")
    value = getattr(import_module(f"engine.audit.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
