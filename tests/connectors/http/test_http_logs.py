"""A retried request as the logs tell it: one record per retry, with its attempt, from the
component's own task, and no secret of the URL."""

from __future__ import annotations

from pathlib import Path

from tests.support.cli import invoke
from tests.support.http_server import API_KEY, ServerState
from tests.support.logs import json_lines
from tests.support.pipelines import write_pipeline

PIPELINE = """\
[pipeline]
name = "retried"

[sources.api]
type = "http"
url = "{url}/flaky/logs?fail=2"
auth = {{ type = "api_key", key = "{key}", location = "query", name = "api_key" }}
retry = {{ attempts = 4, backoff = 0.01, max_delay = 0.05 }}

[sinks.out]
type = "file"
inputs = ["api"]
path = "out.jsonl"
"""


def test_each_retry_is_logged_once_with_its_attempt(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    pipeline = write_pipeline(tmp_path, PIPELINE.format(url=server_url, key=API_KEY))
    code, out, err = invoke("--log-format", "json", "run", "--no-audit", str(pipeline))
    assert code == 0 and out == "", err
    assert server.hits["flaky:logs"] == 3
    records = json_lines(err)
    retries = [r for r in records if r["logger"] == "engine.retry"]
    assert [(r["attempt"], r["attempts"], r["level"]) for r in retries] == [
        (1, 4, "warning"),
        (2, 4, "warning"),
    ]
    assert {r["component"] for r in retries} == {"api"}
    assert {r["pipeline"] for r in retries} == {"retried"} and all(r["run_id"] for r in retries)
    assert all("503" in r["msg"] and "retrying in" in r["msg"] for r in retries)
    assert API_KEY not in err
