"""CSV read in blocks: records that span blocks, or are longer than a block, come out
whole and in order, whatever the block size, as the row decoder reads them."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Callable, Iterable

import pytest

from engine.codecs.base import DecodeAt
from engine.codecs.csv import CsvCodec
from engine.columnar import ColumnBatch
from engine.records import Chunk

pytest.importorskip("polars", reason="the columnar extra is not installed")


def _text(rows: int, seed: int) -> bytes:
    rng = random.Random(seed)
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["id", "note", "n"])
    for i in range(rows):
        note = rng.choice(["plain", 'say "hi"', "two\nlines", "a,b", "x" * rng.randint(50, 400)])
        writer.writerow([i, note, rng.randint(0, 10**6)])
    return out.getvalue().encode()


class _Trickle(io.RawIOBase):
    """A stream that gives at most ``most`` bytes a read, as a pipe may."""

    def __init__(self, data: bytes, most: int) -> None:
        super().__init__()
        self._data = memoryview(data)
        self._most = most

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), len(self._data), self._most)
        buffer[:n] = self._data[:n]
        self._data = self._data[n:]
        return n


@pytest.mark.parametrize("block", [64, 300, 4096, 1 << 20])
@pytest.mark.parametrize("trickle", [None, 97])
def test_records_across_and_longer_than_a_block_come_out_whole(
    monkeypatch: pytest.MonkeyPatch, block: int, trickle: int | None
) -> None:
    monkeypatch.setattr("engine.codecs.columns.BLOCK", block)
    data = _text(300, seed=block)
    codec = CsvCodec()
    expected = [r for c in codec.decode(io.BytesIO(data), source="t") for r in c.records]
    stream = io.BytesIO(data) if trickle is None else io.BufferedReader(_Trickle(data, trickle))
    at = DecodeAt()
    chunks = list(codec.decode_columns(stream, source="t", at=at))  # type: ignore[arg-type]
    assert [r for c in chunks for r in c.records] == expected
    assert any(isinstance(c.records, ColumnBatch) for c in chunks)
    assert at.done == data.count(b"\n")  # every physical line, quoted breaks too


@pytest.mark.parametrize("block", [16, 64, 1 << 20])
def test_a_record_that_starts_with_a_bom_keeps_it_as_data(
    monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    # only the file's own BOM is not data; polars would drop one that starts a block
    monkeypatch.setattr("engine.codecs.columns.BLOCK", block)
    bom = "\ufeff"
    data = f"{bom}id,note\n{bom}1,a\n2,{bom}b\n{bom}3,c\n4,d\n".encode()
    codec = CsvCodec()
    expected = [r for c in codec.decode(io.BytesIO(data), source="t") for r in c.records]
    assert expected[0] == {"id": f"{bom}1", "note": "a"}
    chunks = list(codec.decode_columns(io.BytesIO(data), source="t", at=DecodeAt()))
    assert [r for c in chunks for r in c.records] == expected


def test_a_header_field_past_max_field_size_is_reported_as_on_the_row_path() -> None:
    codec = CsvCodec(max_field_size=5)
    data = b"abcdefgh,b\n1,2\n"
    # csv's limit is process-wide: what an earlier read left is not what decides
    before = csv.field_size_limit(131072)
    try:
        with pytest.raises(Exception) as columnar:
            list(codec.decode_columns(io.BytesIO(data), source="t", at=DecodeAt()))
        with pytest.raises(Exception) as row:
            list(codec.decode(io.BytesIO(data), source="t"))
    finally:
        csv.field_size_limit(before)
    assert "max_field_size" in str(row.value)
    assert str(columnar.value) == str(row.value)


@pytest.mark.parametrize(
    ("limit", "data"),
    [
        # the block is longer than the limit: the fields' lengths are checked
        (5, b"a,b\n1,2\n" + b"3,abcdefgh\n" + b"4,5\n" * 10),
        # the block is no longer than the limit: no field can pass it
        (64, b"a,b\n1,2\n3,abcdefgh\n"),
        (20, b"a,b\n1,2\n3,abcdefgh\n"),
    ],
)
def test_a_field_past_max_field_size_is_reported_as_on_the_row_path(
    limit: int, data: bytes
) -> None:
    codec = CsvCodec(max_field_size=limit)
    before = csv.field_size_limit(131072)
    try:
        row, columnar = (
            _outcome(lambda: codec.decode(io.BytesIO(data), source="t")),
            _outcome(lambda: codec.decode_columns(io.BytesIO(data), source="t", at=DecodeAt())),
        )
    finally:
        csv.field_size_limit(before)
    assert columnar == row
    assert ("max_field_size" in row) == (limit == 5)


def _outcome(read: Callable[[], Iterable[Chunk]]) -> str:
    """The records read, or the error that stopped the read."""
    try:
        return repr([r for c in read() for r in c.records])
    except Exception as exc:
        return str(exc)
