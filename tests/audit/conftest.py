"""Fixtures for the audit tests: a fresh workspace with keys, a SQLite store, a trail."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from engine.audit.settings import AuditSettings
from engine.audit.trail import AuditResources, open_resources


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "AUDIT_SECRET_KEY",
        "AUDIT_SIGNING_KEY",
        "AUDIT_MAX_EVENTS",
        "AUDIT_RETENTION_DAYS",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    return tmp_path / ".engine"


@pytest.fixture
def digest_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the batches the audit observer digests itself (rather than taking a sink's)."""
    import engine.audit.observer as module

    calls: list[int] = []
    original = module.batch_digest

    def counting(records: Sequence[object]) -> str:
        calls.append(1)
        return original(records)

    monkeypatch.setattr(module, "batch_digest", counting)
    return calls


@pytest.fixture
def resources(workspace: Path) -> Iterator[AuditResources]:
    # Trail mechanics only: compliance rules (which add events) are tested on their own.
    res = open_resources(
        AuditSettings(checkpoint_every=4, flush_every=3, compliance=False), workspace
    )
    try:
        yield res
    finally:
        res.close()
