"""The observability tests count batches of `batch.size` records: the row path's batches
(the columnar path reads blocks of about 1.5 MiB, docs/columnar.md)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _row_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ENGINE_COLUMNAR", "off")
