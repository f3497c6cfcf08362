"""The runtime's audit observer: events per call, digests, config changes, fail closed."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from engine.audit.observer import AuditObserver, batch_digest, create_observer
from engine.audit.wiring import open_resources
from engine.errors import TransientError
from engine.ledger.errors import AuditStoreError
from engine.ledger.events import AuditEvent
from engine.ledger.keys import load_public_keys
from engine.ledger.store import AuditStore
from engine.ledger.verify import verify_store
from engine.model.audit import AuditSettings
from engine.records import Rejected
from engine.runtime.observer import (
    BatchAction,
    NullObserver,
    RunInfo,
    RunSummary,
    StageInfo,
    StageStats,
)

SOURCE = StageInfo("warehouse", "source", "file", "data/inventory.csv")
SINK = StageInfo("shop", "sink", "http", "https://shop.example.com/api/products")


def run_info(sha: str = "a" * 64, run_id: str = "run-1") -> RunInfo:
    return RunInfo(
        run_id=run_id,
        pipeline="inventory-sync",
        pipeline_file="pipeline.toml",
        pipeline_sha256=sha,
        started_at=datetime.now(UTC),
        user="alice",
        host="build-01",
    )


def simulate(
    observer: AuditObserver, run: RunInfo, batches: int = 3
) -> list[list[dict[str, object]]]:
    sent = []
    observer.run_started(run, {"pipeline_sha256": run.pipeline_sha256, "components": 2})
    for i in range(batches):
        records: list[dict[str, object]] = [{"sku": f"S{i}-{j}", "quantity": j} for j in range(10)]
        observer.batch(SOURCE, BatchAction.READ, records)
        observer.batch(SINK, BatchAction.WRITTEN, records)
        sent.append(records)
    observer.rejected(
        SOURCE, [Rejected({"sku": "bad"}, "quantity: not a number", "line 4")], "dead_letter"
    )
    observer.connector_error(
        SINK,
        TransientError("POST https://bot:hunter2@shop.example.com/api failed: 503 token=abc123"),
        attempt=1,
        will_retry=True,
    )
    observer.component_event(SINK, "circuit_open", "warning", {"password": "x", "failures": 5})
    summary = RunSummary(run.run_id, run.pipeline, True, 1.5, {"warehouse": StageStats(30, 30)})
    observer.run_finished(run, summary)
    return sent


def events(workspace: Path) -> list[AuditEvent]:
    res = open_resources(AuditSettings(), workspace)
    try:
        return [
            AuditEvent.model_validate({**orjson.loads(e.body), "mac": e.mac})
            for e in res.store.iter_chain("pipeline:inventory-sync")
        ]
    finally:
        res.close()


def test_every_runtime_call_becomes_a_signed_event(workspace: Path) -> None:
    with AuditObserver(AuditSettings(flush_every=4), workspace) as observer:
        sent = simulate(observer, run_info())
        assert observer.last_checkpoint is not None
    got = events(workspace)
    actions = [e.action for e in got]
    assert actions == [
        "run_started",
        "config_changed",  # first sighting of this file: recorded as a change
        *["batch_read", "batch_written"] * 3,
        "records_rejected",
        "connector_retry",
        "circuit_open",
        "run_finished",
    ]
    first_read = got[2]
    assert first_read.record_count == 10
    # The records as JSON Lines: what a JSON Lines file sink would write for them.
    lines = b"".join(orjson.dumps(r) + b"\n" for r in sent[0])
    assert first_read.digest == hashlib.sha256(lines).hexdigest()
    assert first_read.stage == "warehouse" and first_read.resource == "data/inventory.csv"
    assert first_read.user_id == "alice" and first_read.host == "build-01"
    assert first_read.pipeline == "inventory-sync" and first_read.run_id == "run-1"
    assert got[1].details["sha256"] == "a" * 64
    assert [e.seq for e in got] == list(range(1, len(got) + 1))
    assert got[-1].details["stages"]["warehouse"]["records_in"] == 30
    text = b"".join(orjson.dumps(e.to_json_dict()) for e in got)
    assert b"hunter2" not in text and b"abc123" not in text
    assert got[-3].details["message"].startswith("POST https://shop.example.com/api")
    assert got[-2].details["password"] == "***" and got[-2].level.value == "WARNING"
    # The checkpoint covers the whole run and the trail verifies.
    assert observer.last_checkpoint.tree_size == len(got)
    res = open_resources(AuditSettings(), workspace)
    try:
        report = verify_store(
            res.store,
            res.keyring,
            checkpoint_paths=[res.checkpoint_dir],
            public_keys=load_public_keys(workspace),
        )
        assert report.ok, report.to_dict()
    finally:
        res.close()


def test_config_loaded_then_changed(workspace: Path) -> None:
    for sha, run_id in (("a" * 64, "r1"), ("a" * 64, "r2"), ("b" * 64, "r3")):
        # Without rules: the SOX change rule would add its own COMPLIANCE event.
        with AuditObserver(AuditSettings(compliance=False), workspace) as observer:
            simulate(observer, run_info(sha, run_id), batches=1)
    config = [e for e in events(workspace) if e.category.value == "COMPLIANCE"]
    assert [e.action for e in config] == ["config_changed", "config_loaded", "config_changed"]
    assert config[2].details["previous_sha256"] == "a" * 64
    assert config[2].level.value == "WARNING"


def test_failing_store_fails_the_run(workspace: Path) -> None:
    observer = AuditObserver(AuditSettings(flush_every=1000), workspace)
    try:
        observer.run_started(run_info(sha=None), {})  # type: ignore[arg-type]
        observer.batch(SOURCE, BatchAction.READ, [{"a": 1}])
        observer._resources.store.close()
        for suffix in ("", "-wal", "-shm"):
            (workspace / f"audit.db{suffix}").unlink(missing_ok=True)
        (workspace / "audit.db").mkdir()
        with pytest.raises(AuditStoreError):
            observer.run_finished(run_info(), RunSummary("run-1", "inventory-sync", True, 0.1))
    finally:
        with pytest.raises(AuditStoreError):
            observer.close()


def test_disabled_settings_give_a_null_observer(workspace: Path) -> None:
    observer = create_observer(AuditSettings(enabled=False), workspace)
    assert isinstance(observer, NullObserver)
    assert not workspace.exists()  # nothing written when auditing is off


def test_digest_is_stable_and_content_sensitive() -> None:
    a = [{"sku": "A", "qty": 1}]
    assert batch_digest(a) == batch_digest([{"sku": "A", "qty": 1}])
    assert batch_digest(a) != batch_digest([{"sku": "A", "qty": 2}])
    assert len(batch_digest([{"when": datetime(2024, 1, 1), "raw": b"\x00"}])) == 64


def test_store_url_from_settings(tmp_path: Path, workspace: Path) -> None:
    url = f"sqlite:///{tmp_path / 'elsewhere.db'}"
    with AuditObserver(AuditSettings(store=url), workspace) as observer:
        simulate(observer, run_info(), batches=1)
    with AuditStore(url, create=False) as store:
        assert store.stats().total_events == 8


def test_a_batch_passed_on_unchanged_is_digested_once(
    workspace: Path, digest_calls: list[int]
) -> None:
    calls = digest_calls
    with AuditObserver(AuditSettings(), workspace) as observer:
        observer.run_started(run_info(), {})
        produced: list[dict[str, object]] = [{"sku": "A"}]
        observer.batch(SOURCE, BatchAction.TRANSFORMED, produced)
        observer.batch(SINK, BatchAction.WRITTEN, produced)
        observer.batch(SINK, BatchAction.WRITTEN, [{"sku": "A"}])  # equal, not the same list
    assert len(calls) == 2
    got = events(workspace)
    assert [e.action for e in got[-3:]] == ["batch_transformed", "batch_written", "batch_written"]
    assert got[-3].digest == got[-2].digest == got[-1].digest
