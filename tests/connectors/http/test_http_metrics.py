"""What the HTTP connector reports to the metrics: status codes, retries, circuit state."""

from __future__ import annotations

from pathlib import Path

import anyio
from prometheus_client import generate_latest

from engine.pipeline import compile_file, run
from engine.runtime.observer import NullObserver
from engine.telemetry.metrics import EngineMetrics
from tests.support.http_server import ServerState
from tests.support.metrics import sample_value

PIPELINE = """
[pipeline]
name = "{name}"

[sources.api]
type = "http"
url = "{url}"
retry = {{ attempts = 4, backoff = 0.0, max_delay = 0.01 }}
{extra}

[sinks.out]
type = "file"
inputs = ["api"]
path = "out-{name}.jsonl"
"""


def test_status_codes_retries_and_circuit_state(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    metrics = EngineMetrics()

    def run_one(name: str, url: str, extra: str = "") -> bool:
        path = tmp_path / f"{name}.toml"
        path.write_text(PIPELINE.format(name=name, url=url, extra=extra), encoding="utf-8")
        plan = compile_file(path)
        summary = anyio.run(lambda: run(plan, observer=NullObserver(), telemetry=metrics))
        return summary.ok

    assert run_one("flaky", f"{server_url}/flaky/m?fail=2")  # 503, 503, then 200
    breaker = "circuit_breaker = { failures = 2, reset_timeout = 60 }"
    assert not run_one("down", f"{server_url}/down/m", breaker)  # 500, 500, then open
    text = generate_latest(metrics.registry).decode()

    flaky = {"pipeline": "flaky", "component": "api"}
    assert sample_value(text, "engine_http_responses_total", code="503", **flaky) == 2
    assert sample_value(text, "engine_http_responses_total", code="200", **flaky) == 1
    assert sample_value(text, "engine_retries_total", **flaky) == 2
    assert sample_value(text, "engine_circuit_state", **flaky) is None  # it has no breaker

    down = {"pipeline": "down", "component": "api"}
    assert sample_value(text, "engine_http_responses_total", code="500", **down) == 2
    assert sample_value(text, "engine_circuit_state", **down) == 2  # open
    assert sample_value(text, "engine_errors_total", **down) == 1
    assert sample_value(text, "engine_runs_total", pipeline="down", outcome="failure") == 1
