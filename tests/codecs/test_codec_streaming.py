"""Decoding streams: large inputs are read a little at a time and memory stays flat."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest

from engine.codecs import CodecConfig, CsvCodec, JsonCodec, JsonlCodec

MB = 1 << 20


class Generated(io.RawIOBase):
    """About ``size`` bytes of a format, made on demand; counts what is read and how."""

    def __init__(self, head: bytes, row: Callable[[int], bytes], tail: bytes, size: int) -> None:
        self._pending = bytearray(head)
        self._row = row
        self._tail = tail
        self._size = size
        self._made = len(head)
        self._index = 0
        self._done = False
        self.total = 0
        self.largest_read = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while len(self._pending) < len(buffer) and not self._done:
            if self._made >= self._size:
                self._pending += self._tail
                self._done = True
                break
            piece = self._row(self._index)
            self._index += 1
            self._made += len(piece)
            self._pending += piece
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        del self._pending[:size]
        self.total += size
        self.largest_read = max(self.largest_read, size)
        return size

    @property
    def rows(self) -> int:
        return self._index


def generated(codec: CodecConfig, size: int) -> Generated:
    if isinstance(codec, CsvCodec):
        return Generated(
            b"sku,name,qty,note\n",
            lambda i: b'SKU%07d,"Item, number %d",%d,"line one\nline two"\n' % (i, i, i % 97),
            b"",
            size,
        )
    if isinstance(codec, JsonlCodec):
        return Generated(b"", lambda i: b'{"sku": "SKU%07d", "qty": %d}\n' % (i, i % 97), b"", size)
    return Generated(
        b"[", lambda i: b'%s{"sku": "SKU%07d", "qty": %d}' % (b"," * (i > 0), i, i), b"]", size
    )


CODECS = [CsvCodec(), JsonlCodec(), JsonCodec()]


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.type)
def test_a_50_mb_input_is_read_in_small_pieces_as_batches_are_consumed(
    codec: CodecConfig,
) -> None:
    raw = generated(codec, 50 * MB)
    chunks = codec.decode(io.BufferedReader(raw, 64 * 1024), source="big", batch_size=1000)
    first = next(chunks)
    assert len(first.records) == 1000
    read_at_first_batch = raw.total
    records = len(first.records) + sum(len(c.records) + len(c.rejected) for c in chunks)
    assert read_at_first_batch < MB
    assert raw.total > 50 * MB
    assert raw.largest_read <= MB
    assert records == raw.rows


@pytest.mark.parametrize("codec", CODECS, ids=lambda c: c.type)
def test_peak_memory_stays_far_below_the_input_size(codec: CodecConfig) -> None:
    size = 4 * MB  # tracemalloc slows allocation-heavy decoding a lot; 4 MiB shows the shape
    raw = generated(codec, size)
    stream = io.BufferedReader(raw, 64 * 1024)
    tracemalloc.start()
    try:
        count = 0
        for chunk in codec.decode(stream, source="big", batch_size=100):
            count += len(chunk.records)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == raw.rows
    assert raw.total > size
    assert peak < size / 8, f"peak {peak / MB:.1f} MiB for a {size / MB:.0f} MiB input"
