"""CSV input that is broken or extreme: located errors and rejections, never silent changes."""

from __future__ import annotations

import csv
import io
import json

import pytest

from engine.codecs import CsvCodec, decode_bytes
from engine.codecs.base import CodecError
from engine.errors import DataError


def test_unterminated_quote_names_the_line_where_the_quote_opened() -> None:
    data = b'id,name\n1,"Anna\n2,Bob\n3,Cleo\n'
    with pytest.raises(CodecError) as info:
        decode_bytes(CsvCodec(), data, source="people.csv")
    assert (info.value.source, info.value.line) == ("people.csv", 2)
    assert info.value.code == "csv.unterminated-quote"
    assert str(info.value).startswith("people.csv:2: unterminated quoted field")


def test_unterminated_quote_after_a_full_batch_delivers_earlier_rows_first() -> None:
    data = b"id,name\n" + b"".join(b"%d,x\n" % i for i in range(5)) + b'9,"open\nmore\n'
    chunks = CsvCodec().decode(io.BytesIO(data), source="p.csv", batch_size=2)
    delivered = []
    with pytest.raises(CodecError) as info:
        for chunk in chunks:
            delivered.extend(chunk.records)
    assert len(delivered) == 5
    assert info.value.line == 7


def test_unterminated_quote_in_the_header_is_located() -> None:
    with pytest.raises(CodecError, match=r"h\.csv:3: unterminated"):
        decode_bytes(CsvCodec(skip_rows=1), b'title\n\n"id,name\n1,2\n', source="h.csv")


def test_stray_quote_rejects_the_row_with_its_line_and_goes_on() -> None:
    data = b'id,name\n1,Anna\n2,"x"y\n3,Cleo\n'
    chunk = decode_bytes(CsvCodec(), data, source="s.csv")
    assert chunk.records == [{"id": "1", "name": "Anna"}, {"id": "3", "name": "Cleo"}]
    [bad] = chunk.rejected
    assert bad.location == "s.csv:3"
    assert bad.record == '2,"x"y'
    assert "stray" in bad.reason


def test_quotes_inside_an_unquoted_field_stay_literal_like_pythons_csv() -> None:
    data = 'id,name\n2,x"y"\n'
    chunk = decode_bytes(CsvCodec(), data.encode(), source="q.csv")
    expected = list(csv.DictReader(io.StringIO(data)))
    assert chunk.records == expected == [{"id": "2", "name": 'x"y"'}]


def test_a_one_mebibyte_field_reads_by_default() -> None:
    big = "x" * (1 << 20)
    data = f'id,blob\n1,"{big}"\n2,{big}\n'.encode()
    chunk = decode_bytes(CsvCodec(), data, source="big.csv")
    assert [len(r["blob"]) for r in chunk.records] == [1 << 20, 1 << 20]


def test_max_field_size_is_an_option() -> None:
    data = b"id,blob\n1,abc\n2,abcdef\n"
    with pytest.raises(CodecError) as info:
        decode_bytes(CsvCodec(max_field_size=5), data, source="m.csv")
    assert (info.value.line, info.value.code) == (3, "csv.field-too-large")
    assert decode_bytes(CsvCodec(max_field_size=6), data).rejected == []


def test_a_100k_column_header_decodes() -> None:
    names = [f"c{i}" for i in range(100_000)]
    data = (",".join(names) + "\n" + ",".join("1" * 100_000) + "\n").encode()
    chunk = decode_bytes(CsvCodec(), data, source="wide.csv")
    assert len(chunk.records[0]) == 100_000


def test_a_100k_column_header_with_a_repeat_names_it() -> None:
    names = [f"c{i}" for i in range(100_000)] + ["c7"]
    with pytest.raises(DataError, match=r"wide\.csv:1: header repeats column names \['c7'\]"):
        decode_bytes(CsvCodec(), ",".join(names).encode() + b"\n", source="wide.csv")


def encode(codec: CsvCodec, records: list[dict[str, object]]) -> bytes:
    out = io.BytesIO()
    encoder = codec.encoder(out)
    encoder.write(records)
    encoder.finish()
    return out.getvalue()


def test_nested_values_are_written_as_json_text_that_round_trips() -> None:
    customer = {"name": "Ada", "tags": ["a", "b"], "n": 1.5, "ok": True, "none": None}
    records = [{"id": 1, "customer": customer, "lines": [1, {"x": 'é,"'}]}]
    data = encode(CsvCodec(), records)
    assert b"{'name'" not in data
    [row] = list(csv.DictReader(io.StringIO(data.decode())))
    assert json.loads(row["customer"]) == customer
    assert json.loads(row["lines"]) == [1, {"x": 'é,"'}]
    assert row["id"] == "1"


def test_a_nested_value_json_cannot_hold_names_the_record() -> None:
    with pytest.raises(CodecError) as info:
        encode(CsvCodec(), [{"a": [1]}, {"a": [b"raw"]}])
    assert (info.value.record, info.value.code) == (2, "csv.unencodable")
    assert str(info.value).startswith("record 2: ")


def test_an_unencodable_character_names_the_record() -> None:
    with pytest.raises(CodecError, match=r"^record 3: cannot encode as latin-1: '日'"):
        encode(CsvCodec(encoding="latin-1"), [{"n": "a"}, {"n": "b"}, {"n": "日本"}])
