"""Apache Parquet: read row group by row group, write one row group per batch (pyarrow).

Memory is bounded by one row group either way. Column types come from the records of the
first row group written (or from ``types``); objects, arrays and columns of mixed scalar
types are kept as JSON text under Parquet's JSON logical type, so every value reads back
as it was written.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, BinaryIO, ClassVar, Literal

import orjson
from pydantic import Field, field_validator

from engine.codecs.base import CodecConfig, CodecError, Encoder
from engine.codecs.json import dump_default, exact_ints
from engine.columnar.batch import ColumnBatch, polars_failures
from engine.records import Batch, Chunk, Record, Rejected

__all__ = ["ParquetCodec", "ParquetEncoder"]

#: A non-seekable input (a hashed or piped stream) is copied to a temporary file first:
#: Parquet's footer, at the end, says where every row group is. In memory up to this size.
_SPOOL_IN_MEMORY = 32 << 20

_LONG_DIGITS = re.compile(r"[0-9]{19}")
_DECIMAL = re.compile(r"decimal\((\d+),\s*(\d+)\)")
_NAMED_TYPES = (
    "string",
    "int64",
    "float64",
    "bool",
    "binary",
    "json",
    "date",
    "timestamp",
    "timestamptz",
)
Compression = Literal["snappy", "zstd", "gzip", "brotli", "lz4", "none"]

#: The Python types each column kind takes (None is a null everywhere).
_ACCEPTS: dict[str, frozenset[type]] = {
    "int64": frozenset({int}),
    "float64": frozenset({float, int}),
    "string": frozenset({str}),
    "bool": frozenset({bool}),
    "binary": frozenset({bytes}),
    "decimal": frozenset({Decimal, int}),
    "date": frozenset({date}),
    "timestamp": frozenset({datetime}),
    "timestamptz": frozenset({datetime}),
}
_NONE = type(None)
#: A column batch's column types (their JSON types, see engine.columnar.batch.column_type)
#: as the column kinds the records they stand for would be given ("null": any kind).
_FRAME_KINDS = {"str": "string", "int": "int64", "float": "float64", "bool": "bool", "null": None}


def _pyarrow() -> Any:
    """pyarrow and its parquet module, or a clear error naming the extra that installs it."""
    try:
        import pyarrow  # type: ignore[import-untyped]
        import pyarrow.parquet  # type: ignore[import-untyped]
    except ImportError:
        raise CodecError(
            "parquet.unavailable",
            "the parquet codec needs pyarrow: pip install 'engine[columnar]'",
        ) from None
    return pyarrow


class ParquetCodec(CodecConfig):
    """Apache Parquet files, read and written streaming by row group (needs pyarrow)."""

    extensions: ClassVar[Mapping[str, Mapping[str, object]]] = {"parquet": {}}
    type: Literal["parquet"] = Field("parquet", description="Codec name.")
    row_group_size: int | None = Field(
        None,
        ge=1,
        description=(
            "Records per row group when writing; default: one row group per batch the sink writes."
        ),
    )
    compression: Compression = Field("snappy", description="Compression of written pages.")
    types: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Column types when writing, by field, instead of those guessed from the first row"
            " group: `string`, `int64`, `float64`, `bool`, `binary`, `json`, `date`,"
            " `timestamp` (naive), `timestamptz` (UTC) or `decimal(P,S)`."
        ),
        examples=[{"price": "decimal(12,2)", "tags": "json"}],
    )
    columns: tuple[str, ...] | None = Field(
        None, description="Read only these columns; default: all of them."
    )

    @field_validator("types")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value.values():
            decimal = _DECIMAL.fullmatch(name)
            if decimal:
                precision, scale = int(decimal[1]), int(decimal[2])
                if not 1 <= precision <= 76 or scale > precision:
                    raise ValueError(f"{name}: the precision is 1 to 76 and the scale at most that")
            elif name not in _NAMED_TYPES:
                valid = ", ".join(_NAMED_TYPES)
                raise ValueError(f"unknown column type {name!r}; valid: {valid}, decimal(P,S)")
        return value

    def decode(self, stream: BinaryIO, *, source: str, batch_size: int = 1000) -> Iterator[Chunk]:
        """Yield chunks of at most ``batch_size`` rows, one row group at a time."""
        pa = _pyarrow()
        seekable = getattr(stream, "seekable", None)
        if seekable is not None and seekable():
            yield from _read(pa, stream, source, batch_size, self.columns)
            return
        with tempfile.SpooledTemporaryFile(_SPOOL_IN_MEMORY) as spool:
            shutil.copyfileobj(stream, spool, 1 << 20)
            spool.seek(0)
            yield from _read(pa, spool, source, batch_size, self.columns)

    def encoder(self, stream: BinaryIO) -> Encoder:
        return ParquetEncoder(stream, self)


# -- reading -----------------------------------------------------------------------------


def _read(
    pa: Any, stream: Any, source: str, batch_size: int, columns: tuple[str, ...] | None
) -> Iterator[Chunk]:
    try:
        file = pa.parquet.ParquetFile(stream)
    except (pa.ArrowException, OSError) as exc:
        raise CodecError(
            "parquet.corrupt", f"not a readable Parquet file: {exc}", source=source
        ) from None
    schema = file.schema_arrow
    if columns is not None:
        missing = [c for c in columns if c not in schema.names]
        if missing:
            raise CodecError(
                "parquet.no-column",
                f"no column {', '.join(map(repr, missing))};"
                f" the file has {', '.join(schema.names)}",
                source=source,
            )
    row = 0
    for group in range(file.num_row_groups):
        try:
            batches = file.iter_batches(
                batch_size, row_groups=[group], columns=None if columns is None else list(columns)
            )
            for batch in batches:
                yield _chunk(pa, batch, source, group, row)
                row += batch.num_rows
        except (pa.ArrowException, OSError) as exc:
            raise CodecError(
                "parquet.corrupt",
                f"row group {group}: cannot read: {exc}",
                source=source,
                record=row + 1,
            ) from None


def _chunk(pa: Any, batch: Any, source: str, group: int, row: int) -> Chunk:
    """A record batch as records; a JSON cell that does not parse rejects its row."""
    json_columns = [f.name for f in batch.schema if isinstance(f.type, pa.JsonType)]
    records: list[Record] = batch.to_pylist(maps_as_pydicts="strict")
    if not json_columns:
        return Chunk(records)
    kept: list[Record] = []
    rejected: list[Rejected] = []
    for index, record in enumerate(records):
        try:
            for name in json_columns:
                text = record[name]
                if text is not None:
                    record[name] = _loads(text)
        except ValueError as exc:
            where = f"{source}: row group {group}, row {row + index + 1}"
            rejected.append(Rejected(record, f"column {name!r} is not JSON: {exc}", where))
        else:
            kept.append(record)
    return Chunk(kept, rejected)


def _loads(text: str) -> Any:
    if _LONG_DIGITS.search(text):
        return json.loads(text)  # orjson reads an integer past 64 bits as a float
    return orjson.loads(text)


# -- writing -----------------------------------------------------------------------------


class _Column:
    """One output column: its name, Arrow type and how a batch's values become an array."""

    def __init__(self, pa: Any, name: str, kind: str) -> None:
        self.name = name
        self.kind = kind
        self.accepts: frozenset[type] | None
        match = _DECIMAL.fullmatch(kind)
        if match:
            precision, scale = int(match[1]), int(match[2])
            self.accepts = _ACCEPTS["decimal"]
            decimal = pa.decimal128 if precision <= 38 else pa.decimal256
            self.type = decimal(precision, scale)
        elif kind == "json":
            self.accepts = None
            self.type = pa.json_()
        else:
            self.accepts = _ACCEPTS[kind]
            self.type = {
                "int64": pa.int64(),
                "float64": pa.float64(),
                "string": pa.string(),
                "bool": pa.bool_(),
                "binary": pa.binary(),
                "date": pa.date32(),
                "timestamp": pa.timestamp("us"),
                "timestamptz": pa.timestamp("us", tz="UTC"),
            }[kind]


def _guess(values: list[Any]) -> str:
    """The column kind for the first row group's values of one field."""
    kinds = {type(v) for v in values} - {_NONE}
    if not kinds:
        return "string"
    if kinds <= {int}:
        return "int64" if all(-(2**63) <= v < 2**63 for v in values if v is not None) else "json"
    if kinds <= {int, float}:
        return "float64"
    if kinds == {datetime} and any(v.tzinfo is not None for v in values if v is not None):
        return "timestamptz"
    if kinds <= {Decimal, int}:
        return _decimal_kind([v for v in values if v is not None])
    if len(kinds) == 1:
        (kind,) = kinds
        for name in ("string", "bool", "binary", "date", "timestamp"):
            if kind in _ACCEPTS[name]:
                return name
    return "json"


def _decimal_kind(values: list[Decimal | int]) -> str:
    """decimal(P,S) holding every value exactly (json when none can: NaN, over 76 digits)."""
    scale = digits = 0
    for value in values:
        if isinstance(value, int):
            digits = max(digits, len(str(abs(value))))
            continue
        if not value.is_finite():
            return "json"
        _, figures, exponent = value.as_tuple()
        assert isinstance(exponent, int)
        scale = max(scale, -exponent)
        digits = max(digits, len(figures) + exponent)
    precision = max(digits, 0) + scale
    if precision > 76:
        return "json"
    return f"decimal({38 if precision <= 38 else 76},{scale})"


class ParquetEncoder(Encoder):
    """Writes each batch (or each ``row_group_size`` records) as one row group; the footer
    is written by :meth:`finish`. A column batch is written from its columns, through
    Arrow, where they fit the file's columns as its records would."""

    takes_columns = True

    def __init__(self, stream: BinaryIO, codec: ParquetCodec) -> None:
        self._pa = _pyarrow()
        self._stream = _Positioned(stream)
        self._codec = codec
        self._columns: list[_Column] | None = None
        self._names: frozenset[str] = frozenset()
        self._writer: Any = None
        self._pending: Batch = []
        self._count = 0  # records written

    def write(self, records: Batch) -> None:
        if not records:
            return
        size = self._codec.row_group_size
        if size is None:
            if not (isinstance(records, ColumnBatch) and self._group_columns(records)):
                self._group(records)
            return
        self._pending.extend(records)
        while len(self._pending) >= size:
            group, self._pending = self._pending[:size], self._pending[size:]
            self._group(group)

    def finish(self) -> None:
        if self._pending:
            group, self._pending = self._pending, []
            self._group(group)
        if self._writer is None:
            self._open(self._plan([]))
        self._writer.close()

    def _plan(self, records: Batch) -> list[_Column]:
        names: dict[str, None] = {}
        for record in records:
            names.update(dict.fromkeys(record))
        return self._planned({name: _guess([r.get(name) for r in records]) for name in names})

    def _planned(self, guessed: Mapping[str, str]) -> list[_Column]:
        """The file's columns: the fields of the first row group with the kinds guessed
        for them, then the declared ones, a declared kind before a guessed one."""
        declared = self._codec.types
        names = dict.fromkeys([*guessed, *declared])
        return [_Column(self._pa, n, declared.get(n) or guessed[n]) for n in names]

    def _group_columns(self, batch: ColumnBatch) -> bool:
        """Write the batch as one row group from its columns, its records never made, with
        the bytes its records would give (False, nothing written: write the records,
        which also says what a column cannot hold)."""
        if not batch.exact or batch.others:
            return False
        # a column of nulls only, whatever its dtype, is of no kind: it fits any column,
        # and makes a string column in the first row group, as _guess says of its records
        nulls = dict(zip(batch.frame.columns, batch.frame.null_count().row(0), strict=True))
        kinds: dict[str, str | None] = {}
        for name, kind, _ in batch.shape():
            if kind not in _FRAME_KINDS:
                return False
            kinds[name] = _FRAME_KINDS[kind] if nulls[name] < len(batch) else None
        if self._columns is None:
            self._open(self._planned({n: kind or "string" for n, kind in kinds.items()}))
        assert self._columns is not None
        if not self._names.issuperset(kinds):
            return False
        for column in self._columns:
            has = kinds.get(column.name)  # an int64 column fits a float64 one, as ints do
            if has not in (None, column.kind) and (has, column.kind) != ("int64", "float64"):
                return False
        pa = self._pa
        try:
            table = batch.frame.to_arrow()
            arrays = [
                (
                    table.column(c.name).cast(c.type).combine_chunks()
                    if c.name in kinds
                    else pa.nulls(table.num_rows, c.type)
                )
                for c in self._columns
            ]
        except (pa.ArrowException, *polars_failures()):
            return False
        group = pa.Table.from_arrays(arrays, schema=self._writer.schema)
        self._writer.write_table(group, row_group_size=len(batch))
        self._count += len(batch)
        return True

    def _open(self, columns: list[_Column]) -> None:
        pa = self._pa
        fields = [pa.field(c.name, c.type) for c in columns]
        self._columns = columns
        self._names = frozenset(c.name for c in columns)
        self._writer = pa.parquet.ParquetWriter(
            self._stream,
            pa.schema(fields),
            compression=self._codec.compression,
            store_schema=True,
        )

    def _group(self, records: Batch) -> None:
        if self._columns is None:
            self._open(self._plan(records))
        assert self._columns is not None
        if not all(map(self._names.issuperset, records)):
            self._unknown_field(records)
        arrays = [self._array(column, records) for column in self._columns]
        table = self._pa.Table.from_arrays(arrays, schema=self._writer.schema)
        self._writer.write_table(table, row_group_size=len(records))
        self._count += len(records)

    def _array(self, column: _Column, records: Batch) -> Any:
        name = column.name
        values = [r.get(name) for r in records]
        if column.kind == "json":
            return self._json_array(column, values)
        accepts = column.accepts
        if accepts is not None:
            kinds = {type(v) for v in values}
            kinds.discard(_NONE)
            if not kinds <= accepts:
                bad = next(
                    i for i, v in enumerate(values) if v is not None and type(v) not in accepts
                )
                self._mismatch(column, bad, values[bad])
        try:
            return self._pa.array(values, type=column.type)
        except (self._pa.ArrowException, OverflowError, ValueError, TypeError) as exc:
            bad = self._first_refused(column, values)
            raise CodecError(
                "parquet.unwritable",
                f"field {name!r} ({column.kind}): cannot hold {values[bad]!r}: {exc}",
                record=self._count + bad + 1,
            ) from None

    def _json_array(self, column: _Column, values: list[Any]) -> Any:
        texts: list[str | None] = []
        for index, value in enumerate(values):
            if value is None:
                texts.append(None)
                continue
            try:
                texts.append(orjson.dumps(exact_ints(value), default=dump_default).decode())
            except (TypeError, RecursionError) as exc:
                raise CodecError(
                    "parquet.unwritable",
                    f"field {column.name!r} (json): cannot encode as JSON: {exc}",
                    record=self._count + index + 1,
                ) from None
        return self._pa.array(texts, type=column.type)

    def _first_refused(self, column: _Column, values: list[Any]) -> int:
        for index, value in enumerate(values):
            try:
                self._pa.array([value], type=column.type)
            except (self._pa.ArrowException, OverflowError, ValueError, TypeError):
                return index
        return 0

    def _mismatch(self, column: _Column, index: int, value: Any) -> None:
        raise CodecError(
            "parquet.type-mismatch",
            f"field {column.name!r} is {type(value).__name__} {value!r}, but its column is"
            f" {column.kind} (from the first row group written); declare it in `types`"
            " (`json` keeps any value)",
            record=self._count + index + 1,
        )

    def _unknown_field(self, records: Batch) -> None:
        for index, record in enumerate(records):
            extra = [k for k in record if k not in self._names]
            if extra:
                known = ", ".join(c.name for c in self._columns or [])
                raise CodecError(
                    "parquet.unknown-field",
                    f"field {extra[0]!r} is not a column of this file ({known}: from the"
                    " first row group written); declare it in `types`",
                    record=self._count + index + 1,
                )


class _Positioned:
    """A write-only file object that knows its position (the Parquet writer asks for it;
    a hashing stream cannot seek)."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._position = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        self._stream.write(data)
        self._position += len(data)
        return len(data)

    def tell(self) -> int:
        return self._position

    def flush(self) -> None:
        self._stream.flush()

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def close(self) -> None:
        # The sink owns the stream; the Parquet writer closing its file ends only our view.
        self.closed = True
