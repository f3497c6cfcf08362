"""Errors of the audit trail; every one is an :class:`~engine.errors.EngineError`."""

from __future__ import annotations

from engine.errors import EngineError

__all__ = ["AuditError", "AuditKeyError", "AuditStoreError", "CheckpointError"]


class AuditError(EngineError):
    """Base of the audit trail's errors."""


class AuditStoreError(AuditError):
    """The audit store failed; the run must fail with it (fail closed).

    ``store`` is the store's URL with any password hidden.
    """

    def __init__(self, store: str, message: str) -> None:
        self.store = store
        self.reason = message
        super().__init__(f"audit store {store}: {message}")


class AuditKeyError(AuditError):
    """A signing or verification key is missing, unreadable or malformed."""


class CheckpointError(AuditError):
    """A checkpoint cannot be read or written."""
