"""Rules in pipeline runs: notify to a real local webhook, halt, SOX change approval,
completeness, GDPR Art. 30 declarations, HIPAA phi access, and a rules file from [audit]."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import orjson
import pytest
import uvicorn
from click.testing import CliRunner
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from engine.audit.wiring import open_resources
from engine.cli.audit import audit
from engine.compliance.rules.notify import verify_notification
from engine.compliance.rules.policy import TRIGGERED_ACTION
from engine.model.audit import AuditSettings
from engine.pipeline import compile_file, run

SECRET = "hook-secret"


class Hook:
    """A webhook receiver: uvicorn on 127.0.0.1 in a thread, keeping what it is sent."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        app = Starlette(routes=[Route("/hook", self._hook, methods=["POST"])])
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook?token=t0p"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    async def _hook(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        return Response(status_code=204)

    def __enter__(self) -> Hook:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive()
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def hook() -> Iterator[Hook]:
    with Hook() as h:
        yield h


PIPELINE = """
[pipeline]
name = "{name}"
tags = {tags}
{meta}

[sources.events]
type = "file"
path = "data/events.jsonl"

[transforms.keep]
type = "filter"
inputs = ["events"]
condition = "action != 'noise'"

[sinks.trail]
type = "audit"
inputs = ["keep"]

[audit]
{audit}
"""


def write(folder: Path, rows: list[dict[str, Any]], **fmt: str) -> Path:
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data/events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    values = {"name": "p", "tags": "[]", "meta": "", "audit": ""} | fmt
    path = folder / "pipeline.toml"
    path.write_text(PIPELINE.format(**values))
    return path


def go(path: Path) -> Any:
    return anyio.run(lambda: run(compile_file(path), workspace=path.parent / ".engine"))


def events(ws: Path) -> list[dict[str, Any]]:
    res = open_resources(AuditSettings(), ws)
    try:
        return [
            orjson.loads(e.body) for p in res.store.producers() for e in res.store.iter_chain(p)
        ]
    finally:
        res.close()


def triggered(ws: Path) -> list[dict[str, Any]]:
    return [e["details"] for e in events(ws) if e["action"] == TRIGGERED_ACTION]


BURST = [
    {"action": "login_failed", "outcome": "failure", "user_id": "eve", "category": "SECURITY"}
] * 5


def test_notify_posts_a_signed_message_to_the_webhook(
    tmp_path: Path, hook: Hook, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(
        tmp_path,
        [*BURST, {"action": "noise"}],
        audit=f'notify_url = "{hook.url}"\nnotify_secret = "{SECRET}"',
    )
    summary = go(path)
    assert summary.ok, summary.error
    (headers, body), *_ = hook.received
    assert len(hook.received) == 1
    assert verify_notification(
        SECRET.encode(), headers["x-engine-timestamp"], body, headers["x-engine-signature"]
    )
    assert not verify_notification(
        b"wrong", headers["x-engine-timestamp"], body, headers["x-engine-signature"]
    )
    message = json.loads(body)
    assert message["rule_id"] == "PCI_DSS-10.2.1.4-auth-burst"
    assert message["clause"] == "10.2.1.4" and message["severity"] == "CRITICAL"
    assert "fired on event" in caplog.text and SECRET not in caplog.text
    assert "t0p" not in caplog.text


def test_a_halting_rule_fails_the_run(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n  - id: no-exports\n    when: \"action == 'export_all'\"\n"
        "    actions: [log_event, halt]\n"
    )
    path = write(
        tmp_path,
        [{"action": "read"}, {"action": "export_all"}, {"action": "read"}],
        audit=f'rules_file = "{rules}"',
    )
    summary = go(path)
    assert not summary.ok
    assert "compliance rule no-exports" in (summary.error or "")
    fired = {t["rule_id"] for t in triggered(tmp_path / ".engine")}
    # The halted run also left records unaccounted for: SOX completeness says so.
    assert fired == {"no-exports", "SOX-404-completeness"}


def test_changed_pipeline_is_flagged_until_approved(tmp_path: Path) -> None:
    path = write(tmp_path, [{"action": "read"}])
    assert go(path).ok  # first version: the baseline
    path.write_text(path.read_text().replace('name = "p"', 'name = "p"\ndescription = "v2"'))
    assert go(path).ok
    flagged = [t for t in triggered(tmp_path / ".engine") if t["rule_id"].startswith("SOX-404-c")]
    assert len(flagged) == 1 and flagged[0]["event_action"] == "config_changed"
    # Approve the current content, change nothing, run again: no new flag.
    ws = tmp_path / ".engine"
    result = CliRunner().invoke(
        audit, ["approve", str(path), "--workspace", str(ws), "--by", "cfo"]
    )
    assert result.exit_code == 0, result.output
    path.write_text(path.read_text().replace("v2", "v3"))
    before = len(triggered(ws))
    result = CliRunner().invoke(audit, ["approve", str(path), "--workspace", str(ws)])
    assert go(path).ok
    after = [t for t in triggered(ws)][before:]
    assert not [t for t in after if t["rule_id"] == "SOX-404-change-management"]
    approvals = [e for e in events(ws) if e["action"] == "change_approved"]
    assert approvals[0]["user_id"] == "cfo" and len(approvals[0]["details"]["sha256"]) == 64


def test_declarations_phi_and_completeness(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        [{"action": "read"}, {"action": "noise"}],
        tags='["personal_data", "phi"]',
    )
    assert go(path).ok
    fired = {t["rule_id"] for t in triggered(tmp_path / ".engine")}
    # No purpose, categories or retention declared.
    assert "GDPR-30-records" in fired and "GDPR-5.1.e-retention" not in fired
    # The filter dropped a record on purpose: completeness holds. Batches carry counts.
    assert "SOX-404-completeness" not in fired
    assert "HIPAA-164.312.b-phi-access" not in fired
    declared = tmp_path / "declared"
    path = write(
        declared,
        [{"action": "read"}],
        tags='["personal_data"]',
        meta='purpose = "support"\ndata_categories = ["contact"]\nretention_days = 30',
    )
    assert go(path).ok
    fired = {t["rule_id"] for t in triggered(declared / ".engine")}
    assert "GDPR-30-records" not in fired and "GDPR-5.1.e-retention" in fired


@pytest.mark.parametrize("tags", [["phi"], ["other"]])
def test_phi_batches_without_a_user_are_flagged(tmp_path: Path, tags: list[str]) -> None:
    from engine.audit.wiring import open_resources
    from engine.ledger.events import AuditCategory, AuditLevel
    from engine.model.audit import AuditSettings

    res = open_resources(AuditSettings(), tmp_path / ".engine")
    try:
        trail = res.trail("pipeline:p", actor="engine")
        common = {"pipeline": "p", "run_id": "r1", "host": "h"}
        trail.emit(
            level=AuditLevel.INFO,
            category=AuditCategory.SYSTEM,
            action="run_started",
            details={"tags": tags},
            trusted_details=True,
            **common,
        )
        for user in ("alice", None):
            trail.emit(
                level=AuditLevel.INFO,
                category=AuditCategory.INTEGRATION,
                action="batch_read",
                user_id=user,
                record_count=3,
                details={"role": "source", "type": "file"},
                trusted_details=True,
                **common,
            )
        trail.close()
        bodies = [orjson.loads(e.body) for e in res.store.iter_chain("pipeline:p")]
    finally:
        res.close()
    fired = [b["details"]["rule_id"] for b in bodies if b["action"] == "compliance_rule_triggered"]
    expected = ["HIPAA-164.312.b-phi-access"] if tags == ["phi"] else []
    assert [f for f in fired if f.startswith("HIPAA")] == expected
