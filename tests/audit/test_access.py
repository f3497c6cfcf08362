"""Reads of the trail through the Python API and through the CLI land on one chain."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from engine.audit.access import ACCESS_PRODUCER, READ_ACTION
from engine.audit.system import AuditSystem
from engine.cli.audit import audit
from engine.ledger.events import AuditCategory, AuditLevel
from engine.ledger.store import AuditStore, EventFilter, default_store_url


def test_api_and_cli_reads_are_recorded_on_one_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = tmp_path / "home"
    monkeypatch.setenv("ENGINE_HOME", str(ws))
    monkeypatch.setenv("AUDIT_SECRET_KEY", "access-test-key")
    with AuditSystem(workspace=ws) as system:
        system.log_event(AuditLevel.INFO, AuditCategory.INVENTORY, "stock_counted", "SKU1")
        assert len(system.query_events(action="stock_counted")) == 1

    result = CliRunner().invoke(audit, ["query", "--action", "stock_counted"])
    assert result.exit_code == 0, result.output

    store = AuditStore(default_store_url(ws), create=False)
    try:
        reads = [
            orjson.loads(row.body) for row in store.iter_query(EventFilter(action=READ_ACTION))
        ]
        producers = set(store.producers())
    finally:
        store.close()
    assert {r["producer"] for r in reads} == {ACCESS_PRODUCER}
    assert sorted(r["actor"] for r in reads) == ["api", "cli"]
    assert all(r["category"] == "SECURITY" for r in reads)
    assert {r["details"]["operation"] for r in reads} == {"query"}
    # The API's own chain holds what it logged, not its reads.
    assert "api" in producers
    assert ACCESS_PRODUCER in producers
