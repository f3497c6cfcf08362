"""Async SQLAlchemy engines from any URL: the sync driver names are swapped for async ones."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from engine.connectors.sql.errors import map_sql_error
from engine.connectors.sql.urls import ASYNC_DRIVERS, async_url, resolve_sqlite

__all__ = [
    "ASYNC_DRIVERS",
    "async_url",
    "create_engine",
    "probe",
    "public_url",
    "resolve_sqlite",
    "split_table_name",
]


def public_url(url: str) -> str:
    """The URL for logs and the audit trail, with the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<invalid url>"


def create_engine(url: str, *, pool_size: int = 2) -> AsyncEngine:
    """An async engine; parameters are never rendered into error messages."""
    target = async_url(url)
    options: dict[str, object] = {"hide_parameters": True, "pool_pre_ping": True}
    if target.get_backend_name() != "sqlite":
        options["pool_size"] = pool_size
    return create_async_engine(target, **options)


async def probe(url: str, *, action: str) -> None:
    """``SELECT 1`` through a fresh engine, disposed of afterwards; errors mapped."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except Exception as exc:
        raise map_sql_error(exc, action=action) from None
    finally:
        await engine.dispose()


def split_table_name(name: str) -> tuple[str | None, str]:
    """``schema.table`` -> (schema, table); a bare name has no schema."""
    schema, _, bare = name.rpartition(".")
    return (schema or None), bare
