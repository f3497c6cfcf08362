"""CSV and TSV: header-keyed records, typed columns, bad rows rejected with their line."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal, InvalidOperation
from itertools import chain, islice, tee
from operator import itemgetter
from typing import Any, BinaryIO, ClassVar, Literal, cast

import orjson
from pydantic import Field, field_validator, model_validator

from engine.codecs.base import (
    CodecConfig,
    CodecError,
    DecodeAt,
    Encoder,
    Framing,
    RecordCuts,
    known_encoding,
)
from engine.codecs.json import dump_default
from engine.columnar.batch import ColumnBatch
from engine.errors import DataError
from engine.records import Batch, Chunk, Record, Rejected

__all__ = ["ColumnType", "CsvCodec", "CsvEncoder"]

ColumnType = Literal["str", "int", "float", "bool", "decimal"]

_READ_SIZE = 1 << 16
_QUOTING = {
    "minimal": csv.QUOTE_MINIMAL,
    "all": csv.QUOTE_ALL,
    "nonnumeric": csv.QUOTE_NONNUMERIC,
    "none": csv.QUOTE_NONE,
}
# Values written as JSON text: csv.writer would write their Python repr.
_NESTED = frozenset({dict, list, tuple})
_line_breaks = re.compile(r"\r\n?|\n").findall
# Line breaks as csv reads them (text mode, newline=""), and the encodings that write them as
# these bytes: the byte offset after a number of lines can be found in the raw file.
_BYTE_BREAK = re.compile(rb"\r\n|\r|\n")
_ASCII_BREAKS = frozenset({"utf-8", "ascii", "latin-1", "iso8859-15", "cp1252"})
# csv's strict-mode message for a character after a closing quote (`2,"x"y`).
_STRAY_QUOTE = "expected after"


def _breaks(row: list[str]) -> int:
    """Line breaks inside a row's quoted values: how many more physical lines it spans."""
    return sum(len(_line_breaks(field)) for field in row)


class CsvCodec(CodecConfig):
    """Delimited text: one record per row, keyed by the header (or ``columns``)."""

    joinable: ClassVar[bool] = True
    extensions: ClassVar[Mapping[str, Mapping[str, object]]] = {
        "csv": {},
        "tsv": {"delimiter": "\t"},
    }
    type: Literal["csv"] = Field("csv", description="Codec name.")
    header: bool = Field(
        True, description="The first row (after skip_rows) names the columns; written on encode."
    )
    columns: tuple[str, ...] | None = Field(
        None,
        description=(
            "Column names. Reading: names the fields (replacing the header row's names when"
            " header = true; without either, fields are column_1, column_2, ...)."
            " Writing: the columns and their order (other keys are left out)."
        ),
        examples=[["sku", "name", "quantity"]],
    )
    delimiter: str = Field(",", description="Field separator, one character.", examples=[";"])
    quotechar: str = Field('"', description="Quote character, one character.")
    escapechar: str | None = Field(
        None, description="Escape character (one character), or none: quotes are doubled."
    )
    quoting: Literal["minimal", "all", "nonnumeric", "none"] = Field(
        "minimal", description="Which fields are quoted when writing; reading honours quotes."
    )
    encoding: str = Field(
        "utf-8", description="Text encoding; a UTF-8 byte order mark is skipped on reading."
    )
    types: dict[str, ColumnType] = Field(
        default_factory=dict,
        description="Column types; a row whose value does not convert is rejected.",
        examples=[{"quantity": "int", "price": "decimal", "active": "bool"}],
    )
    skip_rows: int = Field(0, ge=0, description="Physical lines to skip before the header/data.")
    null_values: tuple[str, ...] = Field(
        (), description="Field values read as null (None).", examples=[["", "NULL", "N/A"]]
    )
    max_field_size: int = Field(
        16 * 1024 * 1024,
        ge=1,
        description=("Longest field read, in characters; a longer one stops the read at its line."),
    )

    @field_validator("delimiter", "quotechar", "escapechar")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and (len(value) != 1 or value in "\r\n"):
            raise ValueError(f"must be exactly one character, not a line break; got {value!r}")
        return value

    _known_encoding = field_validator("encoding")(known_encoding)

    @model_validator(mode="after")
    def _distinct_characters(self) -> CsvCodec:
        if self.delimiter == self.quotechar:
            raise ValueError("delimiter and quotechar must differ")
        if self.columns is not None and len(set(self.columns)) != len(self.columns):
            raise ValueError("columns must not repeat a name")
        return self

    def line_ends(self) -> re.Pattern[bytes] | None:
        """Lines end as text mode with ``newline=""`` ends them; resumable only in encodings
        that write those breaks as the ASCII bytes."""
        if codecs.lookup(self.encoding).name not in _ASCII_BREAKS:
            return None
        return _BYTE_BREAK

    def record_cuts(self) -> RecordCuts | None:
        """Cut after line breaks outside quoted fields; not with an ``escapechar`` (an
        escaped quote would look like a field's end) or ``skip_rows`` (lines skipped are
        not records)."""
        if self.line_ends() is None or self.escapechar is not None or self.skip_rows:
            return None
        return RecordCuts(self.quotechar.encode("ascii"), crlf=True)

    columns_in_thread: ClassVar[bool] = True

    def reads_columns(self) -> bool:
        """Plain UTF-8 CSV with a header and no conversions: what polars reads as csv does."""
        return (
            self.header
            and self.columns is None
            and self.escapechar is None
            and not self.types
            and not self.null_values
            and self.skip_rows == 0
            and codecs.lookup(self.encoding).name == "utf-8"
            and self.delimiter.isascii()
            and self.quotechar.isascii()
        )

    def decode_columns(
        self, stream: BinaryIO, *, source: str, at: DecodeAt, batch_size: int = 1000
    ) -> Iterator[Chunk]:
        """Column batches of about 1 MiB of input each; the row decoder takes over from a
        block that polars would not read as ``csv.reader`` does (engine.codecs.columns)."""
        from engine.codecs.columns import decode_csv_blocks

        def rows(rest: BinaryIO, where: DecodeAt) -> Iterator[Chunk]:
            return self.decode(rest, source=source, batch_size=batch_size, at=where)

        return decode_csv_blocks(
            stream,
            delimiter=self.delimiter,
            quotechar=self.quotechar,
            max_field_size=self.max_field_size,
            at=at,
            rows=rows,
        )

    def decode(
        self,
        stream: BinaryIO,
        *,
        source: str,
        batch_size: int = 1000,
        at: DecodeAt | None = None,
    ) -> Iterator[Chunk]:
        """Yield chunks of rows as dicts; rows of the wrong width or type, or with a stray
        quote, are rejected; an unterminated quote or an oversized field raises.

        ``at``: the stream starts after ``at.line`` lines, with ``at.names`` as the columns
        when set (skip_rows and the header were read before); ``at.done`` and ``at.names``
        follow the read."""
        if at is not None and at.names is not None:
            yield from self._decode(stream, source, batch_size, at, resumed=True)
            return
        yield from self._decode(stream, source, batch_size, at, resumed=False)

    def _decode(
        self, stream: BinaryIO, source: str, batch_size: int, at: DecodeAt | None, *, resumed: bool
    ) -> Iterator[Chunk]:
        counter = _CountingReader(stream)
        text = io.TextIOWrapper(counter, encoding=self._read_encoding(resumed), newline="")
        # A second view of the lines the reader takes, walked after each block in C (no Python
        # call per line), so the raw text of a row with a stray quote can be dead-lettered.
        lines, seen = tee(text)
        walked = 0
        reader = csv.reader(
            lines,
            delimiter=self.delimiter,
            quotechar=self.quotechar,
            escapechar=self.escapechar,
            doublequote=True,
            strict=True,
        )
        decoder = _RowDecoder(self, source)
        skipped = 0
        if resumed:
            assert at is not None and at.names is not None
            skipped = at.line
            # error locations count from the file's start
            counter.newlines, counter.bytes_read = at.line, at.offset
            decoder.set_names(tuple(at.names), at.line)
        try:
            while not resumed and skipped < self.skip_rows and text.readline():
                skipped += 1
        except UnicodeDecodeError as exc:
            raise counter.locate(exc, source, self.encoding) from None
        if self.header and not resumed:
            header: list[str] = []
            while not header:
                start = skipped + reader.line_num + 1
                try:
                    csv.field_size_limit(self.max_field_size)
                    row = next(reader, None)
                except UnicodeDecodeError as exc:
                    raise counter.locate(exc, source, self.encoding) from None
                except csv.Error as exc:
                    raise self._fatal(exc, source, start, skipped + reader.line_num) from None
                if row is None:
                    return
                header = row
            decoder.use_header(header, start)
        while True:
            block: list[list[str]] = []
            first_line = skipped + reader.line_num + 1
            error: DataError | None = None
            stray: Rejected | None = None
            try:
                csv.field_size_limit(self.max_field_size)
                block.extend(islice(reader, batch_size))
            except csv.Error as exc:
                start = first_line + sum(1 + _breaks(row) for row in block)
                line = skipped + reader.line_num
                if _STRAY_QUOTE in str(exc):
                    reason = (
                        f"stray {self.quotechar} in a field: a quoted field must end at a"
                        f" {self.delimiter!r} or the line's end (quote a quote by doubling it)"
                    )
                    last = deque(islice(seen, reader.line_num - walked), maxlen=1)
                    walked = reader.line_num
                    raw = last[0] if last else ""
                    stray = Rejected(raw.rstrip("\r\n"), reason, f"{source}:{line}")
                else:
                    error = self._fatal(exc, source, start, line)
            except UnicodeDecodeError as exc:
                error = counter.locate(exc, source, self.encoding)
            deque(islice(seen, reader.line_num - walked), maxlen=0)
            walked = reader.line_num
            # Rows read before an error are still delivered (list.extend keeps them).
            chunk = decoder.chunk(block, first_line) if block else Chunk([])
            if stray is not None:
                chunk.rejected.append(stray)
            if at is not None:
                at.done = skipped + reader.line_num
                at.names = decoder.names
            if chunk.records or chunk.rejected:
                yield chunk
            if error is not None:
                raise error
            if stray is None and len(block) < batch_size:
                return

    def _fatal(self, exc: csv.Error, source: str, start: int, at: int) -> DataError:
        """The error for csv input that leaves the rest unreadable, at the record's first line."""
        message = str(exc)
        if message == "unexpected end of data":
            return CodecError(
                "csv.unterminated-quote",
                f"unterminated quoted field: the {self.quotechar} opened in the record at line"
                f" {start} never closes (the input ends at line {at})",
                source=source,
                line=start,
            )
        if message.startswith("field larger than field limit"):
            return CodecError(
                "csv.field-too-large",
                f"malformed CSV: field larger than max_field_size ({self.max_field_size:,}"
                " characters); raise `max_field_size` if the field is meant to be that long",
                source=source,
                line=start,
            )
        return CodecError("csv.malformed", f"malformed CSV: {exc}", source=source, line=at)

    def encoder(self, stream: BinaryIO) -> Encoder:
        return CsvEncoder(stream, self)

    def _read_encoding(self, resumed: bool = False) -> str:
        """utf-8 reads as utf-8-sig, so a byte order mark never ends up in the first column
        name; read from a line past the file's start (``resumed``), a BOM is data."""
        utf8 = codecs.lookup(self.encoding).name == "utf-8"
        return "utf-8-sig" if utf8 and not resumed else self.encoding


class _CountingReader(io.BufferedIOBase):
    """Passes reads through, counting bytes and newlines so a decoding error can be located."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        self.bytes_read = 0
        self.newlines = 0

    @property
    def name(self) -> str:
        return str(getattr(self._stream, "name", "<stream>"))

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1, /) -> bytes:
        # Larger reads than TextIOWrapper's 8 KiB requests mean fewer Python-level calls.
        data = self._stream.read(max(size or 0, _READ_SIZE)) or b""
        self.bytes_read += len(data)
        self.newlines += data.count(b"\n")
        return data

    def read1(self, size: int = -1, /) -> bytes:
        return self.read(size)

    def locate(self, exc: UnicodeDecodeError, source: str, encoding: str) -> DataError:
        """The DataError for a decoding failure; the decoder's input ends at the last read."""
        after = exc.object[exc.start :]
        line = self.newlines - after.count(b"\n") + 1
        offset = self.bytes_read - len(after)
        return DataError(
            f"cannot decode as {encoding}: {exc.reason}", source=source, line=line, offset=offset
        )


class _RowDecoder:
    """Turns blocks of csv rows into chunks: a fast path, and a per-row path that locates."""

    def __init__(self, codec: CsvCodec, source: str) -> None:
        self._codec = codec
        self._source = source
        self._names: tuple[str, ...] | None = None
        self._converters: list[tuple[int, str, ColumnType, Callable[[str], Any]]] = []
        self._nulls = frozenset(codec.null_values)

    def chunk(self, block: list[list[str]], first_line: int) -> Chunk:
        if self._names is None:
            # No header row: names come from `columns` or the first row's width.
            columns = self._codec.columns
            width = next((len(row) for row in block if row), 0)
            if columns is None and not width:
                return Chunk([])
            self.set_names(columns or tuple(f"column_{i}" for i in range(1, width + 1)), 0)
        names = self._names
        assert names is not None
        if len(set(map(len, block))) == 1 and len(block[0]) == len(names):
            if not self._converters and not self._nulls:
                # Widths were checked above; zip(strict=...) costs 50% more per row here.
                return Chunk([dict(zip(names, row)) for row in block])  # noqa: B905
            try:
                return Chunk([self._convert(row) for row in block])
            except ValueError:
                pass  # the per-row path below names the row and the column
        return self._located(block, first_line)

    def _located(self, block: list[list[str]], line: int) -> Chunk:
        records: list[Record] = []
        rejected: list[Rejected] = []
        width = len(self._names or ())
        where = self._source
        for row in block:
            start = line
            line += 1 + _breaks(row)
            if not row:
                continue  # a blank line
            if len(row) != width:
                reason = f"expected {width} fields, found {len(row)}"
                rejected.append(Rejected(row, reason, f"{where}:{start}"))
                continue
            try:
                records.append(self._convert(row))
            except ValueError as exc:
                rejected.append(Rejected(row, str(exc), f"{where}:{start}"))
        return Chunk(records, rejected)

    def _convert(self, row: list[str]) -> Record:
        """A record with null values mapped to None and typed columns converted."""
        nulls = self._nulls
        values: list[Any] = [None if v in nulls else v for v in row] if nulls else list(row)
        for index, name, kind, convert in self._converters:
            value = values[index]
            if value is None:
                continue
            try:
                values[index] = convert(value)
            except (ValueError, ArithmeticError):
                hint = ' (add "" to null_values to read empty fields as null)' if not value else ""
                raise ValueError(
                    f"column {index + 1} ({name!r}): cannot convert {value!r} to {kind}{hint}"
                ) from None
        return dict(zip(self._names or (), values, strict=True))

    def use_header(self, row: list[str], line: int) -> None:
        """Take the names from the header row (found at ``line``), or rename it by ``columns``."""
        columns = self._codec.columns
        if columns is not None:
            if len(columns) != len(row):
                raise DataError(
                    f"columns names {len(columns)} fields, the header has {len(row)}",
                    source=self._source,
                    line=line,
                )
            self.set_names(columns, line)
            return
        repeated = sorted(name for name, n in Counter(row).items() if n > 1)
        if repeated:
            raise DataError(
                f"header repeats column names {repeated}; name them with `columns`",
                source=self._source,
                line=line,
            )
        self.set_names(tuple(row), line)

    @property
    def names(self) -> list[str] | None:
        return list(self._names) if self._names is not None else None

    def set_names(self, names: tuple[str, ...], line: int) -> None:
        self._names = names
        self._converters = _converters(names, self._codec.types, self._source, line)


def _converters(
    names: Sequence[str], types: dict[str, ColumnType], source: str, line: int
) -> list[tuple[int, str, ColumnType, Callable[[str], Any]]]:
    unknown = sorted(set(types) - set(names))
    if unknown:
        raise DataError(
            f"types names unknown columns {unknown}; the columns are {list(names)}",
            source=source,
            line=line,
        )
    return [
        (index, name, types[name], _CONVERT[types[name]])
        for index, name in enumerate(names)
        if name in types and types[name] != "str"
    ]


def _to_int(value: str) -> int:
    if "_" in value:
        raise ValueError(value)
    return int(value)


def _to_float(value: str) -> float:
    if "_" in value:
        raise ValueError(value)
    return float(value)


def _to_decimal(value: str) -> Decimal:
    if "_" in value:
        raise ValueError(value)
    try:
        return Decimal(value)
    except InvalidOperation:
        raise ValueError(value) from None


_BOOLS = {
    "true": True,
    "t": True,
    "yes": True,
    "y": True,
    "1": True,
    "false": False,
    "f": False,
    "no": False,
    "n": False,
    "0": False,
}


def _to_bool(value: str) -> bool:
    try:
        return _BOOLS[value.strip().lower()]
    except KeyError:
        raise ValueError(value) from None


_CONVERT: dict[str, Callable[[str], Any]] = {
    "int": _to_int,
    "float": _to_float,
    "bool": _to_bool,
    "decimal": _to_decimal,
}


class CsvEncoder(Encoder):
    """Writes rows with ``csv.writer``: header from ``columns`` or the first record's keys."""

    takes_columns = True

    def __init__(self, stream: BinaryIO, codec: CsvCodec) -> None:
        self._stream = stream
        self._header = codec.header
        self._explicit = codec.columns is not None
        self._columns: tuple[str, ...] | None = codec.columns
        self._encode = codecs.getincrementalencoder(codec.encoding)().encode
        self._encoding = codec.encoding
        self._buffer = io.StringIO()
        self._dialect: dict[str, Any] = {
            "delimiter": codec.delimiter,
            "quotechar": codec.quotechar,
            "escapechar": codec.escapechar,
            "quoting": _QUOTING[codec.quoting],
            # RFC 4180 CRLF, always: with "\n" alone csv.writer leaves a "\r" in a value unquoted.
            "lineterminator": "\r\n",
        }
        self._writer = csv.writer(self._buffer, **self._dialect)
        self._count = 0
        self._started = False
        self._head = 0  # bytes of the header row

    def write(self, records: Batch) -> None:
        if not records:
            return
        if isinstance(records, ColumnBatch):
            records = records.records()
        if self._columns is None:
            self._columns = tuple(records[0])
        columns = self._columns
        if not self._started:
            self._started = True
            if self._header:
                self._writerows([columns], header=True)
                head = self._encode(self._buffer.getvalue())
                self._buffer.seek(0)
                self._buffer.truncate()
                self._stream.write(head)
                self._head = len(head)
        rows = self._rows(records, columns)
        if not _NESTED.isdisjoint(map(type, chain.from_iterable(rows))):
            rows = [self._flat(row, index) for index, row in enumerate(rows)]
        self._writerows(rows)
        data = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        try:
            self._stream.write(self._encode(data))
        except UnicodeEncodeError as exc:
            raise self._locate_encoding_error(rows, exc) from None
        self._count += len(records)

    def state(self) -> dict[str, object]:
        columns = list(self._columns) if self._columns is not None else None
        return {"count": self._count, "started": self._started, "columns": columns}

    def framing(self) -> Framing:
        return Framing(self._head, b"", 0)

    def resume(self, state: dict[str, object]) -> None:
        self._count = int(cast(int, state["count"]))
        self._started = bool(state["started"])
        columns = cast("list[str] | None", state["columns"])
        if columns is not None:
            self._columns = tuple(columns)

    def _rows(self, records: Batch, columns: tuple[str, ...]) -> list[Sequence[Any]]:
        """Values in column order; missing keys are empty, unknown keys an error unless selected."""
        width = len(columns)
        getter: Callable[[Record], Sequence[Any]]
        if width == 1:
            only = columns[0]

            def getter(record: Record) -> Sequence[Any]:
                return (record[only],)

        else:
            getter = itemgetter(*columns)
        if self._explicit or set(map(len, records)) == {width}:
            try:
                return list(map(getter, records))
            except KeyError:
                pass
        known = set(columns)
        rows: list[Sequence[Any]] = []
        for index, record in enumerate(records):
            extra = [k for k in record if k not in known]
            if extra and not self._explicit:
                raise CodecError(
                    "csv.unknown-keys",
                    f"record has keys not in the CSV header {list(columns)}: {extra}"
                    " (list every column in `columns` to choose which are written)",
                    record=self._count + index + 1,
                )
            rows.append([record.get(c) for c in columns])
        return rows

    def _flat(self, row: Sequence[Any], index: int) -> Sequence[Any]:
        """A row with its objects and arrays as JSON text (``{"name":"Ada"}``), not reprs."""
        if _NESTED.isdisjoint(map(type, row)):
            return row
        try:
            return [
                orjson.dumps(v, default=dump_default).decode() if type(v) in _NESTED else v
                for v in row
            ]
        except TypeError as exc:
            raise CodecError(
                "csv.unencodable",
                f"cannot write a nested value as JSON text: {exc}",
                record=self._count + index + 1,
            ) from None

    def _writerows(self, rows: Sequence[Sequence[Any]], *, header: bool = False) -> None:
        try:
            self._writer.writerows(rows)
        except csv.Error:
            self._buffer.seek(0)
            self._buffer.truncate()
            raise self._locate_error(rows, header) from None

    def _locate_encoding_error(
        self, rows: Sequence[Sequence[Any]], exc: UnicodeEncodeError
    ) -> CodecError:
        """Name the record holding a character the codec's encoding cannot write."""
        where = next((i for i, row in enumerate(rows) if not _encodable(row, self._encoding)), None)
        char = exc.object[exc.start]
        return CodecError(
            "csv.unencodable",
            f"cannot encode as {self._encoding}: {char!r} is not in it",
            record=None if where is None else self._count + where + 1,
        )

    def _locate_error(self, rows: Sequence[Sequence[Any]], header: bool) -> CodecError:
        """Find the row csv.writer refused (e.g. a delimiter with quoting = "none")."""
        scratch = csv.writer(io.StringIO(), **self._dialect)
        for index, row in enumerate(rows):
            try:
                scratch.writerow(row)
            except csv.Error as exc:
                if header:
                    return CodecError("csv.unwritable", f"cannot write the CSV header: {exc}")
                return CodecError(
                    "csv.unwritable", f"cannot write as CSV: {exc}", record=self._count + index + 1
                )
        return CodecError("csv.unwritable", "cannot write as CSV")


def _encodable(row: Sequence[Any], encoding: str) -> bool:
    try:
        "".join(str(v) for v in row if v is not None).encode(encoding)
    except UnicodeEncodeError:
        return False
    return True
