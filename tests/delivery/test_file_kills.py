"""file -> file and file -> sql under `kill -9` and Ctrl-C, with real `engine run` processes."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.data import POSTGRES_URL, require_service, sql
from tests.support.kill import (
    READ,
    READ_TO_FILE,
    Counts,
    csv_rows,
    finish,
    kill_when,
    run,
    seeded,
    start,
    started_runs,
    wait_for,
    written_per_run,
)

ROWS = 150_000
KILLS = 5

FILE_PIPELINE = READ_TO_FILE.format(name="kill-file", source="in.csv")


def temps(folder: Path) -> list[Path]:
    return sorted(folder.glob(".out.jsonl.*.tmp"))


def staged(folder: Path, proc: subprocess.Popen[bytes]) -> int:
    """How many bytes the process has staged in its temp file (0 before it has one)."""
    total = 0
    for path in temps(folder):
        if path.name.endswith(f".{proc.pid}.tmp"):
            with contextlib.suppress(FileNotFoundError):  # renamed meanwhile
                total += path.stat().st_size
    return total


@pytest.mark.slow
def test_kill_9_never_replaces_the_output_and_the_next_run_cleans_up(tmp_path: Path) -> None:
    rng = seeded()
    csv_rows(tmp_path, ROWS)
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(FILE_PIPELINE)
    home = tmp_path / ".engine"
    code, _ = run(pipeline, home)
    assert code == 0
    complete = (tmp_path / "out.jsonl").read_bytes()
    assert complete.count(b"\n") == ROWS

    kills = orphaned = 0
    for _ in range(KILLS):
        # kill once the run has staged a random share of the output: a point in its
        # progress, whatever the machine's speed, and always before the rename
        share = rng.uniform(0.05, 0.8) * len(complete)
        proc = start(pipeline, home)
        if kill_when(proc, lambda p=proc, s=share: staged(tmp_path, p) >= s):
            kills += 1
        # killed or not, the final name holds a complete output, never a partial one
        assert (tmp_path / "out.jsonl").read_bytes() == complete
        orphaned = max(orphaned, len(temps(tmp_path)))
    assert kills > 0 and orphaned > 0  # the kills left temp files behind

    code, summary = run(pipeline, home)
    assert code == 0 and summary is not None and summary["outcome"] == "success"
    assert temps(tmp_path) == []  # orphans of dead processes removed, ours renamed
    delivered = [json.loads(x)["id"] for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    lost = ROWS - len(set(delivered))
    counts = Counts(ROWS, len(delivered), lost, len(delivered) - len(set(delivered)), kills=kills)
    print(counts.line("file->file"))
    assert counts.lost == 0 and counts.duplicated == 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_is_interrupted_and_keeps_the_previous_output(
    tmp_path: Path, signum: signal.Signals
) -> None:
    csv_rows(tmp_path, ROWS)
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(FILE_PIPELINE)
    previous = b'{"id": "complete output of an earlier run"}\n'
    (tmp_path / "out.jsonl").write_bytes(previous)
    proc = start(pipeline, tmp_path / ".engine")
    if not wait_for(lambda: bool(temps(tmp_path)), proc):
        pytest.fail("the run ended before it could be interrupted")
    proc.send_signal(signum)
    code, summary = finish(proc)
    if summary is not None and summary["outcome"] == "success":
        pytest.skip("the run finished before the signal arrived")
    assert code == 130
    assert summary is not None and summary["ok"] is False
    assert summary["outcome"] == "interrupted" and summary["error"] is None
    assert (tmp_path / "out.jsonl").read_bytes() == previous
    # what was staged is kept, under its temp name only, for the next run to resume
    assert len(temps(tmp_path)) == 1


def test_the_text_summary_of_an_interrupted_run_says_so(tmp_path: Path) -> None:
    csv_rows(tmp_path, ROWS)
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(FILE_PIPELINE)
    proc = start(pipeline, tmp_path / ".engine", "--format", "text")  # the last one counts
    if not wait_for(lambda: bool(temps(tmp_path)), proc):
        pytest.fail("the run ended before it could be interrupted")
    proc.send_signal(signal.SIGINT)
    code, _ = finish(proc)
    said = (tmp_path / "p.log").read_text()
    assert code == 130, said[-2000:]
    assert "interrupted in" in said and "\nok in" not in said


@pytest.fixture
def postgres_table() -> Iterator[tuple[str, str]]:
    """The machine's PostgreSQL and a unique table name prefix (tables dropped by the test)."""
    require_service("postgres", POSTGRES_URL)
    yield POSTGRES_URL, f"t_delivery_{uuid.uuid4().hex[:10]}"


SQL_SINK = """\
[sinks.db]
type = "sql"
inputs = ["shape"]
url = "{url}"
table = "{table}"
"""


@pytest.mark.slow
@pytest.mark.services
def test_kill_9_of_file_to_sql_leaves_no_committed_row_without_its_event(
    tmp_path: Path, postgres_table: tuple[str, str]
) -> None:
    url, base = postgres_table
    rng = seeded()
    rows = 60_000
    csv_rows(tmp_path, rows)
    home = tmp_path / ".engine"
    totals = Counts(sent=0, delivered=0, lost=0, duplicated=0)
    tables = [f"{base}_{n}" for n in range(KILLS)]
    try:
        for table in tables:
            sql(url, f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name TEXT)")
            pipeline = tmp_path / f"{table}.toml"
            pipeline.write_text(
                READ.format(name="kill-sql", source="in.csv")
                + SQL_SINK.format(url=url, table=table)
            )

            def committed(table: str = table) -> int:
                return int(sql(url, f"SELECT count(*) FROM {table}")[0][0])

            share = rng.uniform(0.05, 0.8) * rows
            proc = start(pipeline, home)
            killed = kill_when(proc, lambda s=share: committed() >= s)
            if not killed:
                assert proc.wait(timeout=60) == 0
            totals.kills += killed
            rows_in = committed()
            run_id = started_runs(home)[-1]
            described = written_per_run(home, "db").get(run_id, 0)
            totals.sent += described  # the rows the trail says were written
            totals.delivered += rows_in  # the rows committed
            # every committed row's batch_written event was durable before the commit;
            # at most the one batch between that flush and its commit has no rows yet
            totals.untrailed += max(rows_in - described, 0)
            assert described - rows_in <= 500, (described, rows_in)
            ids = [r[0] for r in sql(url, f"SELECT id FROM {table} ORDER BY id")]
            assert ids == list(range(len(ids)))  # whole batches, in order: no gap
    finally:
        for table in tables:
            sql(url, f"DROP TABLE IF EXISTS {table}")
    print(totals.line("file->sql (sent: rows with batch_written, delivered: committed)"))
    assert totals.kills > 0
    assert totals.untrailed == 0
