"""Helpers for the data connector tests: service URLs, the skip-or-fail check, a SQL runner,
a component context and a direct write through the ``sql`` sink."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import pytest
from sqlalchemy import text

from engine.components.base import ComponentContext
from engine.components.sinks.sql import SqlSink, SqlSinkConfig
from engine.connectors.sql.database import create_engine
from engine.records import Batch
from engine.state import StateStore

POSTGRES_URL = os.environ.get(
    "ENGINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
MARIADB_URL = os.environ.get("ENGINE_TEST_MARIADB_URL", "mysql://root@127.0.0.1:3306/test")
AMQP_URL = os.environ.get("ENGINE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")


def require_service(name: str, url: str) -> None:
    """Skip when the service is not reachable, or fail under ENGINE_REQUIRE_SERVICES=1."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port
    assert port is not None, url
    try:
        socket.create_connection((host, port), timeout=1.0).close()
    except OSError as exc:
        reason = f"{name} is not reachable at {host}:{port} ({exc.strerror or exc})"
        if os.environ.get("ENGINE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{reason}; ENGINE_REQUIRE_SERVICES=1 makes this a failure")
        pytest.skip(f"{reason}; start it or set ENGINE_TEST_{name.upper()}_URL")


def sql(url: str, *statements: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
    """Run statements in one transaction; returns the rows of the last one (if any)."""

    async def main() -> list[tuple[Any, ...]]:
        engine = create_engine(url)
        try:
            async with engine.begin() as conn:
                rows: list[tuple[Any, ...]] = []
                for statement in statements:
                    result = await conn.execute(text(statement), params or {})
                    rows = [tuple(r) for r in result] if result.returns_rows else []
                return rows
        finally:
            await engine.dispose()

    return anyio.run(main)


def context(tmp_path: Path, state: StateStore | None = None, dry: bool = False) -> ComponentContext:
    return ComponentContext(
        component_id="db",
        pipeline="p",
        base_dir=tmp_path,
        workspace=tmp_path / ".engine",
        run_id="r1",
        state=state,
        dry_run=dry,
    )


def write(url: str, tmp_path: Path, batches: list[Batch], **options: Any) -> None:
    sink = SqlSink(SqlSinkConfig(url=url, inputs=["x"], **options), context(tmp_path))

    async def main() -> None:
        await sink.open()
        try:
            for batch in batches:
                await sink.write(batch)
                await sink.publish()  # what the runtime does after each write
        finally:
            await sink.close(success=True)

    anyio.run(main)
