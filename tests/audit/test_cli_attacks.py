"""Every attack of issue 3 makes `engine audit verify` exit 1 with a clear message."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from engine.audit import AuditCategory, AuditLevel, AuditSystem
from engine.audit.canonical import canonical_json
from engine.cli.audit import audit
from tests.support.audit import store_sql

KEY = "attack-test-key"


def change_field(ws: Path) -> None:
    (body,) = store_sql(ws, "select body from audit_events where seq = 3")[0]
    data = orjson.loads(body)  # type: ignore[arg-type]
    data["resource"] = "SKU-FORGED"
    store_sql(ws, "update audit_events set body = :b where seq = 3", b=canonical_json(data))


def delete_middle(ws: Path) -> None:
    store_sql(ws, "delete from audit_events where seq = 3")


def swap_two(ws: Path) -> None:
    a = store_sql(ws, "select event_id, mac, body from audit_events where seq = 3")[0]
    b = store_sql(ws, "select event_id, mac, body from audit_events where seq = 4")[0]
    store_sql(ws, "update audit_events set event_id = 'x' where seq = 4")
    for seq, (event_id, mac, body) in ((3, b), (4, a)):
        store_sql(
            ws,
            "update audit_events set event_id = :e, mac = :m, body = :b where seq = :s",
            e=event_id,
            m=mac,
            b=body,
            s=seq,
        )


def forge_insert(ws: Path) -> None:
    (body, mac) = store_sql(ws, "select body, mac from audit_events where seq = 6")[0]
    data = orjson.loads(body)  # type: ignore[arg-type]
    data.update(seq=7, event_id="e" * 32, prev_mac=mac, resource="SKU-FREE")
    forged = canonical_json(data)
    forged_mac = hmac.new(b"guessed", bytes.fromhex(str(mac)) + forged, "sha256").hexdigest()
    store_sql(
        ws,
        "insert into audit_events select producer, 7, :e, timestamp, level, category, "
        "action, pipeline, run_id, user_id, stage, risk_score, :m, :b "
        "from audit_events where seq = 6",
        e="e" * 32,
        m=forged_mac,
        b=forged,
    )


def truncate_tail(ws: Path) -> None:
    (mac,) = store_sql(ws, "select mac from audit_events where seq = 4")[0]
    store_sql(ws, "delete from audit_events where seq > 4")
    store_sql(ws, "update audit_chain_heads set seq = 4, mac = :m", m=mac)


def corrupt_checkpoint(ws: Path) -> None:
    path = sorted((ws / "checkpoints").rglob("*.json"))[-1]
    data = orjson.loads(path.read_bytes())
    data["tree_size"] += 0
    data["timestamp"] = "2000-01-01T00:00:00.000000Z"
    path.write_bytes(orjson.dumps(data))


ATTACKS: dict[str, tuple[Callable[[Path], None], list[str], str]] = {
    "changed field": (change_field, [], "event #3"),
    "deleted middle event": (delete_middle, [], "missing sequence numbers 3"),
    "two events swapped": (swap_two, [], "out of order"),
    "forged insertion": (forge_insert, [], "event #7 (eeeeeeee"),
    "tail truncated": (truncate_tail, [], "tail truncated against checkpoint: yes"),
    "corrupted checkpoint signature": (corrupt_checkpoint, [], "signature does not verify"),
}


@pytest.fixture
def trail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("AUDIT_SECRET_KEY", KEY)
    ws = tmp_path / "ws"
    with AuditSystem(workspace=ws, producer="pipeline:shop") as system:
        for i in range(6):
            system.log_event(AuditLevel.INFO, AuditCategory.INVENTORY, "update", f"SKU{i}")
    return ws


def verify(ws: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(
        audit, ["verify", "--workspace", str(ws), *extra]
    )
    return result.exit_code, result.output


def test_intact_trail_exits_0(trail: Path) -> None:
    code, output = verify(trail)
    assert code == 0, output
    assert output.startswith("intact: 6 events")


@pytest.mark.parametrize("name", list(ATTACKS))
def test_attack_exits_1_with_a_clear_message(trail: Path, name: str) -> None:
    attack, extra, expected = ATTACKS[name]
    attack(trail)
    code, output = verify(trail, *extra)
    assert code == 1, output
    assert "TAMPERED" in output
    assert expected in output, output


def test_a_key_not_supplied_is_no_verdict_exit_3(trail: Path) -> None:
    code, output = verify(trail, "--key", "some-other-key")
    assert code == 3, output
    assert "TAMPERED" not in output and "cannot verify" in output
    assert "AUDIT_SECRET_KEY" in output
