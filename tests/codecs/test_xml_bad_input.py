"""XML input and records the codec cannot take: located errors, and text kept as written."""

from __future__ import annotations

import io

import pytest
import xmltodict

from engine.codecs import decode_bytes
from engine.codecs.base import CodecError
from engine.codecs.xml import XmlCodec
from engine.records import Record


def encode(codec: XmlCodec, records: list[Record]) -> bytes:
    out = io.BytesIO()
    encoder = codec.encoder(out)
    encoder.write(records)
    encoder.finish()
    return out.getvalue()


@pytest.mark.parametrize("encoding", ["klingon", "utf-32", "shift_jis"])
def test_an_encoding_expat_cannot_read_is_a_located_error(encoding: str) -> None:
    data = f'<?xml version="1.0" encoding="{encoding}"?>\n<r><a>1</a></r>'.encode()
    with pytest.raises(CodecError) as info:
        decode_bytes(XmlCodec(), data, source="e.xml")
    assert (info.value.source, info.value.line, info.value.code) == ("e.xml", 1, "xml.encoding")
    assert encoding in str(info.value)


def test_deep_nesting_stops_at_max_depth_with_the_line() -> None:
    data = b"<r>\n<x>ok</x>\n" + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</r>"
    chunks = XmlCodec().decode(io.BytesIO(data), source="d.xml", batch_size=1)
    assert next(chunks).records == [{"#text": "ok"}]
    with pytest.raises(CodecError) as info:
        next(chunks)
    assert (info.value.line, info.value.code) == (3, "xml.depth")
    assert "257 deep" in str(info.value)


def test_max_depth_is_an_option() -> None:
    data = b"<r><a><b><c>1</c></b></a></r>"
    assert decode_bytes(XmlCodec(max_depth=4), data).records == [{"b": {"c": "1"}}]
    with pytest.raises(CodecError, match="max_depth"):
        decode_bytes(XmlCodec(max_depth=3), data)


def test_a_record_too_deep_to_write_names_the_record() -> None:
    deep: Record = {"leaf": "x"}
    for _ in range(5000):
        deep = {"a": deep}
    with pytest.raises(CodecError) as info:
        encode(XmlCodec(), [{"ok": "1"}, deep])
    assert (info.value.record, info.value.code) == (2, "xml.depth")


def test_a_key_xml_cannot_name_is_located() -> None:
    with pytest.raises(CodecError, match=r"^record 1: record cannot be written as XML"):
        encode(XmlCodec(), [{"not a name": "x"}])


def test_pretty_keeps_multi_line_text_as_written() -> None:
    text = "first line\nsecond line\n  indented third"
    records: list[Record] = [{"note": text, "items": {"item": ["a", "b\nc"]}}, {"note": "x"}]
    for pretty in (False, True):
        data = encode(XmlCodec(pretty=pretty), records)
        assert text.encode() in data
        # xmltodict, reading the whole document, sees the same values
        parsed = xmltodict.parse(data)["records"]["record"]
        assert parsed[0]["note"] == text
        assert parsed[0]["items"]["item"] == ["a", "b\nc"]
        assert decode_bytes(XmlCodec(records="records/record"), data).records == records


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"<feed>\n<order><id>1</id></order></feed>", "it has <feed> at line 1"),
        (b"<orders>\n<ordr><id>1</id></ordr>\n</orders>", "it has <orders/ordr> at line 2"),
    ],
)
def test_a_records_path_that_matches_nothing_is_reported(data: bytes, found: str) -> None:
    codec = XmlCodec(records="orders/order")
    with pytest.raises(CodecError) as info:
        decode_bytes(codec, data, source="o.xml")
    assert info.value.code == "xml.no-records"
    assert "'orders/order' matches no element" in str(info.value)
    assert found in str(info.value)


def test_an_empty_container_is_zero_records_not_an_error() -> None:
    codec = XmlCodec(records="orders/order")
    assert decode_bytes(codec, b"<orders>\n</orders>").records == []
    mixed = b"<orders><meta/><order><id>1</id></order></orders>"
    assert decode_bytes(codec, mixed).records == [{"id": "1"}]
