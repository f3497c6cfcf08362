"""Decoding into column batches (:mod:`engine.columnar`) for the columnar path.

CSV is read in byte blocks of about :data:`BLOCK` bytes, each cut after the last line
break outside quotes, and parsed by polars. A block polars cannot read exactly as
``csv.reader`` would (a stray or unbalanced quote, a row of the wrong width, a blank line,
a lone carriage return, a field past ``max_field_size``, bytes that are not UTF-8) hands
the rest of the file to the row decoder from that block's first line, so every error is
reported, located and routed as on the row path.

JSON and JSON Lines are decoded by the row decoders (polars' JSON reader turns a number
in a text column into text and keeps the first of two equal keys, so its records are not
the row path's) and turned into columns for the expressions that follow.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from engine.codecs.base import LONE_CR, DecodeAt
from engine.columnar.batch import ColumnBatch, polars_failures
from engine.records import Batch, Chunk, Record

if TYPE_CHECKING:
    import polars as pl

__all__ = ["BLOCK", "columnize", "decode_csv_blocks"]

#: bytes read per CSV block: one batch on the columnar path. Each block costs a few
#: milliseconds however large (the calls into polars, the stages' hand-overs, its audit
#: events); each MiB more of it adds about 10 MB to a run's peak (docs/columnar.md, Memory)
BLOCK = 3 << 19
_BOM = b"\xef\xbb\xbf"
_COLUMN_TYPES = {str: "String", int: "Int64", float: "Float64", bool: "Boolean"}


def columnize(records: list[Record]) -> ColumnBatch:
    """Decoded records as a column batch, its columns made on first use: each field whose
    values share one JSON type (or are null) becomes a column; the others are left to the
    row path. A filter or a route runs the records as they are (making the columns costs
    more than their compiled expressions); a map makes them."""
    others: list[str] = []

    def frame() -> pl.DataFrame:
        import polars as pl

        names = dict.fromkeys(chain.from_iterable(records))
        columns: dict[str, pl.Series] = {}
        for name in names:
            values = [r.get(name) for r in records]
            kinds = set(map(type, values))
            kinds.discard(type(None))
            kind = kinds.pop() if len(kinds) == 1 else (None if not kinds else object)
            dtype = pl.Null if kind is None else getattr(pl, _COLUMN_TYPES.get(kind, ""), None)
            if dtype is None:
                others.append(name)
                continue
            try:
                columns[name] = pl.Series(name, values, dtype=dtype, strict=True)
            except (OverflowError, TypeError, ValueError, pl.exceptions.PolarsError):
                others.append(name)  # an integer past 64 bits
        if not columns and records:
            # a frame needs a column to have rows: one no record has (so it reads as null)
            spare = "\x00" + "".join(names)
            columns[spare] = pl.Series(spare, [None] * len(records), dtype=pl.Null)
        return pl.DataFrame(columns)

    return ColumnBatch(frame, exact=False, records=records, others=others)


def _cut(data: bytearray, size: int, quote: int, before: int) -> tuple[int, int]:
    """Where a block ends in ``data[:size]`` (read after bytes holding ``before`` quotes):
    after the last line break outside quotes (0: none yet), and how many quotes come
    before it, counting those ``before``."""
    end = size
    while True:
        end = data.rfind(b"\n", 0, end)
        if end < 0:
            return 0, 0
        quotes = before + data.count(quote, 0, end)
        if quotes % 2 == 0:
            return end + 1, quotes


class _Rest(io.RawIOBase):
    """Bytes already read, then the rest of the stream: what the row decoder takes over."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _fill(stream: BinaryIO, window: memoryview) -> int:
    """Read up to ``len(window)`` bytes into ``window`` (fewer only at the end)."""
    readinto = getattr(stream, "readinto", None)
    if readinto is None:
        data = stream.read(len(window))
        window[: len(data)] = data
        return len(data)
    filled = 0
    while filled < len(window):
        n = readinto(window[filled:])
        if not n:
            break
        filled += n
    return filled


RowDecode = Callable[[BinaryIO, DecodeAt], Iterator[Chunk]]


def decode_csv_blocks(
    stream: BinaryIO,
    *,
    delimiter: str,
    quotechar: str,
    max_field_size: int,
    at: DecodeAt,
    rows: RowDecode,
) -> Iterator[Chunk]:
    """Chunks of column batches; ``rows(stream, at)`` decodes the rest on the row path.

    ``at`` as for the row decoder: ``at.names`` set means the header was read before."""

    quote = ord(quotechar)
    sep = delimiter.encode()
    names = at.names
    line = at.line  # physical lines before the pending bytes
    offset = at.offset
    pending = b""
    # one buffer for every read: a block is then the one copy made of it (with the bytes
    # left over from the read before), and large buffers do not churn the heap
    space = bytearray(BLOCK)
    window = memoryview(space)
    while True:
        got = _fill(stream, window)
        if got:
            end, quotes = _cut(space, got, quote, pending.count(quote))
            if not end:
                pending += window[:got]
                continue
            block, pending = b"".join((pending, window[:end])), bytes(window[end:got])
        else:
            block, pending, quotes = pending, b"", pending.count(quote)
            if not block:
                return
        body = block
        lines = block.count(b"\n") + (0 if block.endswith(b"\n") else 1)
        if names is None:
            header = _header(block, delimiter, quotechar, max_field_size)
            if header is None:
                break
            names, size = header
            body = block[size:]
        try:
            frame = _parse(body, names, sep, quotechar, max_field_size, quotes) if body else None
        except polars_failures():
            frame = None
        if body and frame is None:
            if line == at.line and at.names is None:
                names = None  # the header is in this block: the row decoder reads it again
            break
        line += lines
        offset += len(block)
        at.done, at.names = line, names
        block = body = b""  # the frame holds the values: the bytes go while it is delivered
        if frame is not None and frame.height:
            # every column text, none null: _parse makes sure of it
            shape = tuple((name, "str", False) for name in names)
            yield Chunk(cast(Batch, ColumnBatch(frame, exact=True, shape=shape)))
    # the row path from the first line not yet delivered; what it consumed is followed
    rest = DecodeAt(line, names, line, offset)
    for chunk in rows(_Rest(block + pending, stream), rest):  # type: ignore[arg-type]
        at.done, at.names = rest.done, rest.names
        yield chunk


def _header(
    block: bytes, delimiter: str, quotechar: str, max_field_size: int
) -> tuple[list[str], int] | None:
    """The column names of the first record and its size in bytes (None: leave it to the
    row decoder, which says what is wrong with it)."""
    quote = ord(quotechar)
    position = 0
    while True:  # the shortest prefix that ends a line outside quotes
        position = block.find(b"\n", position) + 1
        if not position:
            position = len(block)
            break
        if block.count(quote, 0, position) % 2 == 0:
            break
    try:
        text = block[:position].removeprefix(_BOM).decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        return None
    try:
        csv.field_size_limit(max_field_size)  # process-wide: set before each read, as csv.py does
        row = next(csv.reader([text], delimiter=delimiter, quotechar=quotechar, strict=True), None)
    except csv.Error:
        return None
    if not row or len(set(row)) != len(row) or "\r" in text:
        return None
    return row, position


def _parse(
    body: bytes, names: list[str], sep: bytes, quotechar: str, max_field_size: int, quotes: int
) -> Any:
    """The block as string columns, or None where it may differ from ``csv.reader``."""
    import polars as pl

    if b"\r" in body and LONE_CR.search(body):
        return None  # a lone CR ends a line for csv, not for polars
    if body.startswith(_BOM):
        return None  # polars drops a BOM that starts its input; only the file's is not data
    width = len(names)
    if width == 1 and (body.startswith((b"\n", b"\r\n")) or b"\n\n" in body or b"\n\r\n" in body):
        return None  # csv skips a blank line; polars reads an empty field
    try:
        frame = pl.read_csv(
            body,
            has_header=False,
            new_columns=names,
            schema=dict.fromkeys(names, pl.String),
            separator=sep.decode(),
            quote_char=quotechar,
            empty_string_is_null=False,
            truncate_ragged_lines=False,
            raise_if_empty=False,
            infer_schema=False,
        )
    except pl.exceptions.PolarsError:
        return None
    if frame.width != width:
        return None
    checks = [
        pl.sum_horizontal(pl.all().null_count()).alias("nulls"),
        (pl.col(names[-1]) == "").any().alias("empty_last"),
    ]
    if len(body) > max_field_size:  # else no field can be longer (a third of the checks)
        checks.append(pl.max_horizontal(pl.all().str.len_bytes().max()).alias("longest"))
    nulls, empty_last, *longest = frame.select(checks).row(0)
    if nulls or (longest and (longest[0] or 0) > max_field_size):
        return None
    if empty_last and width > 1:
        # polars fills a short row (or a blank line) with empty fields, csv rejects (skips)
        # it: only a row whose last field is empty may be one; count the separators
        inside = 0
        if quotes:
            counts = frame.select(
                pl.sum_horizontal(pl.all().str.count_matches(sep.decode(), literal=True)).sum()
            )
            inside = int(counts.item() or 0)
        if body.count(sep) != frame.height * (width - 1) + inside:
            return None
    return frame
