"""The file sink asks the kernel to write its output back as it grows, so that the fsync
that publishes it has little left to do; what it publishes is unchanged."""

from __future__ import annotations

import hashlib
import os
from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
import pytest

from engine.components.base import ComponentContext
from engine.components.sinks import file as file_sink
from engine.components.sinks.file import WRITE_BACK_STEP, FileSink, FileSinkConfig
from engine.records.digest import Digester


def _sink(folder: Path, *, digest: bool) -> FileSink:
    context = ComponentContext(
        component_id="out", pipeline="p", base_dir=folder, workspace=folder, run_id="r1"
    )
    if digest:
        context.digester = Digester()
    return FileSink(FileSinkConfig(inputs=["x"], path="out/o.jsonl"), context)


def _batches() -> list[list[dict[str, Any]]]:
    # 40 batches of about 0.5 MiB each: past the step twice
    return [[{"n": b * 1000 + i, "pad": "x" * 500} for i in range(1000)] for b in range(40)]


def _lines(batch: list[dict[str, Any]]) -> bytes:
    return b"".join(b'{"n":%d,"pad":"%s"}\n' % (r["n"], b"x" * 500) for r in batch)


@pytest.mark.parametrize("digest", [False, True])
def test_write_back_follows_the_output_in_steps_and_changes_no_byte(
    tmp_path: Path, digest: bool
) -> None:
    sink = _sink(tmp_path, digest=digest)
    marks: list[int] = []
    digests: list[str] = []

    async def main() -> None:
        await sink.open()
        for batch in _batches():
            await sink.write(batch)
            target = next(iter(sink._open.values()))
            marks.append(target.written_back)
            content = sink.take_content()
            if content is not None:
                digests.append(content.digest)
        await sink.publish()

    anyio.run(main)
    out = (tmp_path / "out" / "o.jsonl").read_bytes()
    expected = b"".join(map(_lines, _batches()))
    assert out == expected
    # asked once per step of growth, each time up to where the output then ended
    steps = sorted(set(marks))
    assert steps[0] == 0 and len(steps) == len(expected) // WRITE_BACK_STEP + 1
    assert all(b - a >= WRITE_BACK_STEP for a, b in pairwise(steps))
    if digest:  # the digests are of the very bytes written, batch by batch
        chunks, position = [], 0
        for batch in _batches():
            size = len(_lines(batch))
            chunks.append(hashlib.sha256(out[position : position + size]).hexdigest())
            position += size
        assert digests == chunks


def test_without_posix_fadvise_the_output_is_written_all_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(os, "posix_fadvise", raising=False)
    sink = _sink(tmp_path, digest=False)

    async def main() -> int:
        await sink.open()
        for batch in _batches():
            await sink.write(batch)
        written_back = next(iter(sink._open.values())).written_back
        await sink.publish()
        return written_back

    assert anyio.run(main) == 0
    assert (tmp_path / "out" / "o.jsonl").stat().st_size > 2 * file_sink.WRITE_BACK_STEP
