"""The parquet codec: round trips, what polars and pyarrow read of ours and we of theirs,
located errors for files that are cut short or damaged, and for records a column cannot hold."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from engine.codecs import codec_for_path, decode_bytes
from engine.codecs.base import CodecError
from engine.codecs.parquet import ParquetCodec
from engine.records import Batch
from engine.records.digest import Digester

UTC = dt.UTC

RECORDS: Batch = [
    {
        "id": 1,
        "price": 741.67,
        "qty": 912,
        "name": "Ünïcode ✓",
        "ok": True,
        "amount": Decimal("12.50"),
        "tags": ["a", "b"],
        "meta": {"k": [1, {"deep": None}], "big": 2**70},
        "mixed": "text",
        "when": dt.datetime(2026, 3, 1, 12, 30, tzinfo=UTC),
        "day": dt.date(2026, 3, 1),
        "blob": b"\x00\xff",
        "empty": None,
    },
    {
        "id": 2,
        "price": 3,  # an int among floats: the column is float64
        "qty": None,
        "name": "",
        "ok": False,
        "amount": Decimal("-0.05"),
        "tags": [],
        "meta": {},
        "mixed": 7,  # a number among strings: the column is JSON, and keeps each type
        "when": None,
        "day": None,
        "blob": None,
        "empty": None,
    },
    {"id": 3, "name": "missing most fields"},
]


def write(records_by_batch: list[Batch], codec: ParquetCodec | None = None) -> bytes:
    buffer = io.BytesIO()
    encoder = (codec or ParquetCodec()).encoder(buffer)
    for batch in records_by_batch:
        encoder.write(batch)
    encoder.finish()
    return buffer.getvalue()


def expected(record: dict[str, Any]) -> dict[str, Any]:
    """A record as it reads back: every column present, ints of a float column as floats."""
    full = {key: record.get(key) for key in RECORDS[0]}
    if full["price"] is not None:
        full["price"] = float(full["price"])
    return full


def test_round_trip_keeps_values_and_types() -> None:
    data = write([RECORDS[:2], RECORDS[2:]])
    assert pq.ParquetFile(io.BytesIO(data)).num_row_groups == 2  # one per batch written
    back = decode_bytes(ParquetCodec(), data, source="t.parquet").records
    assert back == [expected(r) for r in RECORDS]
    assert type(back[1]["mixed"]) is int and type(back[0]["mixed"]) is str
    assert back[0]["meta"]["big"] == 2**70  # past 64 bits, exact
    assert back[0]["amount"] == Decimal("12.50") and back[1]["amount"] == Decimal("-0.05")


def test_row_group_size_and_reading_in_batches() -> None:
    records = [{"n": i, "s": str(i)} for i in range(2_500)]
    data = write([records[:999], records[999:]], ParquetCodec(row_group_size=1_000))
    meta = pq.ParquetFile(io.BytesIO(data)).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1000, 1000, 500]
    chunks = list(ParquetCodec().decode(io.BytesIO(data), source="t", batch_size=300))
    assert max(len(c.records) for c in chunks) == 300
    assert [r for c in chunks for r in c.records] == records
    columns = ParquetCodec(columns=["s"]).decode(io.BytesIO(data), source="t")
    assert next(columns).records[0] == {"s": "0"}


def test_declared_types_and_an_empty_output() -> None:
    codec = ParquetCodec(types={"price": "decimal(12,2)", "later": "int64", "doc": "json"})
    data = write([[{"price": Decimal("1.5"), "doc": "x"}], [{"later": 5, "doc": [1]}]], codec)
    schema = pq.read_schema(io.BytesIO(data))
    assert str(schema.field("price").type) == "decimal128(12, 2)"
    assert decode_bytes(codec, data).records == [
        {"price": Decimal("1.50"), "doc": "x", "later": None},
        {"price": None, "doc": [1], "later": 5},
    ]
    assert hash(codec) == hash(ParquetCodec(types=dict(reversed(codec.types.items()))))
    empty = write([])
    assert pq.read_table(io.BytesIO(empty)).num_rows == 0
    assert decode_bytes(ParquetCodec(), empty).records == []


def _columns(frame: pl.DataFrame) -> Any:
    from engine.columnar import ColumnBatch

    return ColumnBatch(frame, exact=True)


def test_column_batches_are_written_from_their_columns_with_their_records_bytes() -> None:
    first = pl.DataFrame(
        {
            "id": [1, 2, 3],
            "price": [741.67, None, float("inf")],
            "name": ["Ünïcode ✓", "", None],
            "ok": [True, None, False],
            "none": pl.Series([None, None, None], dtype=pl.Null),
        }
    )
    # later: price as ints (a float64 column takes them), a column left out, one all null
    second = pl.DataFrame(
        {"id": [4], "price": [3], "name": [None], "none": pl.Series([None], dtype=pl.Null)}
    )
    codec = ParquetCodec(types={"extra": "int64"})
    batches = [_columns(first), _columns(second)]
    from_columns = write(batches, codec)
    assert all(b._records is None for b in batches)  # never turned into records
    assert from_columns == write([first.to_dicts(), second.to_dicts()], codec)
    schema = pq.read_schema(io.BytesIO(from_columns))
    assert [str(schema.field(n).type) for n in schema.names] == [
        "int64",
        "double",
        "string",
        "bool",
        "string",
        "int64",
    ]


def test_a_typed_column_of_nulls_only_is_planned_as_its_records_would_be() -> None:
    # to_number of '' and a filter keeping only nulls leave Int64 and Boolean columns of
    # nulls: the records' first row group makes them strings, and so must the columns
    first = pl.DataFrame(
        {
            "n": pl.Series([None, None], dtype=pl.Int64),
            "ok": pl.Series([None, None], dtype=pl.Boolean),
            "id": [1, 2],
        }
    )
    later = pl.DataFrame({"n": pl.Series([5], dtype=pl.Int64), "ok": [None], "id": [3]})
    from_columns = write([_columns(first)])
    assert from_columns == write([first.to_dicts()])
    schema = pq.read_schema(io.BytesIO(from_columns))
    assert [str(schema.field(n).type) for n in schema.names] == ["string", "string", "int64"]
    # later, an Int64 column of nulls only fits the string column, as its records do
    nulls = pl.DataFrame({"n": pl.Series([None], dtype=pl.Int64), "ok": [None], "id": [3]})
    both = [_columns(first), _columns(nulls)]
    assert write(both) == write([first.to_dicts(), nulls.to_dicts()])
    assert all(b._records is None for b in both)
    # an int where the records made a string column: refused as the records are
    with pytest.raises(CodecError) as caught:
        write([_columns(first), _columns(later)])
    assert caught.value.code == "parquet.type-mismatch"
    assert caught.value.record == 3


def test_a_column_batch_that_does_not_fit_is_written_as_records_and_named() -> None:
    head = _columns(pl.DataFrame({"id": [1], "note": ["a"]}))
    # a float where the first row group made an int64 column: the records say which one
    bad = _columns(pl.DataFrame({"id": [2.5], "note": ["b"]}))
    with pytest.raises(CodecError) as caught:
        write([head, bad])
    assert caught.value.code == "parquet.type-mismatch"
    assert caught.value.record == 2
    # a field the file has no column for
    with pytest.raises(CodecError) as caught:
        write([head, _columns(pl.DataFrame({"id": [2], "new": ["x"]}))])
    assert caught.value.code == "parquet.unknown-field"
    # declared JSON: written from the records, as JSON text
    codec = ParquetCodec(types={"note": "json"})
    batch = _columns(pl.DataFrame({"id": [1], "note": ["a"]}))
    assert write([batch], codec) == write([[{"id": 1, "note": "a"}]], codec)
    assert batch._records is not None


def test_unknown_type_names_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown column type 'int'; valid: string, int64"):
        ParquetCodec(types={"n": "int"})


def test_the_extension_picks_the_codec() -> None:
    assert codec_for_path("out/items.parquet") == ParquetCodec()


# -- oracles --------------------------------------------------------------------------


def test_polars_and_pyarrow_read_what_we_write(tmp_path: Path) -> None:
    path = tmp_path / "ours.parquet"
    path.write_bytes(write([RECORDS]))
    theirs = pl.read_parquet(path).to_dicts()
    arrow = pq.read_table(path).to_pylist()
    for row in (theirs[0], arrow[0]):
        assert row["id"] == 1 and row["price"] == 741.67 and row["name"] == "Ünïcode ✓"
        assert row["amount"] == Decimal("12.50") and row["day"] == dt.date(2026, 3, 1)
        assert row["blob"] == b"\x00\xff" and row["ok"] is True
    assert [r["qty"] for r in theirs] == [912, None, None]
    assert theirs[0]["when"] == dt.datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    # objects, arrays and mixed columns are JSON text under Parquet's JSON logical type
    assert pq.ParquetFile(path).schema.column(7).logical_type.type == "JSON"
    assert pl.read_parquet(path)["tags"].to_list() == ['["a","b"]', "[]", None]


def test_we_read_what_polars_writes(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "i": [1, None, -(2**63)],
            "f": [0.5, float("inf"), None],
            "s": ["é", None, ""],
            "b": [True, False, None],
            "d": pl.Series([Decimal("1.10"), None, Decimal("-99.99")], dtype=pl.Decimal(10, 2)),
            "l": [[1, 2], [], None],
            "st": [{"x": 1, "y": "a"}, None, {"x": None, "y": "c"}],
            "t": [dt.datetime(2026, 1, 2, 3, 4, 5, 6), None, dt.datetime(1970, 1, 1)],
        }
    )
    path = tmp_path / "theirs.parquet"
    frame.write_parquet(path, row_group_size=2)
    assert pq.ParquetFile(path).num_row_groups == 2
    with path.open("rb") as stream:
        ours = [r for c in ParquetCodec().decode(stream, source=str(path)) for r in c.records]
    assert ours == frame.to_dicts()


def test_we_read_maps_and_dictionaries_pyarrow_writes() -> None:
    table = pa.table(
        {
            "m": pa.array([[("a", 1)], None], type=pa.map_(pa.string(), pa.int64())),
            "cat": pa.array(["x", "y"]).dictionary_encode(),
        }
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    assert decode_bytes(ParquetCodec(), buffer.getvalue()).records == [
        {"m": {"a": 1}, "cat": "x"},
        {"m": None, "cat": "y"},
    ]


def test_a_non_seekable_stream_reads_the_same_and_hashes_every_byte() -> None:
    data = write([RECORDS[:2], RECORDS[2:]])
    reader = Digester().reader(io.BytesIO(data))
    assert not reader.seekable()
    records, digests = [], []
    for chunk in ParquetCodec().decode(reader, source="s.parquet"):
        records += chunk.records
        digests.append(reader.take())
    assert records == [expected(r) for r in RECORDS]
    assert digests[0].digest == hashlib.sha256(data).hexdigest()
    assert (digests[0].start, digests[-1].end) == (0, len(data))


# -- errors ---------------------------------------------------------------------------


def test_a_truncated_file_names_the_file() -> None:
    data = write([RECORDS])
    with pytest.raises(CodecError) as caught:
        decode_bytes(ParquetCodec(), data[: len(data) // 2], source="cut.parquet")
    assert caught.value.code == "parquet.corrupt"
    assert str(caught.value).startswith("cut.parquet: not a readable Parquet file")


def test_a_damaged_row_group_names_it_and_its_first_row() -> None:
    records = [{"n": i, "s": f"value {i}"} for i in range(30)]
    data = bytearray(write([records[:10], records[10:20], records[20:]]))
    column = pq.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(1).column(0)
    start = column.data_page_offset
    data[start : start + 24] = b"\xff" * 24  # the page header of row group 1
    chunks = ParquetCodec().decode(io.BytesIO(bytes(data)), source="bad.parquet")
    assert next(chunks).records == records[:10]  # the rows before it are delivered
    with pytest.raises(CodecError) as caught:
        next(chunks)
    assert caught.value.code == "parquet.corrupt"
    assert caught.value.record == 11
    assert str(caught.value).startswith("bad.parquet: row group 1: cannot read")


def test_a_json_cell_that_does_not_parse_rejects_its_row() -> None:
    table = pa.table({"j": pa.array(['{"a": 1}', "{oops", None], type=pa.json_())})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    chunk = decode_bytes(ParquetCodec(), buffer.getvalue(), source="j.parquet")
    assert chunk.records == [{"j": {"a": 1}}, {"j": None}]
    assert [r.location for r in chunk.rejected] == ["j.parquet: row group 0, row 2"]


def test_missing_columns_are_named() -> None:
    with pytest.raises(CodecError, match=r"no column 'zz'; the file has n"):
        decode_bytes(ParquetCodec(columns=["zz"]), write([[{"n": 1}]]), source="f")


@pytest.mark.parametrize(
    ("later", "code", "message"),
    [
        ({"n": "12"}, "parquet.type-mismatch", "field 'n' is str '12', but its column is int64"),
        ({"n": True}, "parquet.type-mismatch", "field 'n' is bool True, but its column is int64"),
        ({"n": 2**64}, "parquet.unwritable", "field 'n' (int64): cannot hold"),
        ({"n": 1, "x": 1}, "parquet.unknown-field", "field 'x' is not a column of this file"),
    ],
)
def test_a_record_the_file_cannot_hold_is_named(
    later: dict[str, Any], code: str, message: str
) -> None:
    encoder = ParquetCodec().encoder(io.BytesIO())
    encoder.write([{"n": 1}, {"n": 2}])
    with pytest.raises(CodecError) as caught:
        encoder.write([{"n": 3}, later])
    assert caught.value.code == code
    assert str(caught.value).startswith(f"record 4: {message}")


def test_a_decimal_with_more_digits_than_its_column_is_refused() -> None:
    encoder = ParquetCodec(types={"p": "decimal(5,2)"}).encoder(io.BytesIO())
    with pytest.raises(CodecError, match=r"record 2: field 'p' \(decimal\(5,2\)\): cannot hold"):
        encoder.write([{"p": Decimal("1.25")}, {"p": Decimal("1.255")}])
