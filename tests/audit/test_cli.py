"""``engine audit`` through click's CliRunner."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from engine.audit.system import AuditSystem
from engine.cli.audit import audit
from engine.ledger.events import AuditCategory, AuditLevel


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "home"
    monkeypatch.setenv("ENGINE_HOME", str(ws))
    monkeypatch.setenv("AUDIT_SECRET_KEY", "cli-test-key")
    with AuditSystem(workspace=ws, producer="pipeline:sync", checkpoint_every=5) as system:
        for i in range(12):
            system.log_event(
                level=AuditLevel.ERROR if i == 7 else AuditLevel.INFO,
                category=AuditCategory.INVENTORY,
                action="inventory_modification" if i % 2 else "batch_read",
                resource=f"SKU{i:03d}",
                details={"quantity": i},
                user_id="alice" if i < 6 else "bob",
            )
    return ws


def run(*args: str) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(audit, list(args))
    return result.exit_code, result.output


def sql(ws: Path, statement: str) -> None:
    engine = create_engine(f"sqlite:///{ws / 'audit.db'}")
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()


def test_verify_intact_exits_0(home: Path) -> None:
    code, output = run("verify")
    assert code == 0, output
    assert "intact: 12 events" in output
    code, output = run("verify", "--format", "json")
    data = orjson.loads(output)
    assert data["ok"] and data["events"] >= 12 and data["first_broken"] is None


def test_verify_tampered_names_event_and_missing_seq(home: Path) -> None:
    sql(home, "delete from audit_events where producer = 'pipeline:sync' and seq = 4")
    code, output = run("verify")
    assert code == 1
    assert "TAMPERED" in output
    assert "first broken in pipeline:sync: event #5" in output
    assert "missing sequence numbers 4" in output
    assert "tail truncated against checkpoint: no" in output


def test_verify_detects_truncation_against_checkpoint(home: Path) -> None:
    sql(home, "delete from audit_events where producer = 'pipeline:sync' and seq > 10")
    sql(home, "update audit_chain_heads set seq = 10 where producer = 'pipeline:sync'")
    code, output = run("verify", "--checkpoint", str(home / "checkpoints"))
    assert code == 1
    assert "tail truncated against checkpoint: yes" in output
    assert "records 12 events, the trail ends at event #10" in output


def test_verify_wrong_key(home: Path) -> None:
    # Events signed with a key that was not supplied: no verdict either way (exit 3).
    code, output = run("verify", "--key", "not-the-key")
    assert code == 3
    assert "cannot verify" in output and "AUDIT_SECRET_KEY" in output
    code, output = run("verify", "--key", "not-the-key", "--format", "json")
    data = orjson.loads(output)
    assert code == 3 and data["status"] == "unverifiable" and data["unknown_keys"]
    assert data["first_broken"]["kind"] == "wrong_key" and data["first_broken"]["seq"] == 1


def test_verify_corrupted_checkpoint(home: Path) -> None:
    path = sorted((home / "checkpoints").rglob("*.json"))[0]
    data = orjson.loads(path.read_bytes())
    data["root"] = "00" * 32
    path.write_bytes(orjson.dumps(data))
    code, output = run("verify")
    assert code == 1
    assert "checkpoint_signature" in output and path.name in output


def test_prove_and_verify_proof_offline(home: Path, tmp_path: Path) -> None:
    code, output = run("query", "--action", "batch_read", "--format", "json", "--limit", "1")
    assert code == 0
    event_id = orjson.loads(output)[0]["event_id"]
    proof_file = tmp_path / "proof.json"
    code, output = run("prove", event_id, "--output", str(proof_file))
    assert code == 0, output
    proof = orjson.loads(proof_file.read_bytes())
    assert proof["event"]["event_id"] == event_id and proof["tree_size"] >= proof["leaf_index"] + 1
    code, output = run(
        "verify-proof", str(proof_file), "--public-key", str(home / "audit-ed25519.pub")
    )
    assert code == 0, output
    assert "valid" in output
    # A changed event no longer fits the signed root.
    proof["event"]["record_count"] = 1
    proof["event"]["resource"] = "SKU999"
    proof_file.write_bytes(orjson.dumps(proof))
    code, output = run("verify-proof", str(proof_file))
    assert code == 1 and "not in the checkpointed tree" in output


def test_query_filters_and_table(home: Path) -> None:
    code, output = run("query", "--user", "bob", "--level", "error", "--format", "json")
    assert code == 0
    events = orjson.loads(output)
    assert [e["resource"] for e in events] == ["SKU007"]
    code, output = run("query", "--category", "INVENTORY", "--since", "1h", "--limit", "3")
    assert code == 0
    assert "3 event(s)" in output and "inventory_modification" in output
    code, output = run("query", "--until", "2000-01-01T00:00:00Z", "--format", "json")
    assert orjson.loads(output) == []
    code, output = run("query", "--since", "yesterday-ish")
    assert code == 2 and "ISO 8601" in output


def test_reading_is_audited_and_stats(home: Path) -> None:
    run("query", "--pipeline", "nothing")
    code, output = run("stats", "--format", "json")
    assert code == 0
    stats = orjson.loads(output)
    assert stats["chains"]["pipeline:sync"] == 12
    assert stats["chains"]["audit-access"] >= 1
    code, output = run("query", "--action", "audit_trail_read", "--format", "json", "--limit", "10")
    operations = {e["details"]["operation"] for e in orjson.loads(output)}
    assert {"query", "stats"} <= operations


def test_export_round_trips_through_verify(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "trail.jsonl"
    code, output = run("export", "--output", str(target))
    assert code == 0, output
    lines = target.read_bytes().splitlines()
    assert len(lines) >= 12
    code, output = run("verify", "--store", str(target))
    assert code == 0, output
    checkpoints = str(home / "checkpoints")
    code, output = run("verify", "--store", str(target), "--checkpoint", checkpoints)
    assert code == 0, output
    # Drop the last line: truncation against the checkpoint.
    target.write_bytes(b"\n".join(lines[:-1]) + b"\n")
    code, output = run("verify", "--store", str(target), "--checkpoint", checkpoints)
    assert code == 1 and "tail truncated" in output
    # Swap two lines of the export: reordering is reported.
    lines[2], lines[3] = lines[3], lines[2]
    target.write_bytes(b"\n".join(lines) + b"\n")
    code, output = run("verify", "--store", str(target))
    assert code == 1 and "reordered" in output


def test_missing_store_is_a_clean_error(tmp_path: Path) -> None:
    code, output = run("stats", "--workspace", str(tmp_path / "none"))
    assert code == 1
    assert "no such store" in output


def test_report(home: Path) -> None:
    code, output = run("report", "--since", "1d", "--standard", "sox", "--format", "json")
    assert code == 0, output
    data = orjson.loads(output)
    assert data["standards"] == ["SOX"]
    assert data["total_events"] >= 12
    assert data["events_by_level"]["ERROR"] == 1
    assert any("error or critical" in line for line in data["recommendations"])
    code, output = run("report")
    assert code == 0 and "compliance report" in output
