"""INTEGRATION_RETRY_COUNT and INTEGRATION_TIMEOUT reach the connectors of a real
`engine run` (a child process with that environment) against the test server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.http_server import ServerState

ENGINE_RUN = [sys.executable, "-m", "engine.cli", "run", "-q", "--no-audit", "--format", "json"]


def run_cli(tmp_path: Path, url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``engine run --format json`` of an http source at ``url``, with ``env`` set."""
    pipeline = tmp_path / "pipeline.toml"
    pipeline.write_text(
        f"""
[pipeline]
name = "settings"

[sources.api]
type = "http"
url = "{url}"

[sinks.out]
type = "file"
inputs = ["api"]
path = "out.jsonl"
""",
        encoding="utf-8",
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("INTEGRATION_", "AUDIT_"))}
    return subprocess.run(
        [*ENGINE_RUN, str(pipeline)],
        cwd=tmp_path,
        env={**clean, "ENGINE_HOME": str(tmp_path / "home"), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_integration_retry_count_sets_the_default_retries(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    result = run_cli(tmp_path, f"{server_url}/down/settings", INTEGRATION_RETRY_COUNT="1")
    assert result.returncode == 1 and "HTTP 500" in json.loads(result.stdout)["error"]
    assert server.hits["down:settings"] == 2  # one try and one retry


def test_a_bad_retry_count_runs_nothing(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    result = run_cli(tmp_path, f"{server_url}/down/bad", INTEGRATION_RETRY_COUNT="abc")
    assert result.returncode == 78
    assert "INTEGRATION_RETRY_COUNT: not an integer ('abc')" in result.stderr
    assert server.hits["down:bad"] == 0


def test_integration_timeout_sets_the_default_timeout(
    tmp_path: Path, server_url: str, server: ServerState
) -> None:
    result = run_cli(
        tmp_path,
        f"{server_url}/slow?delay=5",
        INTEGRATION_TIMEOUT="0.3",
        INTEGRATION_RETRY_COUNT="0",
    )
    summary = json.loads(result.stdout)
    assert result.returncode == 1 and "ReadTimeout" in summary["error"]
    assert summary["duration_s"] < 4.5  # the run, not the start-up: 5 s were not awaited
