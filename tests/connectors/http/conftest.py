"""A real uvicorn server on 127.0.0.1 for every connector test of this folder."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.http_server import STATE, ServerState, ServerThread


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    with ServerThread() as server:
        yield server.url


@pytest.fixture
def server(server_url: str) -> Iterator[ServerState]:
    STATE.reset()
    yield STATE


@pytest.fixture
def redis_url() -> str:
    """The machine's Redis; skipped when unreachable unless ENGINE_REQUIRE_SERVICES=1."""
    import socket

    url = os.environ.get("ENGINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            pass
    except OSError as exc:
        if os.environ.get("ENGINE_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis at 127.0.0.1:6379 is required (ENGINE_REQUIRE_SERVICES=1): {exc}")
        pytest.skip(f"Redis not reachable at 127.0.0.1:6379: {exc}")
    return url
