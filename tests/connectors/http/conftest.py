"""A real uvicorn server on 127.0.0.1 for every connector test of this folder."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from http_test_server import STATE, ServerState, ServerThread

from engine.pipeline import compile_file, run
from engine.runtime.observer import NullObserver, RunSummary


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


def write_pipeline(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def run_file(path: Path, **options: object) -> RunSummary:
    """Compile and run a pipeline file without the audit trail."""
    plan = compile_file(path)
    return await run(plan, observer=NullObserver(), **options)  # type: ignore[arg-type]


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
