"""The JSON Lines codec: bad lines rejected in place, blank lines skipped, fast encoder."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.codecs import JsonlCodec, decode_bytes
from engine.errors import DataError
from engine.records import Record


def encode(*batches: list[Record]) -> bytes:
    stream = io.BytesIO()
    encoder = JsonlCodec().encoder(stream)
    for batch in batches:
        encoder.write(batch)
    encoder.finish()
    return stream.getvalue()


def test_one_object_per_line_with_blank_lines_and_crlf() -> None:
    data = b'{"a": 1}\r\n\r\n  \n{"b": [2]}\n{"c": "\xc3\xa9"}'
    chunk = decode_bytes(JsonlCodec(), data)
    assert chunk.records == [{"a": 1}, {"b": [2]}, {"c": "é"}]
    assert chunk.rejected == []


def test_malformed_and_non_object_lines_are_rejected_with_file_and_line() -> None:
    data = b'{"a": 1}\n{"a": \n\n[1, 2]\n"s"\n{"b": 2}\n\xff\n'
    chunk = decode_bytes(JsonlCodec(), data, source="ev.jsonl")
    assert chunk.records == [{"a": 1}, {"b": 2}]
    assert [(r.location, r.record) for r in chunk.rejected] == [
        ("ev.jsonl:2", '{"a": '),
        ("ev.jsonl:4", [1, 2]),
        ("ev.jsonl:5", "s"),
        ("ev.jsonl:7", "\ufffd"),
    ]
    assert chunk.rejected[0].reason.startswith("invalid JSON at column")
    assert chunk.rejected[1].reason == "an array, not an object"


def test_line_numbers_continue_across_batches() -> None:
    lines = [b'{"i": %d}' % i if i % 4 else b"oops" for i in range(1, 30)]
    chunks = list(JsonlCodec().decode(io.BytesIO(b"\n".join(lines)), source="f", batch_size=3))
    assert [r.location for c in chunks for r in c.rejected] == [f"f:{i}" for i in range(4, 30, 4)]
    assert [r["i"] for c in chunks for r in c.records] == [i for i in range(1, 30) if i % 4]
    assert all(len(c.records) + len(c.rejected) <= 3 for c in chunks)


def test_bom_on_the_first_line_is_skipped() -> None:
    assert decode_bytes(JsonlCodec(), b'\xef\xbb\xbf{"a": 1}\n').records == [{"a": 1}]


def test_empty_input_yields_nothing() -> None:
    assert list(JsonlCodec().decode(io.BytesIO(b""), source="e")) == []
    assert list(JsonlCodec().decode(io.BytesIO(b"\n\n"), source="e")) == []


def test_encoder_writes_compact_lines_across_batches() -> None:
    data = encode([{"a": 1, "b": None}], [], [{"c": "é", "d": Decimal("1.50")}])
    assert data == '{"a":1,"b":null}\n{"c":"é","d":1.50}\n'.encode()


def test_encoder_names_the_record_it_cannot_encode() -> None:
    with pytest.raises(DataError, match="record 4"):
        encode([{"a": 1}, {"a": 2}], [{"a": 3}, {"a": b"raw bytes"}])


_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.text(), _values, max_size=4), max_size=8))
def test_round_trip(records: list[Record]) -> None:
    data = encode(records[:3], records[3:])
    assert data.count(b"\n") == len(records)
    chunk = decode_bytes(JsonlCodec(), data)
    assert chunk.rejected == []
    assert chunk.records == records
