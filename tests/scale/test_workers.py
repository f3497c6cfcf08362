"""`engine run --workers N` in real processes: the output is the one process's, byte for
byte; the trail verifies; cursors are committed once; a signal stops the workers and
publishes nothing."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from engine.errors import PermanentError
from engine.partitions.spec import PartitionSpec, RunContext
from tests.support.data import POSTGRES_URL, require_service, sql
from tests.support.kill import DEADLINE, wait_for

ENGINE = str(Path(sys.executable).with_name("engine"))


def engine(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [ENGINE, *args],
        env={**os.environ, "ENGINE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
        check=False,
    )


def run_twice(pipeline: Path, home: Path, outputs: list[Path]) -> dict[str, bytes]:
    """Run with one process, then with two; both outputs, checked equal."""
    first = engine(home, "run", "-q", "--workers", "1", str(pipeline))
    assert first.returncode == 0, first.stderr
    one = {p.name: p.read_bytes() for p in outputs}
    for p in outputs:
        p.unlink()
    second = engine(home, "run", "-q", "--workers", "2", str(pipeline))
    assert second.returncode == 0, second.stderr
    assert " partitions in 2 processes" in second.stderr
    for p in outputs:
        assert p.read_bytes() == one[p.name], f"{p.name} differs from the one-process output"
    verify = engine(home, "audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "abandoned" not in verify.stdout
    return one


def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    notes = ["plain", 'say "hi"', "two\nlines", "a, b", "three\r\nline\nnote", ""]
    with path.open("w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["id", "name", "note"])
        for i in range(rows):
            out.writerow([i, f"name {i}", rng.choice(notes) + "x" * rng.randrange(40)])


def test_csv_with_quoted_newlines_cut_in_ranges(tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", 6000)
    (tmp_path / "p.toml").write_text(
        """
[pipeline]
name = "ranges"
[sources.src]
type = "file"
path = "in.csv"
partition = { size = "64KiB" }
[transforms.m]
type = "map"
inputs = ["src"]
[transforms.m.fields]
id = "to_number(id)"
name = "name"
note = "note"
[sinks.csv]
type = "file"
inputs = ["m"]
path = "out/all.csv"
[sinks.json]
type = "file"
inputs = ["m"]
path = "out/all.json"
[sinks.lines]
type = "file"
inputs = ["m"]
path = "out/all.jsonl"
"""
    )
    out = tmp_path / "out"
    one = run_twice(tmp_path / "p.toml", tmp_path / "home", [out / "all.csv", out / "all.json"])
    records = json.loads(one["all.json"])
    assert [r["id"] for r in records] == list(range(6000))
    assert sum("\n" in r["note"] for r in records) > 100  # the cuts had quoted breaks to avoid
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no piece left


def test_glob_one_partition_per_file_and_partition_paths(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for n in range(5):
        lines = [json.dumps({"file": n, "i": i}) for i in range(300 + n)]
        (folder / f"f{n}.jsonl").write_text("\n".join(lines) + "\n")
    (tmp_path / "p.toml").write_text(
        """
[pipeline]
name = "globbed"
[sources.src]
type = "file"
path = "in/*.jsonl"
[sinks.all]
type = "file"
inputs = ["src"]
path = "out/all.csv"
[sinks.parts]
type = "file"
inputs = ["src"]
path = "parts/part-{partition}.jsonl"
"""
    )
    run_twice(tmp_path / "p.toml", tmp_path / "home", [tmp_path / "out" / "all.csv"])
    parts = sorted(p.name for p in (tmp_path / "parts").iterdir())
    assert parts == [f"part-000{n}.jsonl" for n in range(5)]
    second = (tmp_path / "parts" / "part-0002.jsonl").read_text().splitlines()
    assert len(second) == 302 and all(json.loads(x)["file"] == 2 for x in second)


@pytest.fixture(params=["sqlite", "postgresql"])
def keyed_table(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path / 'src.db'}"
    if request.param == "postgresql":
        require_service("postgres", POSTGRES_URL)
        url = POSTGRES_URL
    name = f"keys_{uuid.uuid4().hex[:10]}"
    sql(url, f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, v TEXT)")
    values = ", ".join(f"({i}, 'v{i}')" for i in range(1, 1001))
    sql(url, f"INSERT INTO {name} VALUES {values}")
    yield url, name
    sql(url, f"DROP TABLE IF EXISTS {name}")


def test_sql_key_ranges_commit_the_cursor_once(
    tmp_path: Path, keyed_table: tuple[str, str]
) -> None:
    url, name = keyed_table
    (tmp_path / "p.toml").write_text(
        f"""
[pipeline]
name = "keyed"
[sources.db]
type = "sql"
url = "{url}"
table = "{name}"
cursor = "id"
partition_ranges = 4
[sinks.out]
type = "file"
inputs = ["db"]
path = "out/rows.jsonl"
"""
    )
    home = tmp_path / "home"
    done = engine(home, "run", "-q", "--workers", "2", str(tmp_path / "p.toml"))
    assert done.returncode == 0, done.stderr
    assert "4 partitions in 2 processes" in done.stderr
    rows = [json.loads(x) for x in (tmp_path / "out" / "rows.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == list(range(1, 1001))
    with sqlite3.connect(home / "state.db") as db:
        saved = db.execute(
            "SELECT value, version FROM engine_cursors WHERE component = 'db'"
        ).fetchall()
    # saved once, by the run, after every key range was read
    assert [(json.loads(v)["value"], version) for (v, version) in saved] == [(1000, 1)]
    with sqlite3.connect(home / "audit.db") as db:
        finished = db.execute(
            "SELECT count(*) FROM audit_events WHERE action = 'run_finished'"
        ).fetchone()
        parts = db.execute(
            "SELECT count(*) FROM audit_events WHERE action = 'partition_finished'"
        ).fetchone()
    assert finished == (1,) and parts == (4,)
    sql(url, f"INSERT INTO {name} VALUES (1001, 'late')")
    again = engine(
        home, "run", "-q", "--workers", "2", "--format", "json", str(tmp_path / "p.toml")
    )
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["components"]["db"]["records_out"] == 1
    assert engine(home, "audit", "verify").returncode == 0


def test_sigterm_stops_the_workers_and_publishes_nothing(tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", 150_000)
    _copy_pipeline(tmp_path, "stopped", "out/all.jsonl", _SMALL_RANGES)
    proc = subprocess.Popen(
        [ENGINE, "run", "-q", "--workers", "2", str(tmp_path / "p.toml")],
        env={**os.environ, "ENGINE_HOME": str(tmp_path / "home")},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    out = tmp_path / "out"
    started = wait_for(lambda: out.is_dir() and any(out.iterdir()), proc)
    assert started, "the run ended before a worker wrote"
    # the workers were forked from the run's own process (no server process between)
    workers = _children(proc.pid)
    assert len(workers) == 2
    assert all(_command(pid) == _command(proc.pid) for pid in workers)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=DEADLINE)
    assert proc.returncode == 130, err.decode()
    assert list(out.iterdir()) == [], err.decode()  # nothing published, no piece left
    assert _children(proc.pid) == []
    verify = engine(tmp_path / "home", "audit", "verify")
    assert verify.returncode == 0, verify.stdout


def test_a_sigterm_at_any_moment_of_a_worker_stops_it_and_it_reports(tmp_path: Path) -> None:
    """SIGTERM straight to a worker (as its parent's death sends it), at random moments: in
    a partition, at its end, between event loops. The worker is never ended by it: it
    reports its partition interrupted and the run ends stopped (130), nothing left; or,
    the signal come after its last partition, the run ends published. Never a run failed
    by a worker gone."""
    write_csv(tmp_path / "in.csv", 100_000)
    _copy_pipeline(tmp_path, "poked", "out/all.jsonl", _SMALL_RANGES)
    out = tmp_path / "out"
    rng = random.Random(11)
    for _ in range(6):
        proc = subprocess.Popen(
            [ENGINE, "run", "-q", "--workers", "2", str(tmp_path / "p.toml")],
            env={**os.environ, "ENGINE_HOME": str(tmp_path / "home")},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert wait_for(lambda: out.is_dir() and any(out.iterdir()), proc)
        worker = _children(proc.pid)[0]
        # many small partitions: each pause lands anywhere in one, or between two
        threading.Event().wait(rng.uniform(0.0, 0.2))
        with contextlib.suppress(ProcessLookupError):  # it was done with every partition
            os.kill(worker, signal.SIGTERM)
        _, err = proc.communicate(timeout=DEADLINE)
        assert proc.returncode in (0, 130), err.decode()
        if proc.returncode == 130:
            assert list(out.iterdir()) == [], err.decode()
        else:
            assert [p.name for p in out.iterdir()] == ["all.jsonl"], err.decode()
            assert len((out / "all.jsonl").read_bytes().splitlines()) == 100_000
            (out / "all.jsonl").unlink()


def test_a_killed_parent_takes_its_workers_and_publishes_nothing(tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", 100_000)
    _copy_pipeline(tmp_path, "killed", "out/all.csv", _SMALL_RANGES)
    home = tmp_path / "home"
    proc = subprocess.Popen(
        [ENGINE, "run", "-q", "--workers", "2", str(tmp_path / "p.toml")],
        env={**os.environ, "ENGINE_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    out = tmp_path / "out"
    assert wait_for(lambda: out.is_dir() and any(out.iterdir()), proc)
    workers = _children(proc.pid)
    proc.kill()
    proc.wait(timeout=DEADLINE)
    assert not (out / "all.csv").exists()
    # the pieces are named by the run's process, which is gone; its workers end with it
    owners = {int(p.name.split(".")[-2]) for p in out.iterdir()}
    assert owners <= {proc.pid}
    assert wait_for(lambda: not any(_alive(pid) for pid in workers))
    again = engine(home, "run", "-q", "--workers", "2", str(tmp_path / "p.toml"))
    assert again.returncode == 0, again.stderr
    assert [p.name for p in out.iterdir()] == ["all.csv"]  # the pieces were removed
    with (out / "all.csv").open(newline="") as f:
        assert [int(row["id"]) for row in csv.DictReader(f)] == list(range(100_000))


#: many small ranges and batches: a run that is surely mid-partition when it is signalled
_SMALL_RANGES = 'partition = { size = "256KiB" }\nbatch = { size = 200 }'


def _copy_pipeline(tmp_path: Path, name: str, out: str, source: str = "") -> Path:
    """``p.toml``: pipeline ``name`` copying ``in.csv`` to ``out``; ``source``: more settings of
    its source (a partition size, a batch size)."""
    path = tmp_path / "p.toml"
    path.write_text(
        f"""
[pipeline]
name = "{name}"
[sources.src]
type = "file"
path = "in.csv"
{source}
[sinks.out]
type = "file"
inputs = ["src"]
path = "{out}"
"""
    )
    return path


def _children(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False)
    return [int(x) for x in found.stdout.split()]


def _command(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes()


def test_a_process_with_other_threads_starts_its_workers_from_a_server(tmp_path: Path) -> None:
    """Forking a process whose other threads may hold locks is not safe: the workers come
    from a forkserver instead, and the run is the same."""
    from engine.partitions.local import run_workers, start_workers
    from engine.pipeline import compile_file
    from engine.settings import EngineSettings

    write_csv(tmp_path / "in.csv", 3000)
    _copy_pipeline(tmp_path, "threaded", "out/all.csv", 'partition = { size = "32KiB" }')
    plan = compile_file(tmp_path / "p.toml")
    other = threading.Event()
    thread = threading.Thread(target=other.wait)
    thread.start()
    try:
        pool = start_workers(plan, 2)
    finally:
        other.set()
        thread.join()
    assert not pool.forked
    summary, _ = run_workers(
        plan,
        workers=2,
        workspace=tmp_path / "home",
        run_id="threaded-1",
        settings=EngineSettings.load({}),
        audit=False,
        pool=pool,
    )
    assert summary.ok, summary.error
    assert (tmp_path / "out" / "all.csv").read_bytes() == (tmp_path / "in.csv").read_bytes()


class _Unreadable(Sequence[PartitionSpec]):
    """Four partitions, the third of which cannot be found (its file went away)."""

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> PartitionSpec:  # type: ignore[override]
        if index == 2:
            raise PermanentError("cannot read in.csv: it is gone")
        return PartitionSpec(index, 4, "src", {})


def test_a_partition_that_cannot_be_found_fails_the_run_and_stops_the_others(
    tmp_path: Path,
) -> None:
    from engine.partitions.local import _Signals, start_workers
    from engine.pipeline import compile_file

    write_csv(tmp_path / "in.csv", 200_000)
    _copy_pipeline(tmp_path, "gone", "out/all.jsonl")
    plan = compile_file(tmp_path / "p.toml")
    context = RunContext("gone-1", str(tmp_path / "home"), False, True, plan.spec.sha256)
    pool = start_workers(plan, 2)
    try:
        results = pool.run(_Unreadable(), context, _Signals())
    finally:
        pool.close()
    assert pool.planning_error == "planning partitions: cannot read in.csv: it is gone"
    # found as the second was handed out: no other partition started, the two drained
    assert [r.index for r in results] == [0, 1]
    assert {r.outcome for r in results} <= {"interrupted", "success"}


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie no init has reaped yet does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.mark.parametrize(
    ("path", "pagination", "records"),
    [
        ("offset", '{ type = "offset", limit = 4, total_path = "total" }', "results"),
        ("page", '{ type = "page", size = 3, total_pages_path = "total_pages" }', "items"),
    ],
)
def test_http_page_sets(tmp_path: Path, path: str, pagination: str, records: str) -> None:
    from tests.support.http_server import ServerThread

    (tmp_path / "p.toml").write_text(
        f"""
[pipeline]
name = "paged"
[sources.api]
type = "http"
url = "${{env:API_URL}}/items/{path}"
records = "{records}"
pagination = {pagination}
[sinks.out]
type = "file"
inputs = ["api"]
path = "out/items.jsonl"
"""
    )
    with ServerThread() as server:
        # the workers compile the file with the variables of --env-file too
        (tmp_path / "vars.env").write_text(f"API_URL={server.url}\n")
        home = tmp_path / "home"
        done = engine(
            home, "run", "-q", "--workers", "2", "--env-file", str(tmp_path / "vars.env"),
            str(tmp_path / "p.toml"),
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert re.search(r"[34] partitions in 2 processes", done.stderr)
    lines = (tmp_path / "out" / "items.jsonl").read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == list(range(1, 26))


def test_http_incremental_read_keeps_its_cursor(tmp_path: Path) -> None:
    """A source read whole by one partition commits what its own commit would save."""
    from tests.support.http_server import ServerThread

    with ServerThread() as server:
        (tmp_path / "p.toml").write_text(
            f"""
[pipeline]
name = "incr"
[sources.api]
type = "http"
url = "{server.url}/items/incremental"
records = "items"
incremental = {{ cursor_field = "updated_at", param = "updated_since" }}
[sinks.out]
type = "file"
inputs = ["api"]
path = "out/items.jsonl"
"""
        )
        home = tmp_path / "home"
        done = engine(home, "run", "-q", "--workers", "2", str(tmp_path / "p.toml"))
    assert done.returncode == 0, done.stderr
    assert "1 partition in 1 process" in done.stderr
    with sqlite3.connect(home / "state.db") as db:
        saved = db.execute("SELECT value FROM engine_cursors WHERE component = 'api'").fetchall()
    lines = (tmp_path / "out" / "items.jsonl").read_text().splitlines()
    assert len(saved) == 1 and json.loads(lines[-1])["updated_at"] in saved[0][0]


def test_dead_letters_of_every_partition_in_one_file(tmp_path: Path) -> None:
    rows = ["id,name"] + [f"{i},n{i}" if i % 500 else f"{i},n{i},extra" for i in range(4000)]
    (tmp_path / "in.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "p.toml").write_text(
        """
[pipeline]
name = "lettered"
[dead_letter]
max_rejected = 8
[sources.src]
type = "file"
path = "in.csv"
on_error = "dead_letter"
partition = { size = "8KiB" }
[sinks.out]
type = "file"
inputs = ["src"]
path = "out/all.jsonl"
"""
    )
    home = tmp_path / "home"
    done = engine(home, "run", "-q", "--workers", "2", "--format", "json", str(tmp_path / "p.toml"))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["dead_letters"] == 8
    letters = Path(summary["dead_letter_path"])
    assert list(letters.parent.iterdir()) == [letters]  # the partitions' files were merged
    lines = [json.loads(x) for x in letters.read_text().splitlines()]
    assert [x["record"][0] for x in lines] == [str(i) for i in range(0, 4000, 500)]
