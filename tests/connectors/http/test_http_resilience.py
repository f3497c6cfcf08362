"""Retries, Retry-After, timeouts, circuit breaker and OAuth2 refresh against the real server."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
import pytest

from engine.components.base import ComponentContext
from engine.connectors.http.auth import OAuth2Auth
from engine.connectors.http.client import HttpEndpoint
from engine.connectors.http.options import HttpOptions
from engine.pipeline import compile_file, run
from engine.records import Record, Rejected
from engine.records.digest import ContentDigest
from engine.resilience.breaker import BreakerState, CircuitBreaker, CircuitBreakerConfig
from engine.runtime.observer import BatchAction, RunInfo, RunSummary, StageInfo
from tests.support.http_server import CLIENT_SECRET, ServerState
from tests.support.pipelines import run_file, write_pipeline


class Events:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, object]]] = []
        self.errors: list[str] = []

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
    def run_finished(self, run: RunInfo, summary: RunSummary) -> None: ...

    def connector_error(
        self, stage: StageInfo, error: BaseException, *, attempt: int, will_retry: bool
    ) -> None:
        self.errors.append(str(error))

    def component_event(
        self, stage: StageInfo, action: str, level: str, details: Mapping[str, object]
    ) -> None:
        self.events.append((action, level, dict(details)))


def source(url: str, extra: str = "") -> str:
    return f"""
[pipeline]
name = "resilience"

[sources.api]
type = "http"
url = "{url}"
{extra}

[sinks.out]
type = "file"
inputs = ["api"]
path = "out.jsonl"
"""


def test_5xx_burst_is_retried_until_it_passes(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    extra = "retry = { attempts = 4, backoff = 0.01, max_delay = 0.05 }"
    summary = anyio.run(
        run_file, write_pipeline(tmp_path, source(f"{server_url}/flaky/a?fail=2", extra))
    )
    assert summary.ok, summary.error
    assert server.hits["flaky:a"] == 3
    assert summary.stages["api"].retries == 2


def test_retries_run_out_on_a_dead_endpoint(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    extra = "retry = { attempts = 3, backoff = 0.01, max_delay = 0.05 }"
    summary = anyio.run(run_file, write_pipeline(tmp_path, source(f"{server_url}/down/b", extra)))
    assert not summary.ok and "HTTP 500" in (summary.error or "")
    assert server.hits["down:b"] == 3


@pytest.mark.parametrize("code", [400, 404, 422])
def test_other_4xx_are_permanent_and_not_retried(
    tmp_path: Path, server_url: str, server: ServerState, code: int
) -> None:
    extra = "retry = { attempts = 5, backoff = 0.01 }"
    summary = anyio.run(
        run_file, write_pipeline(tmp_path, source(f"{server_url}/status/{code}", extra))
    )
    assert not summary.ok and f"HTTP {code}" in (summary.error or "")
    assert server.hits[f"status:{code}"] == 1


def test_429_waits_for_retry_after(tmp_path: Path, server_url: str, server: ServerState) -> None:
    extra = "retry = { attempts = 3, backoff = 0.0, max_delay = 5 }"
    url = f"{server_url}/ratelimited/c?retry_after=1"
    summary = anyio.run(run_file, write_pipeline(tmp_path, source(url, extra)))
    assert summary.ok, summary.error
    first, second = server.request_times["429:c"]
    assert second - first >= 0.95  # backoff alone (0 s) would have retried at once


def test_slow_response_times_out_as_transient(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    extra = "timeout = 0.2\nretry = { attempts = 2, backoff = 0.0 }"
    started = time.monotonic()
    summary = anyio.run(
        run_file, write_pipeline(tmp_path, source(f"{server_url}/slow?delay=3", extra))
    )
    assert time.monotonic() - started < 2.5  # two 0.2 s attempts, not the 3 s answer
    assert not summary.ok and "timed out" in (summary.error or "")
    assert summary.stages["api"].retries == 1


def test_circuit_opens_fails_fast_and_reports_state_changes(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    extra = (
        "retry = { attempts = 6, backoff = 0.0, max_delay = 0.01 }\n"
        "circuit_breaker = { failures = 2, reset_timeout = 60 }"
    )
    events = Events()
    plan = compile_file(write_pipeline(tmp_path, source(f"{server_url}/down/d", extra)))
    summary = anyio.run(lambda: run(plan, observer=events))
    assert not summary.ok and "circuit open" in (summary.error or "")
    assert server.hits["down:d"] == 2  # attempts 3..6 never reached the endpoint
    opened = [e for e in events.events if e[0] == "circuit_open"]
    assert len(opened) == 1 and opened[0][1] == "WARNING"
    assert opened[0][2]["previous"] == "closed"


def test_breaker_half_open_closes_on_success_and_reopens_on_failure() -> None:
    now = [0.0]
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(
        CircuitBreakerConfig(
            failures=3, failure_ratio=0.5, window=4, min_calls=4, reset_timeout=10
        ),
        on_change=lambda old, new, reason: changes.append((old.value, new.value)),
        clock=lambda: now[0],
    )
    for ok in (True, False, True, False):  # 50% of 4 calls: the ratio opens it
        breaker.before()
        breaker.success() if ok else breaker.failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(Exception, match="circuit open"):
        breaker.before()
    now[0] = 11
    breaker.before()  # the trial call
    with pytest.raises(Exception, match="half-open"):
        breaker.before()  # only one trial at a time
    breaker.failure()
    assert breaker.state is BreakerState.OPEN
    now[0] = 22
    breaker.before()
    breaker.success()
    assert breaker.state is BreakerState.CLOSED
    assert changes == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def _context(events: list[tuple[str, str, Mapping[str, object]]]) -> ComponentContext:
    return ComponentContext(
        component_id="api",
        pipeline="p",
        base_dir=Path.cwd(),
        workspace=Path.cwd(),
        emitter=lambda action, level, details: events.append((action, level, details)),
    )


def test_oauth2_refreshes_before_expiry_and_once_on_401(
    server_url: str, server: ServerState
) -> None:
    server.token_ttl = 1.0  # refreshed half-way through: 0.5 s
    events: list[tuple[str, str, Mapping[str, object]]] = []
    auth = OAuth2Auth(
        token_url=f"{server_url}/oauth/token",
        client_id="test-client",
        client_secret=CLIENT_SECRET,  # type: ignore[arg-type]
    )
    endpoint = HttpEndpoint(HttpOptions(url=f"{server_url}/protected", auth=auth), _context(events))

    async def main() -> list[int]:
        await endpoint.open()
        try:
            codes = [(await endpoint.request("GET", f"{server_url}/protected")).status_code]
            await anyio.sleep(0.6)
            codes.append((await endpoint.request("GET", f"{server_url}/protected")).status_code)
            server.tokens.clear()  # the server forgets every token: the next call gets a 401
            codes.append((await endpoint.request("GET", f"{server_url}/protected")).status_code)
            return codes
        finally:
            await endpoint.aclose()

    assert anyio.run(main) == [200, 200, 200]
    assert server.token_requests == 3
    reasons = [e[2]["reason"] for e in events if e[0] == "oauth2_token_refreshed"]
    assert reasons == ["initial", "expiring", "rejected"]
    assert CLIENT_SECRET not in repr(events)
