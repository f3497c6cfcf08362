"""`engine serve`: webhook intake with signatures, replay protection, /healthz and /metrics."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import anyio
import httpx
from click.testing import CliRunner

from engine.cli.serve import serve as serve_command
from engine.pipeline import compile_file
from engine.records import Record, Rejected
from engine.records.digest import ContentDigest
from engine.runtime.observer import BatchAction, RunInfo, RunSummary, StageInfo
from engine.serve.app import EngineServer
from tests.support.http_server import free_port
from tests.support.metrics import sample_value
from tests.support.pipelines import read_jsonl, write_pipeline

SECRET = "It's a Secret to Everybody"

PIPELINE = """
[pipeline]
name = "hooks"

[sources.orders]
type = "webhook"
path = "/hooks/orders"
records = "orders"
max_body = 2048
signature = { type = "github", secret = "It's a Secret to Everybody" }

[sinks.out]
type = "file"
inputs = ["orders"]
path = "out.jsonl"
"""


class Recorder:
    """An observer that keeps component events (the audit trail's input)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, object]]] = []

    def run_started(self, run: RunInfo, details: Mapping[str, object]) -> None: ...
    def batch(
        self,
        stage: StageInfo,
        action: BatchAction,
        records: Sequence[Record],
        content: ContentDigest | None = None,
    ) -> None: ...
    def rejected(
        self, stage: StageInfo, rejected: Sequence[Rejected], disposition: str
    ) -> None: ...
    def connector_error(
        self, stage: StageInfo, error: BaseException, *, attempt: int, will_retry: bool
    ) -> None: ...
    def run_finished(self, run: RunInfo, summary: RunSummary) -> None: ...
    def flush(self) -> None: ...

    def component_event(
        self, stage: StageInfo, action: str, level: str, details: Mapping[str, object]
    ) -> None:
        self.events.append((action, level, dict(details)))


def published(tmp_path: Path) -> list[dict[str, Any]]:
    """The records of the file sink's rolling segments (`out-<run_id>-<n>.jsonl`)."""
    return [r for segment in sorted(tmp_path.glob("out-*.jsonl")) for r in read_jsonl(segment)]


def github_headers(body: bytes, delivery: str) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-Hub-Signature-256": f"sha256={digest}",
        "X-GitHub-Delivery": delivery,
        "Content-Type": "application/json",
    }


async def serving(tmp_path: Path, test: Any, observer: Any = None) -> EngineServer:
    plan = compile_file(write_pipeline(tmp_path, PIPELINE))
    server = EngineServer(plan, observer=observer or Recorder())
    port = free_port()
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, "127.0.0.1", port)
        with anyio.fail_after(10):
            await server.started.wait()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            try:
                await test(client)
            finally:
                server.stop()
    return server


def test_signed_request_is_delivered_before_the_2xx(tmp_path: Path) -> None:
    body = b'{"orders": [{"id": 1}, {"id": 2}]}'
    answers: list[httpx.Response] = []

    async def test(client: httpx.AsyncClient) -> None:
        answers.append(
            await client.post("/hooks/orders", content=body, headers=github_headers(body, "d-1"))
        )
        answers.append(
            await client.post("/hooks/orders", content=body, headers=github_headers(body, "d-1"))
        )

    server = anyio.run(serving, tmp_path, test)
    assert answers[0].status_code == 200 and answers[0].json() == {"accepted": 2}
    assert answers[1].json() == {"accepted": 0, "duplicate": True}  # replayed delivery id
    # a stopped server drained what it took in: no failure
    assert server.summary is not None and server.summary.outcome != "failure"
    assert [r["id"] for r in published(tmp_path)] == [1, 2]


def test_bad_signature_is_401_with_a_security_event(tmp_path: Path) -> None:
    body = b'{"orders": [{"id": 1}]}'
    answers: list[httpx.Response] = []
    recorder = Recorder()

    async def test(client: httpx.AsyncClient) -> None:
        headers = github_headers(body, "d-2")
        answers.append(await client.post("/hooks/orders", content=body + b" ", headers=headers))
        answers.append(await client.post("/hooks/orders", content=body))  # no signature at all

    anyio.run(serving, tmp_path, test, recorder)
    assert [a.status_code for a in answers] == [401, 401]
    security = [e for e in recorder.events if e[0] == "webhook_signature_rejected"]
    assert len(security) == 2
    assert all(e[2]["category"] == "SECURITY" for e in security)
    assert SECRET not in repr(recorder.events)
    assert published(tmp_path) == []


def test_body_limit_healthz_and_metrics(tmp_path: Path) -> None:
    seen: dict[str, httpx.Response] = {}

    async def test(client: httpx.AsyncClient) -> None:
        big = b'{"orders": [' + b'{"id": 1},' * 300 + b'{"id": 2}]}'
        seen["big"] = await client.post(
            "/hooks/orders", content=big, headers=github_headers(big, "x")
        )
        body = b'{"orders": [{"id": 7}]}'
        await client.post("/hooks/orders", content=body, headers=github_headers(body, "d-3"))
        seen["health"] = await client.get("/healthz")
        seen["live"] = await client.get("/livez")
        seen["ready"] = await client.get("/readyz")
        # the 200 came after delivery: the sink's statistics already count the record
        seen["metrics"] = await client.get("/metrics")

    server = anyio.run(serving, tmp_path, test)
    assert seen["big"].status_code == 413
    assert seen["health"].status_code == 200 and seen["health"].json()["running"] is True
    assert seen["live"].status_code == 200 and seen["ready"].status_code == 200
    text = seen["metrics"].text
    hooks = {"pipeline": "hooks", "source": "orders"}
    assert sample_value(text, "engine_webhook_requests_total", code="413", **hooks) == 1
    assert sample_value(text, "engine_webhook_records_accepted_total", **hooks) == 1
    out = {"pipeline": "hooks", "component": "out", "role": "sink"}
    assert sample_value(text, "engine_records_in_total", **out) == 1
    assert sample_value(text, "engine_batch_duration_seconds_count", **out) == 1
    assert seen["metrics"].headers["content-type"].startswith("text/plain; version=0.0.4")
    # stopped: no longer ready, and says so
    assert not server.metrics.up


def test_serve_command_refuses_an_invalid_file(tmp_path: Path) -> None:
    bad = write_pipeline(tmp_path, PIPELINE.replace('path = "/hooks/orders"', 'path = "hooks"'))
    result = CliRunner().invoke(serve_command, [str(bad)])
    assert result.exit_code == 78
    assert "path must start with '/'" in result.output
