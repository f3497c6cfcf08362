"""JSON Lines: one JSON object per line; a bad line is rejected and reading goes on."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import chain, islice
from typing import Any, BinaryIO, ClassVar, Literal, cast

import orjson
from pydantic import Field

from engine.codecs.base import CodecConfig, DecodeAt, Encoder, Framing, RecordCuts
from engine.codecs.json import (
    NonFinite,
    dump_default,
    exact_ints,
    json_type_name,
    loads_non_finite_as_null,
    locate_encode_error,
    refuse_non_finite,
)
from engine.columnar.batch import ColumnBatch, polars_failures
from engine.records import Batch, Chunk, Record, Rejected
from engine.records.digest import write_through

__all__ = ["JsonlCodec", "JsonlEncoder", "encode_lines"]

_BOM = b"\xef\xbb\xbf"
_LINE_END = re.compile(b"\n")
_FAILED = object()
_ZERO_DIGITS = bytes.maketrans(b"123456789", b"000000000")
_DIGIT_RUN = b"0" * 19


def _long_digits(data: bytes) -> bool:
    """A run of digits that may be an integer orjson cannot hold exactly (past 64 bits).

    translate + find is about 20 times faster than a regular expression here.
    """
    return data.translate(_ZERO_DIGITS).find(_DIGIT_RUN) >= 0


class _Exactly(Exception):
    """The block holds a long digit run: decode it line by line."""


class _Invalid(ValueError):
    """A line the exact (stdlib) reader refuses; shaped like orjson's error."""

    def __init__(self, msg: str, colno: int) -> None:
        super().__init__(msg)
        self.msg = msg
        self.colno = colno


def _exact(line: bytes, non_finite: NonFinite) -> Any:
    """A line read with Python's json module: integers of any size stay exact."""
    try:
        text = line.decode("utf-8")
        if non_finite == "null":
            return loads_non_finite_as_null(text)
        return json.loads(text, parse_constant=_refuse, parse_float=_finite)
    except json.JSONDecodeError as exc:
        raise _Invalid(exc.msg, exc.colno) from None
    except UnicodeDecodeError as exc:
        raise _Invalid(f"invalid UTF-8: {exc.reason}", exc.start + 1) from None
    except (ValueError, RecursionError) as exc:
        raise _Invalid(str(exc) or type(exc).__name__, 1) from None


def _refuse(text: str) -> Any:
    raise ValueError(f"{text} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is too large for a float")
    return value


# What makes orjson refuse a line that a float-tolerant reader would take.
_NON_FINITE = re.compile(rb"NaN|Infinity|[0-9][eE]\+?[0-9]{3}")


def _nulled(line: bytes) -> Any:
    """A line read with NaN, Infinity and overflowing numbers as null (else ``_FAILED``)."""
    try:
        return loads_non_finite_as_null(line.decode("utf-8"))
    except (ValueError, RecursionError):
        return _FAILED


class JsonlCodec(CodecConfig):
    """One JSON object per line (JSON Lines / NDJSON); blank lines are skipped."""

    joinable: ClassVar[bool] = True
    extensions: ClassVar[Mapping[str, Mapping[str, object]]] = {"jsonl": {}, "ndjson": {}}
    type: Literal["jsonl"] = Field("jsonl", description="Codec name.")
    non_finite: NonFinite = Field(
        "refuse",
        description=(
            "`NaN`, `Infinity`, `-Infinity` and numbers too large for a float (`1e400`) are"
            " not JSON (RFC 8259): `refuse` rejects their line; `null` reads them as null."
        ),
    )

    def line_ends(self) -> re.Pattern[bytes]:
        return _LINE_END

    def record_cuts(self) -> RecordCuts:
        return RecordCuts()

    def decode(
        self,
        stream: BinaryIO,
        *,
        source: str,
        batch_size: int = 1000,
        at: DecodeAt | None = None,
    ) -> Iterator[Chunk]:
        """Yield a chunk per ``batch_size`` lines; malformed or non-object lines are rejected.
        ``at``: the stream starts after ``at.line`` lines, and ``at.done`` follows the read."""
        lines: Iterator[bytes] = iter(stream)
        first = next(lines, None)
        if first is None:
            return
        if first.startswith(_BOM):
            first = first[len(_BOM) :]
        lines = chain((first,), lines)
        lineno = at.line if at is not None else 0
        loads = orjson.loads
        while True:
            block = list(islice(lines, batch_size))
            if not block:
                return
            try:
                if _long_digits(b"".join(block)):
                    raise _Exactly  # orjson would read an integer past 64 bits as a float
                values = list(map(loads, block))
            except (orjson.JSONDecodeError, _Exactly):
                chunk = _slow_chunk(block, lineno, source, self.non_finite)
            else:
                if all(type(v) is dict for v in values):
                    chunk = Chunk(values)
                else:
                    chunk = _slow_chunk(block, lineno, source, self.non_finite)
            lineno += len(block)
            if at is not None:
                at.done = lineno
            if chunk.records or chunk.rejected:
                yield chunk

    def reads_columns(self) -> bool:
        return True

    def decode_columns(
        self, stream: BinaryIO, *, source: str, at: DecodeAt, batch_size: int = 1000
    ) -> Iterator[Chunk]:
        """The row decoder's chunks, as columns (engine.codecs.columns)."""
        from engine.codecs.columns import columnize

        for chunk in self.decode(stream, source=source, batch_size=batch_size, at=at):
            yield Chunk(cast(Batch, columnize(chunk.records)), chunk.rejected)

    def encoder(self, stream: BinaryIO) -> Encoder:
        return JsonlEncoder(stream)


class JsonlEncoder(Encoder):
    """Writes each record as one compact orjson line; one ``write`` call per batch."""

    takes_columns = True

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._count = 0

    def write(self, records: Batch) -> None:
        if not records:
            return
        if isinstance(records, ColumnBatch):
            if self._write_columns(records):
                self._count += len(records)
                return
            records = records.records()
        try:
            out = encode_lines(records)
        except TypeError:
            try:
                out = encode_lines(list(map(exact_ints, records)))
            except (TypeError, RecursionError):
                raise locate_encode_error(records, self._count) from None
        refuse_non_finite(records, out, self._count)
        self._stream.write(out)
        self._count += len(records)

    def _write_columns(self, batch: ColumnBatch) -> bool:
        """Write the batch's JSON Lines as polars writes them (False: nothing written, encode
        its records). A file is written by polars itself and read back to be hashed."""
        if not batch.writes_ndjson():
            return False
        try:
            if write_through(self._stream, batch.write_ndjson):
                return True
        except polars_failures():
            return False
        lines = batch.ndjson()
        if lines is None:
            return False
        self._stream.write(lines)
        return True

    def state(self) -> dict[str, object]:
        return {"count": self._count}

    def resume(self, state: dict[str, object]) -> None:
        self._count = int(cast(int, state["count"]))

    def framing(self) -> Framing:
        return Framing(0, b"", 0)


def encode_lines(
    records: Sequence[Any],
    default: Callable[[Any], Any] = dump_default,
    *,
    non_str_keys: bool = False,
) -> bytearray:
    """Records as JSON Lines: one compact orjson object and a newline each (raises
    TypeError for a value neither orjson nor ``default`` can encode, or for a key that is
    not a string unless ``non_str_keys``)."""
    # Appending each line to one buffer at once is ~10x faster than keeping a list of
    # orjson results for a join (each kept result is a separate heap allocation).
    out = bytearray()
    dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    if non_str_keys:
        option |= orjson.OPT_NON_STR_KEYS
    for record in records:
        out += dumps(record, default=default, option=option)
    return out


def _slow_chunk(block: list[bytes], lineno: int, source: str, non_finite: NonFinite) -> Chunk:
    """Decode a block line by line so each bad line is rejected with its own location."""
    records: list[Record] = []
    rejected: list[Rejected] = []
    for number, line in enumerate(block, lineno + 1):
        try:
            value = _exact(line, non_finite) if _long_digits(line) else orjson.loads(line)
        except (orjson.JSONDecodeError, _Invalid) as exc:
            if not line.strip():
                continue
            value = _nulled(line) if non_finite == "null" else _FAILED
            if value is _FAILED:
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                reason = f"invalid JSON at column {exc.colno}: {exc.msg}"
                if _NON_FINITE.search(line):
                    reason += " (RFC 8259 has no NaN or Infinity; see the codec's `non_finite`)"
                rejected.append(Rejected(text, reason, f"{source}:{number}"))
                continue
        if type(value) is dict:
            records.append(value)
        else:
            reason = f"{json_type_name(value)}, not an object"
            rejected.append(Rejected(value, reason, f"{source}:{number}"))
    return Chunk(records, rejected)
