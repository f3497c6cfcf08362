"""Logs as users read them: JSON lines of a large run, library loggers in the engine's format
and level, `-q` quiet, circuit and rate-limit records once, and the progress display's text."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import anyio
import pytest
from rich.console import Console

from engine.cli.progress import ProgressView
from engine.logs import configure, log_context
from engine.resilience.breaker import CircuitBreaker, CircuitBreakerConfig
from engine.resilience.ratelimit import LocalTokenBucket
from engine.runtime.observer import StageStats
from tests.support.cli import invoke
from tests.support.kill import READ_TO_FILE, csv_rows
from tests.support.logs import json_lines

ROWS = 200_000


def _pipeline(tmp_path: Path, rows: int) -> Path:
    csv_rows(tmp_path, rows)
    path = tmp_path / "big.toml"
    path.write_text(READ_TO_FILE.format(name="big", source="in.csv"))
    return path


def test_a_200k_row_run_logs_one_json_object_per_line(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path, ROWS)
    done = subprocess.run(
        [sys.executable, "-m", "engine", "run", "--log-format", "json", str(pipeline)],
        env={**os.environ, "ENGINE_HOME": str(tmp_path / ".engine")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # no table: the run's end is a record
    records = json_lines(done.stderr)
    for record in records:
        assert datetime.fromisoformat(record["ts"]).utcoffset().total_seconds() == 0
    runtime = [r for r in records if r["logger"] == "engine.run"]
    assert len({(r["run_id"], r["pipeline"]) for r in runtime}) == 1
    assert runtime[0]["pipeline"] == "big"
    # each component's record was logged from its own task: the context names it
    done_by = {r["component"]: r for r in runtime if "component" in r}
    assert set(done_by) == {"src", "shape", "out"}
    assert done_by["src"]["records_out"] == done_by["out"]["records_out"] == ROWS
    [end] = [r for r in runtime if r.get("outcome")]
    assert "component" not in end and end["records_read"] == ROWS and end["records_per_s"] > 0
    assert "records/s" in end["msg"]


def test_library_records_take_the_engines_format_and_level(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure("warning", "json")
    library = logging.getLogger("httpx")
    try:
        raise ConnectionError("refused by https://user:s3cret@api.example/x")
    except ConnectionError:
        with log_context(run_id="r1", pipeline="p", component="api"):
            library.warning("peer went away", exc_info=True)
    library.info("HTTP Request: GET https://api.example/x")  # below the level: dropped
    logging.getLogger("aiormq.connection").warning("reconnecting")  # the engine says it
    [record] = json_lines(capsys.readouterr().err)
    assert record["logger"] == "httpx" and record["level"] == "warning"
    assert (record["run_id"], record["pipeline"], record["component"]) == ("r1", "p", "api")
    assert record["exc"].startswith("ConnectionError: refused") and "\n" not in record["exc"]
    assert "s3cret" not in record["exc"]

    configure("error", "text")
    library.warning("not shown at error")
    assert capsys.readouterr().err == ""
    configure("debug", "text")
    logging.getLogger("aiormq.connection").warning("reconnecting")
    logging.getLogger("sqlalchemy.engine").debug("row (1, 'a')")  # per-row: never shown
    assert capsys.readouterr().err == "WARNING aiormq.connection: reconnecting\n"


def test_a_library_traceback_is_one_line_unless_debugging(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure("info", "text")
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError:
        logging.getLogger("asyncio").error("Task exception was never retrieved", exc_info=True)
    err = capsys.readouterr().err
    assert err == (
        "ERROR asyncio: Task exception was never retrieved (ZeroDivisionError: division by zero)\n"
    )


def test_quiet_prints_nothing_on_success(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline = _pipeline(tmp_path, 10)
    invoke("run", "-q", str(pipeline))  # the first run generates the audit keys, and warns
    code, out, err = invoke("run", "-q", str(pipeline))
    assert (code, out, err) == (0, "", "")
    monkeypatch.setenv("ENGINE_LOG_FORMAT", "json")
    code, out, err = invoke("run", str(pipeline))
    assert code == 0 and out == ""
    assert {r["logger"] for r in json_lines(err)} == {"engine.run", "engine.cli"}


QUIET_RUN = """
import sys
from engine.cli.main import main
sys.argv = ["engine", "run", "-q", sys.argv[1]]
try:
    main()
finally:
    print(sorted({m.split(".")[0] for m in sys.modules} & {"rich", "cryptography"}))
"""


def test_a_quiet_run_that_goes_well_loads_no_printing_nor_signing_library(
    tmp_path: Path,
) -> None:
    pipeline = _pipeline(tmp_path, 10)
    invoke("run", "-q", str(pipeline))  # the first run generates the audit keys, and warns
    done = subprocess.run(
        [sys.executable, "-c", QUIET_RUN, str(pipeline)], capture_output=True, text=True
    )
    # it signed its checkpoint (OpenSSL, as hashlib loaded it) and printed nothing
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]\n", "")
    assert len(list(tmp_path.rglob("checkpoints/*/*.json"))) == 2


def test_a_circuit_change_is_one_record(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    config = CircuitBreakerConfig(failures=2, reset_timeout=5)
    breaker = CircuitBreaker(config, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="engine.resilience"):
        for _ in range(4):
            breaker.failure("503")
        now[0] = 10.0
        breaker.before()
        breaker.success()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "circuit open (was closed): 2 consecutive failures"),
        ("INFO", "circuit half_open (was open): reset timeout elapsed"),
        ("INFO", "circuit closed (was half_open): trial call succeeded"),
    ]


def test_a_spell_of_rate_limit_waits_is_one_record(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]  # the bucket's clock: it moves only when the test says so
    bucket = LocalTokenBucket(rate=10_000, burst=1, clock=lambda: now[0])

    async def calls(n: int) -> None:
        for _ in range(n):
            await bucket.acquire()

    with caplog.at_level(logging.INFO, logger="engine.resilience"):
        anyio.run(calls, 6)  # the first call takes the token, five wait
        now[0] = 61.0  # a quiet minute: the next wait starts a new spell
        anyio.run(calls, 3)
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [
        "rate limit of 10000 calls/s reached"
    ] * 2


def test_progress_shows_rate_percentage_and_eta() -> None:
    now = [100.0]
    view = ProgressView(clock=lambda: now[0])
    now[0] = 110.0
    view.update(
        {
            "src": StageStats(records_out=40_000, bytes_read=1_000_000, bytes_total=4_000_000),
            "out": StageStats(records_in=39_000, records_out=39_000, rejected=12),
        }
    )
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=True, width=120, color_system=None).print(view)
    src, out = buffer.getvalue().splitlines()
    assert src.startswith("src ")
    assert src.endswith("40,000 records, 4,000 records/s, 25% of 4.0 MB, ETA 0:00:30")
    assert out.rstrip().endswith("39,000 records, 3,900 records/s, 12 rejected")
    assert "%" not in out and "ETA" not in out  # a sink does not know how much will come
