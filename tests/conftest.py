"""Shared fixtures: the shared test data folder and an isolated workspace per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_TESTDATA = ROOT.parent / "shared" / "testdata"


@pytest.fixture(autouse=True)
def _isolated_engine_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep every test's workspace (audit store, keys, state) out of the repo."""
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / ".engine-home"))


@pytest.fixture(autouse=True)
def _logging_as_found() -> Iterator[None]:
    """A command run in-process configures the logs (a handler on the root logger, levels):
    undo it, so the next test's output and captured records are its own."""
    yield
    from engine.cli.output import err_console
    from engine.logs import reset

    reset()
    err_console.file = None  # type: ignore[assignment]


@pytest.fixture
def shared_testdata() -> Path:
    if not SHARED_TESTDATA.is_dir():
        pytest.skip(f"shared test data not found at {SHARED_TESTDATA}")
    return SHARED_TESTDATA
