"""What the engine keeps between runs, in one state store (a SQLAlchemy database: SQLite in
the workspace by default, PostgreSQL for teams): cursors, run leases, run records, dead
letters and schedule claims."""

from engine.state.database import StateError
from engine.state.history import DeadLetterRow, RunRecord
from engine.state.store import Cursor, CursorConflictError, FreshCursors, Lease, StateStore
from engine.state.tables import DEFAULT_PREFIX

__all__ = [
    "DEFAULT_PREFIX",
    "Cursor",
    "CursorConflictError",
    "DeadLetterRow",
    "FreshCursors",
    "Lease",
    "RunRecord",
    "StateError",
    "StateStore",
]
