"""Runs apply retention to their own chain: prune, then the final checkpoint; still verifies."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.audit.wiring import open_resources
from engine.cli.main import cli
from engine.compliance.retention import retention_limits
from engine.ledger.checkpoint import load_checkpoints
from engine.ledger.events import AuditCategory, AuditLevel
from engine.ledger.pruning import RetentionLimits
from engine.ledger.store import AuditStore, StoredEvent, default_store_url
from engine.model.audit import AuditSettings
from engine.settings import EngineSettings, SettingsError

PRODUCER = "pipeline:keep"
PIPELINE = """\
[pipeline]
name = "keep"
[sources.src]
type = "file"
path = "in.jsonl"
[transforms.big]
type = "filter"
inputs = ["src"]
condition = "n > `1`"
[sinks.out]
type = "file"
inputs = ["big"]
path = "out.jsonl"
"""


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    (tmp_path / "in.jsonl").write_text('{"n": 1}\n{"n": 2}\n{"n": 3}\n')
    path = tmp_path / "keep.toml"
    path.write_text(PIPELINE)
    return path


def workspace() -> Path:
    return Path(os.environ["ENGINE_HOME"])


def engine(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def run(pipeline: Path) -> None:
    code, _, err = engine("run", "--quiet", str(pipeline))
    assert code == 0, err


def chain() -> list[StoredEvent]:
    with AuditStore(default_store_url(workspace()), create=False) as store:
        return list(store.iter_chain(PRODUCER))


def verify_via_cli() -> None:
    code, out, err = engine("audit", "verify", "--workspace", str(workspace()), "--format", "json")
    assert code == 0, out + err
    assert json.loads(out)["ok"] is True


def latest_checkpoint_size() -> int:
    found = load_checkpoints([workspace() / "checkpoints"])
    return max(cp.tree_size for cp in found if cp.producer == PRODUCER)


def test_two_runs_with_a_small_max_events_prune_and_verify(
    pipeline: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AUDIT_MAX_EVENTS", "3")
    run(pipeline)
    first = chain()
    # The newest 3 events, then the signed notice of what went before them.
    assert len(first) == 4
    assert [e.action for e in first[-2:]] == ["run_finished", "retention_applied"]
    notice = json.loads(first[-1].body)
    assert notice["details"]["pruned_through"] == first[0].seq - 1
    assert notice["details"]["keep_last"] == 3
    assert latest_checkpoint_size() == first[-1].seq  # the checkpoint covers the notice

    run(pipeline)
    second = chain()
    assert len(second) == 4 and second[-1].action == "retention_applied"
    assert second[0].seq > first[-1].seq  # the first run's events are gone, notice included
    assert latest_checkpoint_size() == second[-1].seq
    verify_via_cli()


def test_without_settings_the_chain_is_kept(pipeline: Path) -> None:
    run(pipeline)
    run(pipeline)
    events = chain()
    assert events[0].seq == 1
    assert "retention_applied" not in {e.action for e in events}
    verify_via_cli()


def test_the_audit_table_sets_retention(pipeline: Path) -> None:
    pipeline.write_text(PIPELINE + "[audit]\nmax_events = 2\n")
    run(pipeline)
    events = chain()
    assert len(events) == 3 and events[-1].action == "retention_applied"
    verify_via_cli()


def test_old_events_go_by_age(pipeline: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    res = open_resources(AuditSettings(compliance=False), workspace())
    try:
        trail = res.trail(PRODUCER)
        old = datetime.now(UTC) - timedelta(days=40)
        for i in range(5):
            trail.emit(
                level=AuditLevel.INFO,
                category=AuditCategory.SYSTEM,
                action="ancient",
                details={"i": i},
                timestamp=old,
            )
        trail.close()
    finally:
        res.close()
    monkeypatch.setenv("AUDIT_RETENTION_DAYS", "30")
    run(pipeline)
    events = chain()
    assert events[0].seq == 6  # exactly the five old events went
    assert "ancient" not in {e.action for e in events}
    notice = json.loads(events[-1].body)["details"]
    assert notice["pruned_through"] == 5 and notice["keep_last"] is None
    verify_via_cli()


def test_the_environment_wins_over_the_audit_table() -> None:
    table = AuditSettings(retention_days=400, max_events=1000)
    none = EngineSettings.load({})
    assert retention_limits(table, none) == RetentionLimits(400, 1000)
    env = EngineSettings.load({"AUDIT_RETENTION_DAYS": "365", "AUDIT_MAX_EVENTS": ""})
    assert retention_limits(table, env) == RetentionLimits(365, 1000)
    assert retention_limits(None, env) == RetentionLimits(365, None)
    assert not retention_limits(AuditSettings(), none).active


@pytest.mark.parametrize(
    ("value", "message"),
    [("ten", "not an integer"), ("0", "must be at least 1"), ("-3", "must be at least 1")],
)
def test_bad_environment_values_are_refused(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=f"AUDIT_MAX_EVENTS: {message} \\('{value}'\\)"):
        EngineSettings.load({"AUDIT_MAX_EVENTS": value})


def test_the_cutoff_is_days_before_now() -> None:
    now = datetime(2024, 3, 1, tzinfo=UTC)
    assert RetentionLimits(days=30).cutoff(now) == datetime(2024, 1, 31, tzinfo=UTC)
    assert RetentionLimits(max_events=5).cutoff(now) is None


def test_a_table_value_below_one_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        AuditSettings(max_events=0)
