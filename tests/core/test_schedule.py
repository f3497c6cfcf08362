"""Schedules: fire times computed alike by every scheduler, each claimed once in the state store."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path

import httpx
import pytest

from engine.errors import ConfigError
from engine.model import ScheduleSettings
from engine.pipeline import compile_file
from engine.state import StateStore
from tests.support.audit import store_sql
from tests.support.cli import write
from tests.support.metrics import sample_value
from tests.support.serve_process import ServeProcess, wait_for


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def test_cron_with_seconds_gives_every_fire_time_in_a_window() -> None:
    every_2s = ScheduleSettings(cron="*/2 * * * * *")
    assert every_2s.next_fire(at(2026, 1, 1, 0, 0, 1)) == at(2026, 1, 1, 0, 0, 2)
    assert every_2s.next_fire(at(2026, 1, 1, 0, 0, 2)) == at(2026, 1, 1, 0, 0, 4)  # strictly after
    assert every_2s.due(at(2026, 1, 1, 0, 0, 2), at(2026, 1, 1, 0, 0, 9)) == [
        at(2026, 1, 1, 0, 0, s) for s in (4, 6, 8)
    ]


def test_cron_is_read_in_its_time_zone_across_daylight_saving_time() -> None:
    nightly = ScheduleSettings(cron="30 2 * * *", timezone="Europe/Paris")
    # 02:30 in Paris is 01:30 UTC in winter
    assert nightly.next_fire(at(2026, 3, 27, 12)) == at(2026, 3, 28, 1, 30)
    # on 29 March 2026 clocks jump from 02:00 to 03:00: it fires at 03:00 CEST (01:00 UTC)
    assert nightly.next_fire(at(2026, 3, 28, 12)) == at(2026, 3, 29, 1, 0)
    assert nightly.next_fire(at(2026, 3, 29, 12)) == at(2026, 3, 30, 0, 30)


def test_an_interval_counts_from_the_epoch_so_schedulers_agree() -> None:
    ten_minutes = ScheduleSettings(interval="10m")
    assert ten_minutes.next_fire(at(2026, 1, 1, 0, 3, 7)) == at(2026, 1, 1, 0, 10)
    assert ScheduleSettings(interval="1h30m").next_fire(at(2026, 1, 1, 0, 0, 1)) == at(
        2026, 1, 1, 1, 30
    )


def test_catch_up_keeps_the_newest_fire_times_up_to_its_limit() -> None:
    hourly = ScheduleSettings(interval="1h", missed="catch_up", catch_up_limit=3)
    due = hourly.due(at(2026, 1, 1), at(2026, 1, 2))
    assert due == [at(2026, 1, 1, 22), at(2026, 1, 1, 23), at(2026, 1, 2)]


@pytest.mark.parametrize(
    ("table", "line", "message"),
    [
        ('cron = "*/5 * * *"', "cron", "is not a cron expression"),
        ('cron = "61 * * * *"', "cron", "is not a cron expression"),
        ('interval = "10 minutes"', "interval", 'give a duration such as "30s"'),
        ('interval = "500ms"', "interval", "at most once a second"),
        ('cron = "* * * * *"\ntimezone = "Mars/Olympus"', "timezone", "is not an IANA time zone"),
        ('cron = "* * * * *"\ninterval = "1m"', "[schedule]", "give either `cron` or `interval`"),
        ("missed = 'skip'", "[schedule]", "give either `cron` or `interval`"),
    ],
)
def test_a_bad_schedule_is_a_located_error(
    tmp_path: Path, table: str, line: str, message: str
) -> None:
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n')
    path = write(tmp_path, PIPELINE.format(schedule=table, sink="out.jsonl"))
    lines = path.read_text().splitlines()
    number = next(n for n, text in enumerate(lines, 1) if text.startswith(line))
    with pytest.raises(ConfigError) as caught:
        compile_file(path)
    text = str(caught.value)
    assert message in text and f"{path}:{number}:" in text, text


def test_a_scheduled_pipeline_cannot_have_a_webhook_source(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[pipeline]
name = "hooks"

[schedule]
interval = "1m"

[sources.hook]
type = "webhook"
path = "/in"

[sinks.out]
type = "file"
inputs = ["hook"]
path = "out.jsonl"
""",
    )
    with pytest.raises(ConfigError) as caught:
        compile_file(path)
    assert "E047" in str(caught.value) and "sources.hook" in str(caught.value)


def test_a_fire_time_is_claimed_by_exactly_one_of_many_racing_claimers(tmp_path: Path) -> None:
    fire = at(2026, 1, 1, 0, 0, 2)
    winners: list[int] = []
    start = threading.Barrier(8)

    def claim(n: int) -> None:
        store = StateStore(tmp_path / "state.db")
        start.wait()
        if store.claim_fire("p", fire, f"holder-{n}"):
            winners.append(n)
        store.close()

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    store = StateStore(tmp_path / "state.db")
    assert store.last_fire("p") == fire
    # the same instant written in another zone is the same fire time
    assert not store.claim_fire("p", fire.astimezone(timezone(timedelta(hours=2))), "late")
    store.close()


PIPELINE = """
[pipeline]
name = "tick"

[schedule]
{schedule}

[sources.a]
type = "file"
path = "in.jsonl"

[sinks.b]
type = "file"
inputs = ["a"]
path = "{sink}"
"""

RUNS = 5


def test_two_schedulers_run_every_fire_time_of_a_two_second_cron_exactly_once(
    tmp_path: Path,
) -> None:
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    pipeline = write(
        tmp_path,
        PIPELINE.format(
            schedule='cron = "*/2 * * * * *"\nmissed = "catch_up"', sink="out/{run_id}.jsonl"
        ),
    )
    home = tmp_path / "home"  # one state store and one trail for both schedulers
    schedulers = [ServeProcess(pipeline, home) for _ in range(2)]
    try:
        wait_for(lambda: len(_scheduled_runs(home, "run_finished")) >= RUNS, f"{RUNS} runs", 180)
        # each scheduler counts the runs it made at its /metrics: together, every one
        wait_for(lambda: _runs_counted(schedulers) >= RUNS, "the runs in the metrics", 60)
    finally:
        for s in schedulers:
            s.proc.send_signal(signal.SIGTERM)
        codes = [s.proc.wait(timeout=60) for s in schedulers]
    assert codes == [0, 0], [s.stderr for s in schedulers]

    started = _scheduled_runs(home, "run_started")
    finished = _scheduled_runs(home, "run_finished")
    fires = sorted(started.values())
    assert len(fires) == len(set(fires)), f"a fire time ran twice: {fires}"
    # every fire time from the first on ran (catch_up: none skipped), two seconds apart
    steps = {b - a for a, b in pairwise(fires)}
    assert steps == {timedelta(seconds=2)}, fires
    assert set(finished) <= set(started) and len(finished) >= RUNS
    assert len(list((tmp_path / "out").iterdir())) == len(finished)
    store = StateStore(home / "state.db")
    last = store.last_fire("tick")
    store.close()
    assert last is not None and last >= fires[-1]
    verify = subprocess.run(
        [sys.executable, "-m", "engine", "audit", "verify", "--workspace", str(home)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def _runs_counted(schedulers: list[ServeProcess]) -> float:
    try:
        texts = [httpx.get(s.url + "/metrics", timeout=10).text for s in schedulers]
    except httpx.TransportError:  # not listening yet
        return 0
    return sum(sample_value(t, "engine_runs_total", pipeline="tick") or 0 for t in texts)


def _scheduled_runs(home: Path, action: str) -> dict[str, datetime]:
    """run id -> the fire time it ran for (from the run_started events of the trail)."""
    if not (home / "audit.db").exists():
        return {}
    try:
        rows = store_sql(
            home,
            "select run_id, body from audit_events where action in ('run_started', :a)",
            a=action,
        )
    except Exception:  # the store is being created
        return {}
    fires: dict[str, datetime] = {}
    done: set[str] = set()
    for run_id, body in rows:
        event = json.loads(body)  # type: ignore[arg-type]
        if event["action"] == "run_started":
            fires[str(run_id)] = datetime.fromisoformat(event["details"]["trigger"]["schedule"])
        if event["action"] == action:
            done.add(str(run_id))
    return {r: f for r, f in fires.items() if r in done}
