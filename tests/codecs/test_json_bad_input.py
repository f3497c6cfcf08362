"""JSON and JSON Lines input RFC 8259 refuses, or that would exhaust the parser: located."""

from __future__ import annotations

import io
import json
import math

import orjson
import pytest

from engine.codecs import JsonCodec, JsonlCodec, decode_bytes
from engine.codecs.base import CodecError
from engine.records import Record


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1E+400"])
def test_json_refuses_non_finite_numbers_at_their_byte_offset(literal: str) -> None:
    data = f'[{{"a": 1}},\n {{"b": "NaN 1e400", "c": {literal}}}]'.encode()
    with pytest.raises(CodecError) as info:
        decode_bytes(JsonCodec(), data, source="n.json")
    error = info.value
    assert error.code == "json.non-finite"
    assert error.offset == data.index(literal.encode(), data.index(b'"c"'))
    assert (error.source, error.line) == ("n.json", 2)
    # Python's json module takes the literal the codec refuses: the refusal is the codec's.
    assert json.loads(data)[1]["c"] in (math.inf, -math.inf) or math.isnan(json.loads(data)[1]["c"])


def test_json_reads_non_finite_numbers_as_null_when_told() -> None:
    data = b'[{"a": NaN, "b": [Infinity, -1e400, 1.5]}]'
    chunk = decode_bytes(JsonCodec(non_finite="null"), data)
    assert chunk.records == [{"a": None, "b": [None, None, 1.5]}]


def test_deep_json_nesting_is_a_located_error() -> None:
    data = b'{"a": 1}\n' + b"[" * 100_000
    with pytest.raises(CodecError) as info:
        decode_bytes(JsonCodec(), data, source="deep.json")
    assert (info.value.code, info.value.line) == ("json.depth", 2)
    data = b'[{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]"
    with pytest.raises(CodecError, match=r"deep\.json:1:2: malformed JSON: value nested"):
        decode_bytes(JsonCodec(), data, source="deep.json")


def test_a_5000_digit_integer_is_a_located_error() -> None:
    data = b'[{"a": 1}, {"n": ' + b"9" * 5000 + b"}]"
    with pytest.raises(CodecError) as info:
        decode_bytes(JsonCodec(), data, source="big.json")
    assert (info.value.code, info.value.offset) == ("json.number-too-long", 11)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e400"])
def test_jsonl_rejects_a_non_finite_line_and_goes_on(literal: bytes) -> None:
    data = b'{"a": 1}\n{"a": ' + literal + b'}\n{"a": 3}\n'
    chunk = decode_bytes(JsonlCodec(), data, source="n.jsonl")
    assert chunk.records == [{"a": 1}, {"a": 3}]
    [bad] = chunk.rejected
    assert bad.location == "n.jsonl:2"
    assert "RFC 8259" in bad.reason
    nulled = decode_bytes(JsonlCodec(non_finite="null"), data)
    assert nulled.records == [{"a": 1}, {"a": None}, {"a": 3}]


def test_jsonl_deep_nesting_and_huge_integers_are_rejected_lines() -> None:
    data = b"[" * 100_000 + b'\n{"n": ' + b"9" * 5000 + b'}\n{"ok": 1}\n'
    chunk = decode_bytes(JsonlCodec(), data, source="x.jsonl")
    assert chunk.records == [{"ok": 1}]
    assert [r.location for r in chunk.rejected] == ["x.jsonl:1", "x.jsonl:2"]


def encode(codec: JsonCodec | JsonlCodec, records: list[Record]) -> bytes:
    out = io.BytesIO()
    encoder = codec.encoder(out)
    encoder.write(records)
    encoder.finish()
    return out.getvalue()


@pytest.mark.parametrize("codec", [JsonCodec(), JsonCodec(pretty=True), JsonlCodec()])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_encoders_refuse_non_finite_floats_instead_of_writing_null(
    codec: JsonCodec | JsonlCodec, bad: float
) -> None:
    assert orjson.dumps(bad) == b"null"  # what would be written without the check
    records: list[Record] = [{"a": None}, {"a": 1, "b": {"c": [1.0, bad]}}]
    with pytest.raises(CodecError) as info:
        encode(codec, records)
    assert (info.value.record, info.value.code) == (2, "json.non-finite")
    assert "b.c[1]" in str(info.value)
    assert str(info.value).startswith("record 2: cannot encode as JSON")


@pytest.mark.parametrize("codec", [JsonCodec(), JsonlCodec()])
@pytest.mark.parametrize("bad", [b"bytes", {1, 2j}, {1: "non-str key"}])
def test_encoders_name_the_record_json_cannot_hold(
    codec: JsonCodec | JsonlCodec, bad: object
) -> None:
    with pytest.raises(CodecError) as info:
        encode(codec, [{"a": 1}, {"a": 2}, {"a": bad}])
    assert (info.value.record, info.value.code) == (3, "json.unencodable")


def test_jsonl_keeps_integers_past_64_bits_exact() -> None:
    big = 2**64
    data = f'{{"a": {big}, "id": "12345678901234567890123"}}\n{{"b": -{big}0}}\n'.encode()
    assert orjson.loads(data.splitlines()[0])["a"] == float(big)  # what orjson alone reads
    chunk = decode_bytes(JsonlCodec(), data, source="big.jsonl")
    assert chunk.records == [{"a": big, "id": "12345678901234567890123"}, {"b": -big * 10}]
    assert chunk.records == [json.loads(line) for line in data.splitlines()]


@pytest.mark.parametrize("codec", [JsonCodec(), JsonCodec(pretty=True), JsonlCodec()])
def test_integers_past_64_bits_are_written_exactly(codec: JsonCodec | JsonlCodec) -> None:
    records: list[Record] = [{"a": 2**70, "b": [-(2**65), {"c": 2**64}], "d": 1.5}]
    data = encode(codec, records)
    loaded = json.loads(data) if isinstance(codec, JsonCodec) else json.loads(data.splitlines()[0])
    assert loaded == (records if isinstance(codec, JsonCodec) else records[0])


def test_a_record_too_deep_for_json_is_named() -> None:
    deep: Record = {"a": 1}
    for _ in range(300):
        deep = {"a": deep}
    with pytest.raises(CodecError) as info:
        encode(JsonlCodec(), [{"ok": 1}, deep])
    assert info.value.record == 2
