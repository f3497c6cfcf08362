"""Dialect-correct upserts: ``ON CONFLICT`` (PostgreSQL, SQLite), ``ON DUPLICATE KEY`` (MySQL)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Table
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from engine.errors import PermanentError

__all__ = ["UPSERT_DIALECTS", "upsert_statement"]

UPSERT_DIALECTS = ("postgresql", "sqlite", "mysql", "mariadb")


def upsert_statement(
    dialect: str, table: Table, columns: Sequence[str], keys: Sequence[str]
) -> Insert:
    """An INSERT that updates ``columns`` minus ``keys`` when a row with the same keys exists."""
    updates = [c for c in columns if c not in keys]
    if dialect in ("postgresql", "sqlite"):
        stmt: postgresql.Insert | sqlite.Insert = (
            postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)
        )
        if not updates:
            return stmt.on_conflict_do_nothing(index_elements=list(keys))
        return stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in updates}
        )
    if dialect in ("mysql", "mariadb"):
        my = mysql.insert(table)
        # with only key columns there is nothing to update: assign a key to itself
        targets = updates or [keys[0]]
        return my.on_duplicate_key_update({c: my.inserted[c] for c in targets})
    raise PermanentError(
        f"upsert is not supported on {dialect!r}; supported: {', '.join(UPSERT_DIALECTS)}"
    )
