"""Digests of the bytes read and written, per stretch between takes."""

from __future__ import annotations

import hashlib
import io
import itertools
import os

from engine.records.digest import Digester


def test_reader_digests_each_stretch_and_covers_the_stream() -> None:
    data = os.urandom(1_000_003)
    reader = Digester().reader(io.BytesIO(data))
    taken = []
    while reader.read(150_000):
        taken.append(reader.take())
    taken.append(reader.take())
    assert taken[0].start == 0 and taken[-1].end == len(data)
    for before, after in itertools.pairwise(taken):
        assert after.start == before.end
    for part in taken:
        assert part.digest == hashlib.sha256(data[part.start : part.end]).hexdigest()
    assert any(part.end > part.start for part in taken[1:])


def test_writer_digests_what_reaches_the_stream() -> None:
    sink = io.BytesIO()
    writer = Digester().writer(sink)
    writer.write(b"first batch\n")
    first = writer.take(records_jsonl=True)
    writer.write(bytearray(b"second "))
    writer.write(memoryview(b"batch\n"))
    second = writer.take()
    writer.flush()
    assert sink.getvalue() == b"first batch\nsecond batch\n"
    assert (first.start, first.end, first.records_jsonl) == (0, 12, True)
    assert (second.start, second.end, second.records_jsonl) == (12, 25, False)
    assert first.digest == hashlib.sha256(b"first batch\n").hexdigest()
    assert second.digest == hashlib.sha256(b"second batch\n").hexdigest()


class _ReadOnly:
    """A stream with ``read`` alone (no ``readinto``), as some connectors hand over."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._inner.read(min(n, 777) if n > 0 else n)

    def close(self) -> None:
        self._inner.close()


def test_reader_digests_a_stream_without_readinto() -> None:
    data = os.urandom(100_000)
    reader = Digester().reader(_ReadOnly(data))  # type: ignore[arg-type]
    assert reader.read() == data
    part = reader.take()
    assert (part.start, part.end) == (0, len(data))
    assert part.digest == hashlib.sha256(data).hexdigest()
