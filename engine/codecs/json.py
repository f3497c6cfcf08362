"""JSON: a top-level array of objects, or concatenated object documents, streamed."""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from itertools import chain
from json.scanner import make_scanner
from typing import Any, BinaryIO, ClassVar, Literal, cast

import orjson
from pydantic import Field

from engine.codecs.base import CodecConfig, CodecError, DecodeAt, Encoder, Framing
from engine.columnar.batch import ColumnBatch
from engine.errors import DataError, FatalError
from engine.records import Batch, Chunk, Record, Rejected

__all__ = [
    "JsonCodec",
    "JsonEncoder",
    "NonFinite",
    "dump_default",
    "exact_ints",
    "json_type_name",
    "loads_non_finite_as_null",
    "refuse_non_finite",
]

NonFinite = Literal["refuse", "null"]

_BOM = b"\xef\xbb\xbf"
_READ_SIZE = 1 << 16
# A parse error this close to the end of the buffer may just be a value cut by the read.
_TRUNCATION_MARGIN = 16
# The pattern matches the empty string, so match() never returns None here.
_skip_ws = cast(Callable[[str, int], re.Match[str]], re.compile(r"[ \t\n\r]*").match)


class _NonFiniteNumber(Exception):
    """Raised from inside the scanner for a number JSON cannot hold; carries its text."""

    def __init__(self, text: str) -> None:
        self.text = text


def _refuse_constant(text: str) -> Any:
    raise _NonFiniteNumber(text)


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NonFiniteNumber(text)
    return value


def _float_or_null(text: str) -> float | None:
    value = float(text)
    return None if math.isinf(value) else value


def _make_scanner(non_finite: NonFinite) -> Callable[[str, int], tuple[Any, int]]:
    if non_finite == "null":
        decoder = json.JSONDecoder(parse_constant=lambda _: None, parse_float=_float_or_null)
    else:
        decoder = json.JSONDecoder(parse_constant=_refuse_constant, parse_float=_finite_float)
    return cast(Callable[[str, int], tuple[Any, int]], make_scanner(cast(Any, decoder)))


_SCANNERS = {kind: _make_scanner(kind) for kind in ("refuse", "null")}


def loads_non_finite_as_null(text: str) -> Any:
    """One JSON document, with NaN, Infinity and overflowing numbers read as null."""
    return json.loads(text, parse_constant=lambda _: None, parse_float=_float_or_null)


# Strings (skipped whole) or a number/constant, to find where a refused number sits.
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN|-?[0-9][0-9.eE+-]*)')
_BLANK = frozenset(" \t\n\r")


class JsonCodec(CodecConfig):
    """A JSON array of objects, or one object per document (concatenated or one per file)."""

    joinable: ClassVar[bool] = True
    extensions: ClassVar[Mapping[str, Mapping[str, object]]] = {"json": {}}
    type: Literal["json"] = Field("json", description="Codec name.")
    pretty: bool = Field(False, description="Indent the written array by two spaces.")
    non_finite: NonFinite = Field(
        "refuse",
        description=(
            "`NaN`, `Infinity`, `-Infinity` and numbers too large for a float (`1e400`) are"
            " not JSON (RFC 8259): `refuse` stops the read at their byte offset; `null`"
            " reads them as null."
        ),
    )

    def decode(self, stream: BinaryIO, *, source: str, batch_size: int = 1000) -> Iterator[Chunk]:
        """Yield chunks of objects; non-objects are rejected, malformed JSON raises DataError."""
        records: list[Record] = []
        rejected: list[Rejected] = []
        error: DataError | None = None
        try:
            for item in _Scanner(stream, source, self.non_finite).items():
                if isinstance(item, Rejected):
                    rejected.append(item)
                else:
                    records.append(item)
                if len(records) + len(rejected) >= batch_size:
                    yield Chunk(records, rejected)
                    records, rejected = [], []
        except DataError as exc:
            error = exc
        if records or rejected:
            yield Chunk(records, rejected)
        if error is not None:
            raise error

    def reads_columns(self) -> bool:
        return True

    def decode_columns(
        self, stream: BinaryIO, *, source: str, at: DecodeAt, batch_size: int = 1000
    ) -> Iterator[Chunk]:
        """The row decoder's chunks, as columns (engine.codecs.columns)."""
        from engine.codecs.columns import columnize

        for chunk in self.decode(stream, source=source, batch_size=batch_size):
            yield Chunk(cast(Batch, columnize(chunk.records)), chunk.rejected)

    def encoder(self, stream: BinaryIO) -> Encoder:
        return JsonEncoder(stream, pretty=self.pretty)


class JsonEncoder(Encoder):
    """Writes records as the elements of one JSON array, batch by batch."""

    takes_columns = True

    def __init__(self, stream: BinaryIO, *, pretty: bool = False) -> None:
        self._stream = stream
        self._pretty = pretty
        self._count = 0
        self._finished = False

    def write(self, records: Batch) -> None:
        if self._finished:
            raise FatalError("write() after finish()")
        if not records:
            return
        if isinstance(records, ColumnBatch):
            lines = None if self._pretty else records.ndjson()
            if lines is not None:
                # JSON Lines have no raw line break inside a value: each one ends a record
                body = lines[:-1].replace(b"\n", b",")
                self._stream.write((b"[" if self._count == 0 else b",") + body)
                self._count += len(records)
                return
            records = records.records()
        option = orjson.OPT_INDENT_2 if self._pretty else 0
        try:
            # One orjson call per batch: its array without the brackets is our elements.
            array = orjson.dumps(records, default=dump_default, option=option)
        except TypeError:
            try:
                array = orjson.dumps(exact_ints(records), default=dump_default, option=option)
            except (TypeError, RecursionError):
                raise locate_encode_error(records, self._count) from None
        refuse_non_finite(records, array, self._count)
        if self._pretty:
            body, head, sep = array[2:-2], b"[\n", b",\n"
        else:
            body, head, sep = array[1:-1], b"[", b","
        self._stream.write((head if self._count == 0 else sep) + body)
        self._count += len(records)

    def finish(self) -> None:
        if self._finished:
            return
        self._finished = True
        if self._count == 0:
            self._stream.write(b"[]\n")
        else:
            self._stream.write(b"\n]\n" if self._pretty else b"]\n")

    def framing(self) -> Framing:
        if self._pretty:
            return Framing(len(b"[\n"), b",\n", len(b"\n]\n"))
        return Framing(len(b"["), b",", len(b"]\n"))


def dump_default(value: Any) -> Any:
    """orjson fallback: decimals as exact JSON numbers, sets as lists."""
    if isinstance(value, Decimal) and value.is_finite():
        return orjson.Fragment(str(value))
    if isinstance(value, set | frozenset):
        return list(value)
    raise TypeError(f"type {type(value).__name__} is not JSON serializable")


def locate_encode_error(records: Batch, offset: int) -> DataError:
    """Find which record of a batch orjson refused, to name it in the error."""
    for index, record in enumerate(records):
        try:
            orjson.dumps(exact_ints(record), default=dump_default)
        except RecursionError:
            return CodecError(
                "json.unencodable", "record nested too deeply for JSON", record=offset + index + 1
            )
        except TypeError as exc:
            return CodecError(
                "json.unencodable", f"cannot encode as JSON: {exc}", record=offset + index + 1
            )
    return CodecError("json.unencodable", "cannot encode as JSON")


def exact_ints(value: Any) -> Any:
    """``value`` with integers orjson cannot hold (past 64 bits) as exact JSON numbers."""
    kind = type(value)
    if kind is int and not -(2**63) <= value < 2**64:
        return orjson.Fragment(str(value))
    if kind is dict:
        return {k: exact_ints(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [exact_ints(v) for v in value]
    return value


def refuse_non_finite(records: Batch, encoded: bytes | bytearray, offset: int) -> None:
    """Raise for a NaN or infinite float, which orjson would have written as ``null``."""
    nulls = encoded.count(b"null")
    if not nulls:
        return
    # Every `null` written is a None, a NaN/infinity or text inside a string: when the
    # records' top-level Nones account for all of them, there is no NaN to find.
    if list(chain.from_iterable(map(dict.values, records))).count(None) == nulls:
        return
    for index, record in enumerate(records):
        path = _non_finite_path(record, "")
        if path is not None:
            raise CodecError(
                "json.non-finite",
                f"cannot encode as JSON: {path.lstrip('.')} is not a finite number"
                " (RFC 8259 has no NaN or Infinity)",
                record=offset + index + 1,
            )


def _non_finite_path(value: Any, path: str) -> str | None:
    kind = type(value)
    if kind is float:
        return None if math.isfinite(value) else f"{path} ({value})"
    if kind is dict:
        for key, item in value.items():
            if type(item) in _CONTAINERS:
                found = _non_finite_path(item, f"{path}.{key}")
                if found is not None:
                    return found
    elif kind in (list, tuple):
        for i, item in enumerate(value):
            if type(item) in _CONTAINERS:
                found = _non_finite_path(item, f"{path}[{i}]")
                if found is not None:
                    return found
    return None


_CONTAINERS = frozenset({float, dict, list, tuple})


class _Scanner:
    """A sliding text window over a byte stream that knows the byte offset and line of its start."""

    def __init__(self, stream: BinaryIO, source: str, non_finite: NonFinite = "refuse") -> None:
        self._stream = stream
        self._source = source
        self._scan = _SCANNERS[non_finite]
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._bytes_read = 0
        self._eof = False
        self._started = False
        self.buf = ""
        self.pos = 0
        self._start = 0  # where the last parsed value began, for locating its rejection
        # Where buf[0] sits in the input: byte offset, 1-based line, 0-based column.
        self._base_offset = 0
        self._base_line = 1
        self._base_column = 0

    def items(self) -> Iterator[Record | Rejected]:
        """Objects of every top-level document, array elements one by one; others rejected."""
        document = 0
        while (char := self._peek()) != "":
            document += 1
            if char == "[":
                yield from self._array()
                continue
            value = self._value()
            if type(value) is dict:
                yield value
            else:
                reason = f"document {document} is {json_type_name(value)}, not an object"
                yield Rejected(value, reason, self._location(self._start))

    def _array(self) -> Iterator[Record | Rejected]:
        self.pos += 1
        if self._peek() == "]":
            self.pos += 1
            return
        index = 0
        scan = self._scan
        while True:
            # Fast path: the element parses inside the window and a delimiter follows at once;
            # anything else (window edge, blanks, errors) takes the careful methods.
            buf, start = self.buf, self.pos
            try:
                value, end = scan(buf, start)
            except (StopIteration, ValueError, _NonFiniteNumber, RecursionError):
                end = len(buf)  # the careful path below says what is wrong, and where
            if end < len(buf):
                self._start, self.pos = start, end
                char = buf[end]
                if char in _BLANK:
                    char = self._peek()
            else:
                value = self._value()
                char = self._peek()
            if type(value) is dict:
                yield value
            else:
                reason = f"array element [{index}] is {json_type_name(value)}, not an object"
                yield Rejected(value, reason, self._location(self._start))
            index += 1
            if char == ",":
                self.pos += 1
                if self.pos >= len(self.buf) or self.buf[self.pos] in _BLANK:
                    if self._peek() == "]":
                        raise self._error("trailing comma before ']'", self.pos)
                elif self.buf[self.pos] == "]":
                    raise self._error("trailing comma before ']'", self.pos)
            elif char == "]":
                self.pos += 1
                return
            elif char == "":
                raise self._error("unterminated array: expected ',' or ']'", self.pos)
            else:
                raise self._error("expected ',' or ']' after an array element", self.pos)

    def _value(self) -> Any:
        """Parse the value at ``pos``, reading more input when the value runs past the window."""
        while True:
            try:
                value, end = self._scan(self.buf, self.pos)
            except StopIteration as stop:
                message, at = "Expecting value", int(stop.value)
            except json.JSONDecodeError as exc:
                message, at = exc.msg, exc.pos
            except _NonFiniteNumber as exc:
                raise self._non_finite(exc.text) from None
            except RecursionError:
                raise self._error(
                    "value nested too deeply to read", self.pos, code="json.depth"
                ) from None
            except ValueError as exc:  # int(): more digits than Python converts
                raise self._error(
                    f"number too long: {exc}", self.pos, code="json.number-too-long"
                ) from None
            else:
                if end < len(self.buf) or self._eof:
                    self._start, self.pos = self.pos, end
                    return value
                # A number or literal ending at the window's edge may continue in the next read.
                self._fill(grow=True)
                continue
            cut = at >= len(self.buf) - _TRUNCATION_MARGIN
            if self._eof or not (cut or message.startswith("Unterminated string")):
                raise self._error(message, at)
            self._fill(grow=True)

    def _peek(self) -> str:
        """The next non-blank character (``pos`` moved onto it), or "" at the end of input."""
        while True:
            self.pos = _skip_ws(self.buf, self.pos).end()
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if self._eof:
                return ""
            self._fill()

    def _fill(self, *, grow: bool = False) -> None:
        """Drop the consumed text and append the next read (at least doubling when growing)."""
        self._drop()
        size = max(_READ_SIZE, len(self.buf)) if grow else _READ_SIZE
        while True:
            data = self._stream.read(size)
            if not data:
                self._eof = True
                break
            self._bytes_read += len(data)
            if self._append(data, final=False):
                return
        self._append(b"", final=True)

    def _append(self, data: bytes, *, final: bool) -> bool:
        try:
            text = self._decoder.decode(data, final)
        except UnicodeDecodeError as exc:
            offset = self._bytes_read - len(exc.object) + exc.start
            line = self._base_line + self.buf.count("\n") + exc.object[: exc.start].count(b"\n")
            raise DataError(
                f"invalid UTF-8: {exc.reason}", source=self._source, line=line, offset=offset
            ) from None
        if not self._started and text:
            self._started = True
            if text.startswith("\ufeff"):  # a byte order mark, however the reads cut it
                text = text[1:]
                self._base_offset = len(_BOM)
        self.buf += text
        return bool(text)

    def _drop(self) -> None:
        if self.pos == 0:
            return
        gone = self.buf[: self.pos]
        self.buf = self.buf[self.pos :]
        self.pos = 0
        self._base_offset += len(gone.encode("utf-8"))
        newline = gone.rfind("\n")
        if newline >= 0:
            self._base_line += gone.count("\n")
            self._base_column = len(gone) - newline - 1
        else:
            self._base_column += len(gone)

    def _position(self, pos: int) -> tuple[int, int, int]:
        """Line, column (both 1-based) and byte offset of ``buf[pos]``."""
        line = self._base_line + self.buf.count("\n", 0, pos)
        newline = self.buf.rfind("\n", 0, pos)
        column = pos - newline if newline >= 0 else self._base_column + pos + 1
        offset = self._base_offset + len(self.buf[:pos].encode("utf-8"))
        return line, column, offset

    def _location(self, pos: int) -> str:
        line, _, _ = self._position(pos)
        return f"{self._source}:{line}"

    def _error(self, message: str, pos: int, *, code: str = "json.malformed") -> DataError:
        line, column, offset = self._position(pos)
        return CodecError(
            code,
            f"malformed JSON: {message}",
            source=self._source,
            line=line,
            column=column,
            offset=offset,
        )

    def _non_finite(self, text: str) -> DataError:
        """The error for NaN, Infinity or an overflowing number, at the number itself."""
        at = self.pos
        for match in _TOKEN.finditer(self.buf, self.pos):
            if match.group(1) == text:
                at = match.start()
                break
        what = (
            "is not a JSON number (RFC 8259 has no NaN or Infinity)"
            if text.lstrip("-") in ("NaN", "Infinity")
            else "is too large for a float"
        )
        return self._error(
            f'{text[:40]} {what}; set `non_finite = "null"` to read it as null',
            at,
            code="json.non-finite",
        )


def json_type_name(value: object) -> str:
    """A JSON name for a decoded value's type, for rejection messages."""
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"
