"""The trail before the fact: a flush commits every delivery's events durably (they survive
``kill -9``), a killed run is reported abandoned, an interrupted one is signed as such, and
the runtime's own events carry what PCI DSS 10.2.2 asks for."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import orjson
import pytest
from click.testing import CliRunner

from engine.audit import AuditSystem, ComplianceStandard
from engine.audit.events import AuditEvent
from engine.audit.observer import AuditObserver, batch_digest
from engine.audit.settings import AuditSettings
from engine.audit.store import AuditStore, default_store_url
from engine.cli.audit import audit
from engine.pipeline import compile_file, run
from engine.records.digest import ContentDigest
from engine.runtime.observer import BatchAction, RunSummary, StageInfo, StageStats
from tests.support.audit import run_info

ROOT = Path(__file__).resolve().parents[2]
SOURCE = StageInfo("orders", "source", "file", "data/orders.csv")
MAP = StageInfo("to_order", "transform", "map")
SINK = StageInfo("db", "sink", "sql", "postgresql://db.example.com/shop")


def chain(workspace: Path, producer: str = "pipeline:orders") -> list[AuditEvent]:
    with AuditStore(default_store_url(workspace), create=False) as store:
        return [
            AuditEvent.model_validate({**orjson.loads(e.body), "mac": e.mac})
            for e in store.iter_chain(producer)
        ]


def written(records: Sequence[object]) -> ContentDigest:
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    return ContentDigest(hashlib.sha256(data).hexdigest(), 0, len(data), records_jsonl=True)


def test_flush_commits_deliveries_and_keeps_unwritten_batches_for_their_sink(
    workspace: Path, digest_calls: list[int]
) -> None:
    first: list[dict[str, object]] = [{"id": 1}]
    second: list[dict[str, object]] = [{"id": 2}]
    with AuditObserver(AuditSettings(flush_every=10_000), workspace) as observer:
        observer.run_started(run_info(), {})
        observer.batch(MAP, BatchAction.TRANSFORMED, first)
        observer.batch(MAP, BatchAction.TRANSFORMED, second)
        observer.batch(SINK, BatchAction.WRITTEN, first, written(first))
        observer.flush()  # before the first batch is acknowledged
        stored = [e.action for e in chain(workspace)]
        # The delivery is on the trail; the batch still in flight waits for its sink.
        assert stored == ["run_started", "batch_transformed", "batch_written"]
        observer.batch(SINK, BatchAction.WRITTEN, second, written(second))
        observer.flush()
        got = chain(workspace)
        assert [e.action for e in got[3:]] == ["batch_transformed", "batch_written"]
        assert got[3].digest == got[4].digest == written(second).digest
    assert digest_calls == []  # every digest came from the sink, none computed twice
    assert [e.seq for e in chain(workspace)] == list(range(1, len(chain(workspace)) + 1))


def test_a_batch_written_without_content_is_committed_by_flush(workspace: Path) -> None:
    records: list[dict[str, object]] = [{"id": 1}]
    with AuditObserver(AuditSettings(flush_every=10_000), workspace) as observer:
        observer.run_started(run_info(), {})
        observer.batch(SOURCE, BatchAction.READ, records)
        observer.batch(SINK, BatchAction.WRITTEN, records)
        observer.flush()
        got = chain(workspace)
        assert [e.action for e in got] == ["run_started", "batch_read", "batch_written"]
        assert got[1].digest == got[2].digest == batch_digest(records)


_KILLED_RUN = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from engine.audit.observer import AuditObserver
    from engine.audit.settings import AuditSettings
    from engine.runtime.observer import BatchAction, RunInfo, StageInfo

    source = StageInfo("orders", "source", "file", "data/orders.csv")
    sink = StageInfo("db", "sink", "sql", "postgresql://db.example.com/shop")
    observer = AuditObserver(AuditSettings(), Path(sys.argv[1]))
    run = RunInfo("killed-run", "orders", None, None, datetime.now(UTC), "alice", "build-01")
    observer.run_started(run, {})
    for i in range(int(sys.argv[2])):
        records = [{"id": i}]
        observer.batch(source, BatchAction.READ, records)
        observer.batch(sink, BatchAction.WRITTEN, records)
        observer.flush()  # what the runtime does before it commits the batch
    observer.batch(source, BatchAction.READ, [{"id": -1}])  # in flight when killed
    observer.flush()
    print("committed", flush=True)
    time.sleep(600)
    """
)


@pytest.fixture
def killed_run(workspace: Path) -> Path:
    """A run killed with SIGKILL after committing 7 batches: no run_finished."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_RUN, str(workspace), "7"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "committed"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    return workspace


def test_every_committed_delivery_survives_kill_9(killed_run: Path) -> None:
    got = chain(killed_run)
    writes = [e for e in got if e.action == "batch_written"]
    assert len(writes) == 7
    assert [e.digest for e in writes] == [batch_digest([{"id": i}]) for i in range(7)]
    assert "run_finished" not in {e.action for e in got}


def test_verify_and_stats_report_a_killed_run_as_abandoned(killed_run: Path) -> None:
    cli = CliRunner(env={"COLUMNS": "200"})
    result = cli.invoke(audit, ["verify", "--workspace", str(killed_run)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("intact:")
    assert "abandoned: 1 run(s) started and never finished" in result.output
    assert "orders run killed-run started" in result.output
    result = cli.invoke(audit, ["verify", "--workspace", str(killed_run), "--format", "json"])
    data = orjson.loads(result.output)
    assert data["status"] == "intact" and data["running_runs"] == []
    assert [r["run_id"] for r in data["abandoned_runs"]] == ["killed-run"]
    result = cli.invoke(audit, ["stats", "--workspace", str(killed_run), "--format", "json"])
    assert result.exit_code == 0, result.output
    stats = orjson.loads(result.output)
    assert [(r["run_id"], r["status"]) for r in stats["abandoned_runs"]] == [
        ("killed-run", "abandoned")
    ]


def test_sox_completeness_flags_an_abandoned_run(killed_run: Path) -> None:
    # A run that finished is accounted for; the killed one is not.
    with AuditObserver(AuditSettings(), killed_run) as observer:
        observer.run_started(run_info("finished-run"), {})
        summary = RunSummary("finished-run", "orders", True, 0.1, {"orders": StageStats(1, 1)})
        observer.run_finished(run_info("finished-run"), summary)
    end = datetime.now(UTC) + timedelta(seconds=1)
    with AuditSystem(workspace=killed_run) as system:
        report = system.generate_compliance_report(
            end - timedelta(days=1), end, [ComplianceStandard.SOX]
        )
    rule = report.rule("SOX-404-completeness")
    assert rule.status == "fail" and rule.hits == 1
    started = [e for e in chain(killed_run) if e.action == "run_started"]
    killed = next(e for e in started if e.run_id == "killed-run")
    assert rule.evidence == [killed.event_id]
    assert "killed-run started and never finished" in rule.reasons[0]


def test_an_interrupted_run_is_signed_interrupted(workspace: Path) -> None:
    with AuditObserver(AuditSettings(), workspace) as observer:
        observer.run_started(run_info(), {})
        summary = RunSummary("run-1", "orders", False, 0.1, interrupted=True)
        observer.run_finished(run_info(), summary)
    finished = chain(workspace)[-1]
    assert finished.action == "run_finished"
    assert finished.outcome.value == "interrupted" and finished.level.value == "WARNING"


def test_a_plain_pipeline_run_passes_pci_10_2_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "p"
    (folder / "data").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "quickstart.toml", folder / "pipeline.toml")
    shutil.copy(ROOT / "examples" / "data" / "inventory.csv", folder / "data" / "inventory.csv")
    monkeypatch.setenv("AUDIT_SECRET_KEY", "pci")
    ws = folder / ".engine"
    summary = anyio.run(lambda: run(compile_file(folder / "pipeline.toml"), workspace=ws))
    assert summary.ok, summary.error
    got = chain(ws, "pipeline:quickstart")
    transformed = [e for e in got if e.action == "batch_transformed"]
    assert transformed and {e.resource for e in transformed} == {
        "pipeline:quickstart/to_product",
        "pipeline:quickstart/in_stock",
    }
    assert all(e.resource for e in got)
    end = datetime.now(UTC) + timedelta(seconds=1)
    with AuditSystem(workspace=ws) as system:
        report = system.generate_compliance_report(
            end - timedelta(days=1), end, [ComplianceStandard.PCI_DSS, ComplianceStandard.SOX]
        )
    assert report.rule("PCI_DSS-10.2.2-fields").status == "pass"
    assert report.rule("SOX-404-completeness").status == "pass"
