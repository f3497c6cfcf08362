"""The examples run against the local test server: REST -> CSV, webhook -> JSONL, the Python API."""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import os
import runpy
import shutil
import sys
from pathlib import Path

import anyio
import httpx
import pytest

from engine.pipeline import compile_file
from engine.runtime.observer import NullObserver
from engine.serve.app import EngineServer
from tests.support.http_server import ITEMS, ServerState, free_port
from tests.support.pipelines import read_jsonl, run_file

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def test_rest_to_csv_example(
    tmp_path: Path, server_url: str, server: ServerState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EXAMPLE_SERVER", server_url)
    file = tmp_path / "rest_to_csv.toml"
    shutil.copy(EXAMPLES / "rest_to_csv.toml", file)
    summary = anyio.run(run_file, file)
    assert summary.ok, summary.error
    with (tmp_path / "out" / "items.csv").open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [r["sku"] for r in rows] == [i["sku"] for i in ITEMS if i["quantity"] > 0]


def test_webhook_to_jsonl_example(
    tmp_path: Path, shared_testdata: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "example-test-secret"
    monkeypatch.setenv("SHOPIFY_WEBHOOK_SECRET", secret)
    file = tmp_path / "webhook_to_jsonl.toml"
    shutil.copy(EXAMPLES / "webhook_to_jsonl.toml", file)
    body = (shared_testdata / "payloads" / "shopify_rest" / "order.json").read_bytes()
    signature = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    server = EngineServer(compile_file(file), observer=NullObserver())
    port = free_port()
    answers: list[int] = []

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(server.serve, "127.0.0.1", port)
            await server.started.wait()
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                for sig in (signature, "AAAA" + signature[4:]):
                    r = await client.post(
                        "/hooks/shopify/orders",
                        content=body,
                        headers={"X-Shopify-Hmac-Sha256": sig, "X-Shopify-Webhook-Id": sig},
                    )
                    answers.append(r.status_code)
            server.stop()

    anyio.run(main)
    assert answers == [200, 401]
    # webhooks are acknowledged as they come: the file sink publishes rolling segments
    [segment] = (tmp_path / "out").glob("orders-*.jsonl")
    [order] = read_jsonl(segment)
    assert order["email"] == "bob.norman@hostmail.com"
    assert order["lines"] >= 1 and isinstance(order["total_price"], float | int)


def test_integrations_api_example_runs_as_written(
    server_url: str,
    server: ServerState,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("EXAMPLE_API_URL", server_url + "/v1")
    monkeypatch.delenv("INTEGRATION_REDIS_URL", raising=False)
    monkeypatch.setattr(sys, "argv", ["integrations_api.py"])
    runpy.run_path(str(EXAMPLES / "integrations_api.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "Status: success" in out
    assert "'status': 'stopped'" in out and "'successes': 1" in out
    [received] = server.received["example_products"]
    assert received["body"] == {"product_id": "PROD_TEST001", "quantity": 100, "price": 29.99}
    assert received["api_key"] == "your_api_key"
    assert "{'price': 10.0" not in out and "'cost': 12.0" in out
    assert "your_api_key" not in repr(os.environ)
