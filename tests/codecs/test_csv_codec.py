"""The CSV codec: csv-spectrum, located rejections, typed columns, dialects and encoding."""

from __future__ import annotations

import io
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.codecs import CsvCodec, decode_bytes
from engine.codecs.registry import default_codecs
from engine.errors import DataError
from engine.records import Record

SPECTRUM = Path(__file__).resolve().parents[2] / ".." / "shared" / "testdata" / "csv-spectrum"
SPECTRUM_CASES = sorted(p.stem for p in (SPECTRUM / "csvs").glob("*.csv"))


def encode(codec: CsvCodec, *batches: list[Record]) -> bytes:
    stream = io.BytesIO()
    encoder = codec.encoder(stream)
    for batch in batches:
        encoder.write(batch)
    encoder.finish()
    return stream.getvalue()


@pytest.mark.skipif(not SPECTRUM.is_dir(), reason=f"csv-spectrum test data absent at {SPECTRUM}")
def test_spectrum_has_every_case() -> None:
    assert len(SPECTRUM_CASES) == 12


@pytest.mark.skipif(not SPECTRUM.is_dir(), reason=f"csv-spectrum test data absent at {SPECTRUM}")
@pytest.mark.parametrize("name", SPECTRUM_CASES or ["<absent>"])
def test_spectrum_case_parses_to_its_json(name: str) -> None:
    data = (SPECTRUM / "csvs" / f"{name}.csv").read_bytes()
    expected: Any = json.loads((SPECTRUM / "json" / f"{name}.json").read_text(encoding="utf-8"))
    if name == "location_coordinates":
        # Upstream defect (SOURCE.md): its JSON is one object, not a list, and has a different
        # phone number than the CSV; every other value, replacement characters included, holds.
        assert expected["Contact Phone Number"] == "1234567890"
        expected = [{**expected, "Contact Phone Number": "2095257564"}]
    chunk = decode_bytes(CsvCodec(), data, source=f"{name}.csv")
    assert chunk.rejected == []
    assert chunk.records == expected


def test_wrong_width_rows_are_rejected_with_their_physical_start_line() -> None:
    data = b'a,b\n1,2\n"multi\nline",x,extra\n3\n\n4,5\n'
    chunk = decode_bytes(CsvCodec(), data, source="in.csv")
    assert chunk.records == [{"a": "1", "b": "2"}, {"a": "4", "b": "5"}]
    assert [(r.location, r.record) for r in chunk.rejected] == [
        ("in.csv:3", ["multi\nline", "x", "extra"]),
        ("in.csv:5", ["3"]),
    ]
    assert chunk.rejected[0].reason == "expected 2 fields, found 3"


def test_rejected_line_counts_crlf_and_lone_cr_inside_quotes_as_one_break_each() -> None:
    # Lines: 1 header, 2 "x, 3 y, 4 z",1 (CRLF is one break, a lone CR another), 5 bad.
    data = b'a,b\r\n"x\r\ny\rz",1\r\nbad\r\n'
    chunk = decode_bytes(CsvCodec(), data, source="in.csv")
    assert chunk.records == [{"a": "x\r\ny\rz", "b": "1"}]
    assert [r.location for r in chunk.rejected] == ["in.csv:5"]


def test_rejected_lines_stay_right_across_batches() -> None:
    lines = ["n,v"] + [f"{i},{i}" if i % 7 else f"{i}" for i in range(1, 50)]
    data = "\n".join(lines).encode()
    chunks = list(CsvCodec().decode(io.BytesIO(data), source="f", batch_size=5))
    rejected = [r.location for c in chunks for r in c.rejected]
    assert rejected == [f"f:{i + 1}" for i in range(7, 50, 7)]
    assert sum(len(c.records) for c in chunks) == 49 - 7
    assert all(len(c.records) + len(c.rejected) <= 5 for c in chunks)


def test_types_convert_and_a_bad_value_rejects_the_row_naming_line_and_column() -> None:
    codec = CsvCodec(types={"qty": "int", "price": "decimal", "ok": "bool", "w": "float"})
    data = b"sku,qty,price,ok,w\nA,3,1.10,yes,0.5\nB,x,2,no,1\nC,4,2,maybe,1\nD,1_000,1,1,1\n"
    chunk = decode_bytes(codec, data, source="stock.csv")
    assert chunk.records == [
        {"sku": "A", "qty": 3, "price": Decimal("1.10"), "ok": True, "w": 0.5},
    ]
    assert [(r.location, r.reason) for r in chunk.rejected] == [
        ("stock.csv:3", "column 2 ('qty'): cannot convert 'x' to int"),
        ("stock.csv:4", "column 4 ('ok'): cannot convert 'maybe' to bool"),
        ("stock.csv:5", "column 2 ('qty'): cannot convert '1_000' to int"),
    ]


def test_empty_typed_value_is_rejected_with_a_hint_unless_listed_as_null() -> None:
    data = b"id,qty\n1,\n2,NULL\n"
    strict = decode_bytes(CsvCodec(types={"qty": "int"}), data)
    assert strict.records == []
    assert "null_values" in strict.rejected[0].reason
    lenient = decode_bytes(CsvCodec(types={"qty": "int"}, null_values=("", "NULL")), data)
    assert lenient.records == [{"id": "1", "qty": None}, {"id": "2", "qty": None}]
    assert lenient.rejected == []


def test_null_values_apply_to_untyped_columns_too() -> None:
    chunk = decode_bytes(CsvCodec(null_values=("N/A",)), b"a,b\nN/A,x\n")
    assert chunk.records == [{"a": None, "b": "x"}]


def test_types_naming_an_unknown_column_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"unknown columns \['qtty'\]") as info:
        decode_bytes(CsvCodec(types={"qtty": "int"}), b"sku,qty\nA,1\n", source="s.csv")
    assert info.value.source == "s.csv"


def test_tsv_reads_tabs_and_commas_stay_in_values() -> None:
    codec = CsvCodec(delimiter="\t")
    chunk = decode_bytes(codec, b"a\tb\n1,5\tx y\n")
    assert chunk.records == [{"a": "1,5", "b": "x y"}]
    assert default_codecs().extension_of(codec) == "tsv"
    assert default_codecs().extension_of(CsvCodec()) == "csv"


def test_utf8_bom_is_not_part_of_the_first_column_name() -> None:
    data = "\ufeffid,name\n1,Zoë\n".encode()
    assert decode_bytes(CsvCodec(), data).records == [{"id": "1", "name": "Zoë"}]


def test_other_encodings_are_decoded() -> None:
    data = "id,name\n1,Zoë\n".encode("latin-1")
    assert decode_bytes(CsvCodec(encoding="latin-1"), data).records == [{"id": "1", "name": "Zoë"}]


def test_bad_encoding_names_file_line_and_offset_after_delivering_earlier_rows() -> None:
    good = b"a,b\n" + b"".join(b"%d,x\n" % i for i in range(20_000))
    data = good + b"bad,\xff\n1,2\n"
    assert len(good) > 2 * 65536  # the bad byte is a few reads in
    chunks = CsvCodec().decode(io.BytesIO(data), source="in.csv", batch_size=100_000)
    assert 0 < len(next(chunks).records) < 20_000
    with pytest.raises(DataError) as info:
        next(chunks)
    assert (info.value.source, info.value.line) == ("in.csv", 20_002)
    assert info.value.offset == len(good) + 4
    assert str(info.value).startswith("in.csv:20002: cannot decode as utf-8")


def test_oversized_field_raises_with_line_after_delivering_earlier_rows() -> None:
    data = b'a,b\n1,2\n3,4\n5,"' + b"x" * 200_000 + b'"\n'
    codec = CsvCodec(max_field_size=100_000)
    stream = codec.decode(io.BytesIO(data), source="n.csv", batch_size=100)
    assert next(stream).records == [{"a": "1", "b": "2"}, {"a": "3", "b": "4"}]
    with pytest.raises(DataError, match=r"n\.csv:4: malformed CSV: field larger than max_field"):
        next(stream)


def test_skip_rows_skips_physical_lines_and_lines_stay_physical() -> None:
    data = b'report "v2\nexported today\nid,v\n1,2\n3\n'
    chunk = decode_bytes(CsvCodec(skip_rows=2), data, source="r.csv")
    assert chunk.records == [{"id": "1", "v": "2"}]
    assert chunk.rejected[0].location == "r.csv:5"


def test_no_header_uses_columns_or_numbered_names() -> None:
    data = b"1,2\n3,4\n"
    assert decode_bytes(CsvCodec(header=False, columns=("x", "y")), data).records == [
        {"x": "1", "y": "2"},
        {"x": "3", "y": "4"},
    ]
    assert decode_bytes(CsvCodec(header=False), data).records[0] == {
        "column_1": "1",
        "column_2": "2",
    }


def test_columns_with_header_rename_and_must_match_its_width() -> None:
    data = b"A,B\n1,2\n"
    assert decode_bytes(CsvCodec(columns=("x", "y")), data).records == [{"x": "1", "y": "2"}]
    with pytest.raises(DataError, match="header has 2"):
        decode_bytes(CsvCodec(columns=("x",)), data)


def test_repeated_header_names_are_an_error_not_a_silent_overwrite() -> None:
    with pytest.raises(DataError, match=r"repeats column names \['a'\]") as info:
        decode_bytes(CsvCodec(), b"\na,b,a\n1,2,3\n", source="d.csv")
    assert info.value.line == 2


def test_empty_input_yields_nothing() -> None:
    assert list(CsvCodec().decode(io.BytesIO(b""), source="e")) == []
    assert decode_bytes(CsvCodec(), b"a,b\n").records == []


@pytest.mark.parametrize(
    "options",
    [
        {"delimiter": ";;"},
        {"delimiter": "\n"},
        {"quotechar": ""},
        {"delimiter": '"'},
        {"encoding": "no-such-codec"},
        {"quoting": "sometimes"},
        {"types": {"a": "date"}},
        {"skip_rows": -1},
        {"columns": ["a", "a"]},
        {"bogus": 1},
    ],
)
def test_invalid_options_are_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CsvCodec.model_validate(options)


def test_codec_is_hashable_and_equal_by_options() -> None:
    a = CsvCodec(types={"q": "int", "p": "decimal"})
    b = CsvCodec.model_validate({"types": {"p": "decimal", "q": "int"}})
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b, CsvCodec(), CsvCodec(delimiter=";")}) == 3


def test_encoder_writes_header_from_first_record_and_none_as_empty() -> None:
    data = encode(CsvCodec(), [{"a": 1, "b": None}], [{"a": "x,y", "b": 'q"q'}])
    assert data == b'a,b\r\n1,\r\n"x,y","q""q"\r\n'


def test_encoder_fills_missing_keys_but_refuses_unknown_ones() -> None:
    data = encode(CsvCodec(), [{"a": 1, "b": 2}, {"b": 3}])
    assert data == b"a,b\r\n1,2\r\n,3\r\n"
    with pytest.raises(DataError, match=r"not in the CSV header.*\['c'\]") as info:
        encode(CsvCodec(), [{"a": 1}], [{"a": 2}, {"a": 3, "c": 4}])
    assert info.value.record == 3


def test_encoder_explicit_columns_select_and_order() -> None:
    data = encode(CsvCodec(columns=("b", "a")), [{"a": 1, "b": 2, "c": 3}, {"a": 4}])
    assert data == b"b,a\r\n2,1\r\n,4\r\n"


def test_encoder_single_column_and_no_header() -> None:
    assert encode(CsvCodec(header=False), [{"a": "xyz"}, {"a": ""}]) == b'xyz\r\n""\r\n'


@pytest.mark.parametrize(
    ("quoting", "expected"),
    [
        ("minimal", b"s,n\r\nx,1\r\n"),
        ("all", b'"s","n"\r\n"x","1"\r\n'),
        ("nonnumeric", b'"s","n"\r\n"x",1\r\n'),
        ("none", b"s,n\r\nx,1\r\n"),
    ],
)
def test_encoder_quoting(quoting: str, expected: bytes) -> None:
    assert encode(CsvCodec.model_validate({"quoting": quoting}), [{"s": "x", "n": 1}]) == expected


def test_quoting_none_without_escapechar_names_the_record_it_cannot_write() -> None:
    codec = CsvCodec(quoting="none")
    with pytest.raises(DataError, match="record 2"):
        encode(codec, [{"a": "ok"}, {"a": "a,b"}])
    escaped = CsvCodec(quoting="none", escapechar="\\")
    data = encode(escaped, [{"a": "a,b"}])
    assert data == b"a\r\na\\,b\r\n"
    assert decode_bytes(escaped, data).records == [{"a": "a,b"}]


def test_encoder_encodes_with_the_configured_encoding() -> None:
    codec = CsvCodec(encoding="latin-1")
    assert encode(codec, [{"n": "Zoë"}]) == "n\r\nZoë\r\n".encode("latin-1")
    with pytest.raises(DataError, match="cannot encode as latin-1"):
        encode(codec, [{"n": "日本"}])


# U+FEFF is left out: a value starting the file with it is indistinguishable from a BOM.
_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00\ufeff"))


@st.composite
def _tables(draw: st.DrawFn) -> tuple[CsvCodec, list[Record]]:
    delimiter = draw(st.sampled_from([",", ";", "\t", "|"]))
    names = draw(st.lists(_text, min_size=1, max_size=5, unique=True))
    rows = draw(st.lists(st.fixed_dictionaries({n: _text for n in names}), max_size=8))
    return CsvCodec(delimiter=delimiter), rows


@settings(max_examples=300, deadline=None)
@given(_tables())
def test_round_trip_of_string_tables(table: tuple[CsvCodec, list[Record]]) -> None:
    codec, rows = table
    data = encode(codec, rows)
    chunk = decode_bytes(codec, data)
    assert chunk.rejected == []
    assert chunk.records == rows
