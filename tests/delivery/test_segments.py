"""The file sink's rolling segments: limits, names, fsync-and-rename, orphaned temp files."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import anyio

from engine.components.base import ComponentContext
from engine.components.sinks.file import FileSink, FileSinkConfig


def rolling_sink(folder: Path, path: str = "out/q.jsonl", **segment: Any) -> FileSink:
    context = ComponentContext(
        component_id="out", pipeline="p", base_dir=folder, workspace=folder, run_id="r1"
    )
    context.acknowledged = True  # what the runtime sets under a queue or webhook source
    config = FileSinkConfig(inputs=["x"], path=path, segment=segment)
    return FileSink(config, context)


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_segment_is_published_at_its_size_limit_under_its_own_name(tmp_path: Path) -> None:
    sink = rolling_sink(tmp_path, max_bytes=20)

    async def main() -> list[float | None]:
        await sink.open()
        due = [sink.publish_due()]  # nothing staged: nothing to publish
        await sink.write([{"id": 1}])  # 10 bytes: under the limit
        due.append(sink.publish_due())
        await sink.write([{"id": 2}, {"id": 3}])
        due.append(sink.publish_due())
        await sink.publish()
        await sink.write([{"id": 4}])
        await sink.close(success=False)  # a failed run discards the segment it was writing
        return due

    due = anyio.run(main)
    assert due[0] is None and due[1] is not None and due[1] > 0 and due[2] == 0
    assert names(tmp_path / "out") == ["q-r1-000001.jsonl"]  # no temp file left either
    assert (tmp_path / "out" / "q-r1-000001.jsonl").read_text().count("\n") == 3


def test_segment_count_and_age_limits_and_an_explicit_segment_field(tmp_path: Path) -> None:
    sink = rolling_sink(tmp_path, path="out/{segment}/part.jsonl", max_records=2, max_age=0.05)

    async def main() -> None:
        await sink.open()
        await sink.write([{"id": 1}, {"id": 2}])
        assert sink.publish_due() == 0  # the record limit
        await sink.publish()
        await sink.write([{"id": 3}])
        deadline = time.monotonic() + 30
        while (due := sink.publish_due()) is not None and due > 0:  # the age limit
            assert time.monotonic() < deadline
            await anyio.sleep(0.01)
        await sink.close(success=True)  # a finished run publishes the last segment

    anyio.run(main)
    assert names(tmp_path / "out") == ["r1-000001", "r1-000002"]
    assert (tmp_path / "out" / "r1-000002" / "part.jsonl").read_text() == '{"id":3}\n'


def test_temp_files_of_dead_processes_are_removed_others_kept(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    dead = out / ".q-r0-000004.jsonl.r0.4194305.tmp"  # above any pid_max: nobody runs it
    alive = out / f".q-r2-000001.jsonl.r2.{os.getppid()}.tmp"  # a process that runs
    other = out / ".notes.txt.r0.4194305.tmp"  # not this sink's output
    for path in (dead, alive, other):
        path.write_text("partial")
    sink = rolling_sink(tmp_path)

    async def main() -> None:
        await sink.open()
        await sink.write([{"id": 1}])
        await sink.close(success=True)

    anyio.run(main)
    assert not dead.exists() and alive.exists() and other.exists()
    assert "q-r1-000001.jsonl" in names(out)
