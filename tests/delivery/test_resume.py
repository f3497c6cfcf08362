"""Interrupted finite runs resume from their checkpoint: real `engine run` processes stopped
by SIGINT or SIGTERM at random points, resumed (and stopped again), end with the bytes of
an uninterrupted run."""

from __future__ import annotations

import hashlib
import json
import random
import signal
import sqlite3
import subprocess
import time
from functools import partial
from pathlib import Path

import anyio
import pytest

from engine.codecs.base import DecodeAt
from engine.codecs.csv import CsvCodec
from engine.codecs.jsonl import JsonlCodec
from engine.components.base import ComponentContext
from engine.components.sources.file import FileSource, FileSourceConfig, _after_lines
from tests.support.kill import (
    READ,
    finish,
    run,
    seeded,
    start,
    wait_for,
)

ROWS = 200_000
INTERRUPTIONS = 3


@pytest.fixture(autouse=True)
def _row_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stopped between the row path's 500-record batches: the columnar path reads 1 MiB
    blocks and may have read the whole input before a signal lands (its resume is tested
    in tests/columnar/test_columnar.py)."""
    monkeypatch.setenv("ENGINE_COLUMNAR", "off")


SINK = """\
[sinks.out]
type = "file"
inputs = ["shape"]
path = "{sink}"
"""


def write_csv(path: Path, first: int, rows: int) -> None:
    """CRLF rows, with a quoted value spanning two lines now and then (line counting must
    follow the CSV reader's, not count newlines)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        f.write("id,name\r\n")
        f.writelines(
            f'{i},"name {i}\nsecond line"\r\n' if i % 997 == 0 else f"{i},name {i}\r\n"
            for i in range(first, first + rows)
        )


def prepare(folder: Path, name: str, source: str, sink: str) -> tuple[Path, Path, Path]:
    """The pipeline file, the workspace and the output of a case."""
    pipeline = folder / "p.toml"
    pipeline.write_text(READ.format(name=name, source=source) + SINK.format(sink=sink))
    return pipeline, folder / ".engine", folder / sink


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def temps(folder: Path, name: str) -> list[Path]:
    return sorted(folder.glob(f".{name}.*.tmp"))


def ours(folder: Path, out: Path, proc: subprocess.Popen[bytes]) -> bool:
    """The run's sink has its temp file: the run is under way (its signal handling too)."""
    return any(p.name.endswith(f".{proc.pid}.tmp") for p in temps(folder, out.name))


def signal_later(
    proc: subprocess.Popen[bytes], rng: random.Random, most: float, signum: signal.Signals
) -> bool:
    """Send `signum` after a random delay of up to `most` seconds; False if it ended before."""
    deadline = time.monotonic() + rng.uniform(0, most)
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    if proc.poll() is not None:
        return False
    proc.send_signal(signum)
    return True


def reference(folder: Path, pipeline: Path, home: Path, out: Path) -> str:
    """The sha256 of an uninterrupted run's output; the output is then removed."""
    code, summary = run(pipeline, home)
    assert code == 0 and summary is not None and summary["outcome"] == "success"
    digest = sha256(out)
    out.unlink()
    return digest


def interrupt_and_resume(
    folder: Path, pipeline: Path, home: Path, out: Path, rng: random.Random
) -> int:
    """Run until a run succeeds, stopping the first ones at random points; returns how many
    runs were interrupted (at least one). Every interrupted run keeps its staged output for
    the next."""
    interrupted = 0
    most = 0.3
    for _ in range(40):
        proc = start(pipeline, home)
        signum = rng.choice([signal.SIGINT, signal.SIGTERM])
        if interrupted < INTERRUPTIONS and wait_for(partial(ours, folder, out, proc), proc):
            signal_later(proc, rng, most, signum)
        code, summary = finish(proc)
        assert summary is not None, (folder / f"{pipeline.stem}.log").read_text()[-2000:]
        if summary["outcome"] == "success":  # (a signal that came after the end is moot)
            if interrupted:
                print(f"{pipeline.stem}: {interrupted} interruption(s), then resumed to the end")
                return interrupted
            out.unlink()  # the run outran the signal: aim earlier, whatever the machine's speed
            most /= 2
            continue
        assert code == 130 and summary["outcome"] == "interrupted", summary
        interrupted += 1
        assert not out.exists()  # a partial output never appears under the final name
        assert len(temps(folder, out.name)) == 1
    raise AssertionError("no run succeeded")


def run_started(home: Path) -> list[dict[str, object]]:
    with sqlite3.connect(home / "audit.db") as conn:
        rows = conn.execute(
            "SELECT body FROM audit_events WHERE action = 'run_started' ORDER BY seq"
        ).fetchall()
    return [json.loads(body)["details"] for (body,) in rows]


def test_a_csv_run_interrupted_at_random_points_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    rng = seeded()
    write_csv(tmp_path / "in.csv", 0, ROWS)
    pipeline, home, out = prepare(tmp_path, "resume", "in.csv", "out.jsonl")
    expected = reference(tmp_path, pipeline, home, out)

    interrupted = interrupt_and_resume(tmp_path, pipeline, home, out, rng)

    assert sha256(out) == expected
    assert temps(tmp_path, out.name) == []
    log = (tmp_path / "p.log").read_text()
    assert log.count("resuming interrupted run") == interrupted
    # the trail: each resumed run says which run it goes on from and at which offset
    started = run_started(home)
    resumed = [s["resumes"] for s in started if "resumes" in s]
    assert len(resumed) == interrupted
    for details in resumed:
        assert isinstance(details, dict)
        source = details["sources"]["src"]
        assert source["file"] == str(tmp_path / "in.csv")
        assert 0 <= source["offset"] <= (tmp_path / "in.csv").stat().st_size


def test_a_glob_of_files_resumes_to_the_same_bytes(tmp_path: Path) -> None:
    rng = seeded()
    for n in range(4):
        write_csv(tmp_path / "in" / f"part-{n}.csv", n * ROWS // 4, ROWS // 4)
    pipeline, home, out = prepare(tmp_path, "resume-glob", "in/*.csv", "out.jsonl")
    expected = reference(tmp_path, pipeline, home, out)

    interrupted = interrupt_and_resume(tmp_path, pipeline, home, out, rng)

    assert sha256(out) == expected
    assert (tmp_path / "p.log").read_text().count("resuming interrupted run") == interrupted


def test_a_csv_output_resumed_has_its_header_once(tmp_path: Path) -> None:
    rng = seeded()
    write_csv(tmp_path / "in.csv", 0, ROWS // 2)
    pipeline, home, out = prepare(tmp_path, "resume-csv", "in.csv", "out.csv")
    expected = reference(tmp_path, pipeline, home, out)

    interrupt_and_resume(tmp_path, pipeline, home, out, rng)

    assert sha256(out) == expected
    assert out.read_bytes().count(b"id,name\r\n") == 1


def interrupt_once(folder: Path, pipeline: Path, home: Path, out: Path) -> None:
    """Interrupt a run after it staged some records (skip the test if it finished first)."""
    proc = start(pipeline, home)

    def progressed() -> bool:
        found = [p for p in temps(folder, out.name) if p.name.endswith(f".{proc.pid}.tmp")]
        return bool(found) and found[0].stat().st_size > 0

    if wait_for(progressed, proc):
        proc.send_signal(signal.SIGINT)
    code, summary = finish(proc)
    assert summary is not None
    if summary["outcome"] == "success":
        pytest.skip("the run finished before it could be interrupted")
    assert code == 130 and summary["outcome"] == "interrupted"
    assert summary["components"]["src"]["records_out"] < ROWS  # type: ignore[index]


def test_restart_discards_the_checkpoint_and_starts_over(tmp_path: Path) -> None:
    write_csv(tmp_path / "in.csv", 0, ROWS)
    pipeline, home, out = prepare(tmp_path, "restart", "in.csv", "out.jsonl")
    expected = reference(tmp_path, pipeline, home, out)
    interrupt_once(tmp_path, pipeline, home, out)
    code, summary = finish(start(pipeline, home, "--restart"))
    assert code == 0 and summary is not None
    assert summary["components"]["src"]["records_out"] == ROWS  # type: ignore[index]
    assert sha256(out) == expected
    assert "starting over (not resuming interrupted run" in (tmp_path / "p.log").read_text()
    assert "resumes" not in run_started(home)[-1]
    assert temps(tmp_path, out.name) == []  # the kept temp file went with the checkpoint


def test_a_changed_input_or_pipeline_is_not_resumed(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    write_csv(source, 0, ROWS)
    pipeline, home, out = prepare(tmp_path, "changed", "in.csv", "out.jsonl")
    log = tmp_path / "p.log"

    interrupt_once(tmp_path, pipeline, home, out)
    with source.open("a", newline="") as f:
        f.write(f"{ROWS},appended\r\n")
    code, summary = run(pipeline, home)
    assert code == 0 and summary is not None
    assert summary["components"]["src"]["records_out"] == ROWS + 1  # type: ignore[index]
    assert "input changed since it was interrupted: " + str(source) in log.read_text()
    lines = out.read_bytes().splitlines()
    assert len(lines) == ROWS + 1 and json.loads(lines[-1]) == {"id": ROWS, "name": "appended"}

    interrupt_once(tmp_path, pipeline, home, out)
    pipeline.write_text(pipeline.read_text() + "# edited\n")
    code, summary = run(pipeline, home)
    assert code == 0 and summary is not None
    assert summary["components"]["src"]["records_out"] == ROWS + 1  # type: ignore[index]
    assert "the pipeline file changed since" in log.read_text()


def test_a_resumed_run_killed_leaves_no_checkpoint_and_the_next_run_starts_over(
    tmp_path: Path,
) -> None:
    write_csv(tmp_path / "in.csv", 0, ROWS)
    pipeline, home, out = prepare(tmp_path, "crash", "in.csv", "out.jsonl")
    expected = reference(tmp_path, pipeline, home, out)
    interrupt_once(tmp_path, pipeline, home, out)
    proc = start(pipeline, home)  # resumes: the checkpoint is taken, its temp file renamed
    if not wait_for(lambda: ours(tmp_path, out, proc), proc):
        raise AssertionError("the resumed run ended before it could be killed")
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    if proc.returncode != -signal.SIGKILL:
        pytest.skip("the resumed run finished before the kill")
    assert len(temps(tmp_path, out.name)) == 1  # the kept output, now the dead run's

    code, summary = run(pipeline, home)
    assert code == 0 and summary is not None
    assert summary["components"]["src"]["records_out"] == ROWS  # type: ignore[index]
    assert sha256(out) == expected
    assert temps(tmp_path, out.name) == []  # the dead run's temp file was removed


@pytest.mark.parametrize(
    ("codec", "text", "names"),
    [
        (
            CsvCodec(types={"n": "int"}),
            'n,s\r\n1,a\r\n2,"b\nb"\r\n3,c\r\nx,d\r\n4,e\r\n',
            ["n", "s"],
        ),
        (JsonlCodec(), '{"n":1}\n{"n":2}\n\n{"n":3}\n[4]\n{"n":5}\n', None),
    ],
)
def test_a_decode_resumed_at_an_offset_reads_on_and_locates_by_the_whole_file(
    tmp_path: Path, codec: CsvCodec | JsonlCodec, text: str, names: list[str] | None
) -> None:
    path = tmp_path / "in"
    path.write_bytes(text.encode())
    with path.open("rb") as f:
        whole = list(codec.decode(f, source="in", batch_size=2))
    first = DecodeAt()
    with path.open("rb") as f:
        chunks = codec.decode(f, source="in", batch_size=2, at=first)
        head = next(chunks)  # stopped after the first chunk
    pattern = codec.line_ends()
    assert pattern is not None
    offset = _after_lines(path, 0, first.done, pattern)
    assert first.names == names
    at = DecodeAt(first.done, first.names, first.done, offset)
    with path.open("rb") as f:
        f.seek(offset)
        rest = list(codec.decode(f, source="in", batch_size=2, at=at))
    records = [r for c in [head, *rest] for r in c.records]
    assert records == [r for c in whole for r in c.records]
    # the bad line: the CSV's 6th (a quoted value spans lines 3-4), the JSON Lines' 5th
    bad = [r.location for c in whole for r in c.rejected]
    assert bad == [f"in:{6 if names else 5}"]
    assert [r.location for c in rest for r in c.rejected] == bad


def file_source(folder: Path, path: str) -> FileSource:
    config = FileSourceConfig.model_validate({"path": path, "batch": {"size": 2}})
    context = ComponentContext(component_id="src", pipeline="p", base_dir=folder, workspace=folder)
    return FileSource(config, context)


def test_a_glob_stopped_anywhere_goes_on_from_its_position_even_before_reading(
    tmp_path: Path,
) -> None:
    for n in range(2):
        (tmp_path / f"in-{n}.jsonl").write_text("".join(f'{{"n":{n * 5 + i}}}\n' for i in range(5)))

    async def read(source: FileSource, chunks: int | None) -> list[int]:
        got: list[int] = []
        reader = source.read()
        async for chunk in reader:
            got.extend(r["n"] for r in chunk.records)
            if chunks is not None and len(got) >= chunks * 2:
                break
        await reader.aclose()  # type: ignore[attr-defined]
        return got

    for stop in range(7):  # chunks of 2: 3 per file
        first = file_source(tmp_path, "in-*.jsonl")
        head = anyio.run(read, first, stop)
        position = first.position()
        assert position is not None
        # a resumed run stopped before it read anything keeps the position it was given
        idle = file_source(tmp_path, "in-*.jsonl")
        idle.resume_from(position)
        assert idle.position() == position
        rest_source = file_source(tmp_path, "in-*.jsonl")
        assert rest_source.resume_problem(position) is None
        rest_source.resume_from(position)
        assert head + anyio.run(read, rest_source, None) == list(range(10)), stop
