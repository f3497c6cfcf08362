"""The JSON codec: streamed arrays and documents, located errors, and the array encoder."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.codecs import JsonCodec, decode_bytes
from engine.errors import DataError, FatalError
from engine.records import Record


class Trickle(io.RawIOBase):
    """A stream that hands out at most ``step`` bytes per read, to cut values anywhere."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._step = step

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), self._step, len(self._data) - self._pos)
        buffer[:size] = self._data[self._pos : self._pos + size]
        self._pos += size
        return size


def encode(codec: JsonCodec, *batches: list[Record]) -> bytes:
    stream = io.BytesIO()
    encoder = codec.encoder(stream)
    for batch in batches:
        encoder.write(batch)
    encoder.finish()
    return stream.getvalue()


def records_of(codec: JsonCodec, stream: Any) -> list[Record]:
    return [r for chunk in codec.decode(stream, source="t") for r in chunk.records]


def test_array_of_objects() -> None:
    data = b' [ {"a": 1}, {"b": [1, {"c": null}]} ,{"d": "\\u00e9"}]\n'
    assert decode_bytes(JsonCodec(), data).records == [
        {"a": 1},
        {"b": [1, {"c": None}]},
        {"d": "é"},
    ]


def test_single_object_and_concatenated_documents() -> None:
    assert decode_bytes(JsonCodec(), b'{"a": 1}').records == [{"a": 1}]
    data = b'{"a": 1}{"b": 2}\n{"c": 3}\n[{"d": 4}]'
    assert decode_bytes(JsonCodec(), data).records == [{"a": 1}, {"b": 2}, {"c": 3}, {"d": 4}]


def test_empty_input_and_empty_array() -> None:
    assert decode_bytes(JsonCodec(), b"").records == []
    assert decode_bytes(JsonCodec(), b"  \n").records == []
    assert decode_bytes(JsonCodec(), b"[]").records == []


def test_non_objects_are_rejected_with_their_index_and_line() -> None:
    data = b'[{"a": 1},\n 2,\n "x", {"b": 2}, [3]]\n7'
    chunk = decode_bytes(JsonCodec(), data, source="in.json")
    assert chunk.records == [{"a": 1}, {"b": 2}]
    assert [(r.record, r.reason, r.location) for r in chunk.rejected] == [
        (2, "array element [1] is a number, not an object", "in.json:2"),
        ("x", "array element [2] is a string, not an object", "in.json:3"),
        ([3], "array element [4] is an array, not an object", "in.json:3"),
        (7, "document 2 is a number, not an object", "in.json:4"),
    ]


@pytest.mark.parametrize(
    ("data", "line", "column", "offset"),
    [
        (b'[{"a": 1},\n {"b": x}]', 2, 8, 18),
        (b'[{"a": 1},]', 1, 11, 10),  # at the ']' after the trailing comma
        (b'[{"a": 1} {"b": 2}]', 1, 11, 10),
        (b'[{"a": 1}', 1, 10, 9),
        (b'{"a": 1} }', 1, 10, 9),
        # Multi-byte characters before the error: offset counts bytes, column characters.
        ('[{"ü": "日本"},\n{"é": 1,}]'.encode(), 2, 9, len('[{"ü": "日本"},\n{"é": 1,'.encode())),
    ],
)
def test_malformed_json_names_line_column_and_byte_offset(
    data: bytes, line: int, column: int, offset: int
) -> None:
    with pytest.raises(DataError) as info:
        decode_bytes(JsonCodec(), data, source="bad.json")
    error = info.value
    assert (error.source, error.line, error.column, error.offset) == (
        "bad.json",
        line,
        column,
        offset,
    )
    assert str(error).startswith(f"bad.json:{line}:{column}: malformed JSON")
    assert f"byte offset {offset}" in str(error)


def test_error_far_into_a_large_file_has_absolute_position_and_earlier_records_delivered() -> None:
    body = b",\n".join(b'{"n": %d, "s": "\xc3\xa9t\xc3\xa9"}' % i for i in range(20_000))
    data = b"[" + body + b",\n{bad}]"
    chunks = JsonCodec().decode(io.BytesIO(data), source="big.json", batch_size=1000)
    delivered = 0
    with pytest.raises(DataError) as info:
        for chunk in chunks:
            delivered += len(chunk.records)
    assert delivered == 20_000
    assert info.value.line == 20_001
    assert info.value.column == 2
    assert info.value.offset == len(data) - len(b"bad}]")


def test_invalid_utf8_is_a_data_error_with_offset() -> None:
    data = b'[{"a": "ok"},\n{"b": "\xff"}]'
    with pytest.raises(DataError, match="invalid UTF-8") as info:
        decode_bytes(JsonCodec(), data, source="u.json")
    assert (info.value.line, info.value.offset) == (2, data.index(b"\xff"))


def test_bom_is_skipped_and_offsets_count_it() -> None:
    data = b'\xef\xbb\xbf[{"a": 1}, nope]'
    assert decode_bytes(JsonCodec(), b'\xef\xbb\xbf[{"a": 1}]').records == [{"a": 1}]
    with pytest.raises(DataError) as info:
        decode_bytes(JsonCodec(), data)
    assert info.value.offset == data.index(b"nope")
    with pytest.raises(DataError) as info:
        records_of(JsonCodec(), Trickle(data, 1))
    assert info.value.offset == data.index(b"nope")
    assert records_of(JsonCodec(), Trickle(b'\xef\xbb\xbf{"a": 1}', 1)) == [{"a": 1}]


@pytest.mark.parametrize("step", [1, 2, 3, 7, 64])
def test_values_cut_by_any_read_boundary_decode_whole(step: int) -> None:
    records = [
        {"n": 12345678901234, "f": -1.5e-7, "t": True, "z": None, "s": 'a\\"b\u00e9\U0001f600'},
        {"nested": {"list": [1, 2.5, "x", False]}, "big": "y" * 300},
    ]
    data = json.dumps(records, indent=1, ensure_ascii=False).encode()
    assert records_of(JsonCodec(), Trickle(data, step)) == records
    docs = b"".join(json.dumps(r).encode() for r in records)
    assert records_of(JsonCodec(), Trickle(docs, step)) == records


def test_number_at_a_read_boundary_is_not_truncated() -> None:
    # "12345" split as "12" | "345" must not decode as 12.
    chunk = decode_bytes(JsonCodec(), b"[{},12345]")
    assert [r.record for r in chunk.rejected] == [12345]
    got = list(JsonCodec().decode(Trickle(b"[12345]", 2), source="t"))
    assert [r.record for c in got for r in c.rejected] == [12345]


def test_batches_hold_at_most_batch_size_items() -> None:
    data = json.dumps([{"i": i} if i % 3 else i for i in range(100)]).encode()
    chunks = list(JsonCodec().decode(io.BytesIO(data), source="t", batch_size=10))
    assert all(len(c.records) + len(c.rejected) <= 10 for c in chunks)
    assert [r["i"] for c in chunks for r in c.records] == [i for i in range(100) if i % 3]


def test_encoder_compact_pretty_and_empty() -> None:
    batches = ([{"a": 1}], [{"b": [1, {"c": None}]}, {"d": "é"}])
    compact = encode(JsonCodec(), *batches)
    assert compact == '[{"a":1},{"b":[1,{"c":null}]},{"d":"é"}]\n'.encode()
    pretty = encode(JsonCodec(pretty=True), *batches)
    expected = json.dumps([r for b in batches for r in b], indent=2, ensure_ascii=False)
    assert pretty.decode() == expected + "\n"
    assert encode(JsonCodec()) == b"[]\n"
    assert encode(JsonCodec(pretty=True), [], []) == b"[]\n"


def test_encoder_writes_decimals_exactly_and_names_unencodable_records() -> None:
    assert encode(JsonCodec(), [{"p": Decimal("10.10")}]) == b'[{"p":10.10}]\n'
    with pytest.raises(DataError, match="cannot encode as JSON") as info:
        encode(JsonCodec(), [{"ok": 1}], [{"ok": 2}, {"bad": object()}])
    assert info.value.record == 3


def test_write_after_finish_is_refused() -> None:
    encoder = JsonCodec().encoder(io.BytesIO())
    encoder.finish()
    with pytest.raises(FatalError, match="after finish"):
        encoder.write([{"a": 1}])


def test_unknown_option_is_refused() -> None:
    with pytest.raises(ValidationError):
        JsonCodec.model_validate({"type": "json", "indent": 2})


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
_records = st.lists(st.dictionaries(st.text(), _json_values, max_size=5), max_size=6)


@settings(max_examples=200, deadline=None)
@given(_records, st.booleans(), st.integers(min_value=1, max_value=40))
def test_round_trip(records: list[Record], pretty: bool, step: int) -> None:
    codec = JsonCodec(pretty=pretty)
    data = encode(codec, records[:2], records[2:])
    assert records_of(codec, Trickle(data, step)) == records
