"""polars writes a JSON Lines sink's file itself: what it wrote is hashed read back, a
write that fails part way leaves no part of its batch, and a stream that is no file gets
the same bytes through Python."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import BinaryIO

import pytest

from engine.codecs.jsonl import JsonlEncoder
from engine.columnar import ColumnBatch
from engine.records.digest import HashingWriter, write_through

pl = pytest.importorskip("polars", reason="the columnar extra is not installed")


def _batch(n: int) -> ColumnBatch:
    frame = pl.DataFrame({"id": list(range(n)), "name": [f'n "{i}"\u00e9' for i in range(n)]})
    return ColumnBatch(frame, exact=True)


def _expected(batch: ColumnBatch) -> bytes:
    lines = batch.ndjson()
    assert lines is not None
    return lines


def test_what_polars_writes_is_hashed_as_written(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    with path.open("w+b") as raw:
        writer = HashingWriter(raw)
        writer.write(b'{"head":1}\n')  # bytes written through Python before it
        first = writer.take()
        batch = _batch(5000)
        assert write_through(writer, batch.write_ndjson)
        second = writer.take()
        writer.flush()
    data = path.read_bytes()
    assert data == b'{"head":1}\n' + _expected(batch)
    assert (first.start, first.end) == (0, 11)
    assert (second.start, second.end) == (11, len(data))
    assert second.digest == hashlib.sha256(data[11:]).hexdigest()


def test_a_write_that_fails_part_way_leaves_nothing_of_its_batch(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"

    def fails_midway(file: BinaryIO) -> None:
        file.write(b'{"partial":')
        raise KeyboardInterrupt  # what polars raises when a signal arrives as it writes

    with path.open("w+b") as raw:
        writer = HashingWriter(raw)
        writer.write(b"kept\n")
        with pytest.raises(KeyboardInterrupt):
            write_through(writer, fails_midway)
        assert write_through(writer, _batch(3).write_ndjson)
        digest = writer.take()
        writer.flush()
    data = path.read_bytes()
    assert data == b"kept\n" + _expected(_batch(3))
    assert digest.digest == hashlib.sha256(data).hexdigest()


def test_a_file_that_cannot_be_read_back_is_not_written_through(tmp_path: Path) -> None:
    with (tmp_path / "out.jsonl").open("wb") as raw:  # write-only: no read-back
        writer = HashingWriter(raw)
        assert not write_through(writer, _batch(2).write_ndjson)
        assert raw.tell() == 0


def test_a_stream_that_is_no_file_gets_the_same_bytes(tmp_path: Path) -> None:
    batch = _batch(1000)
    buffer = io.BytesIO()
    JsonlEncoder(buffer).write(batch)
    path = tmp_path / "out.jsonl"
    with path.open("w+b") as raw:
        JsonlEncoder(HashingWriter(raw)).write(batch)
    assert buffer.getvalue() == path.read_bytes() == _expected(batch)
