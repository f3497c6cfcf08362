"""The codec contract: bytes to records (streaming) and records to bytes."""

from __future__ import annotations

import codecs
import io
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar, NamedTuple, cast

from pydantic import BaseModel, ConfigDict

from engine.errors import DataError
from engine.records import Batch, Chunk

__all__ = [
    "CodecConfig",
    "CodecError",
    "DecodeAt",
    "Encoder",
    "Framing",
    "RecordCuts",
    "known_encoding",
    "line_starts",
]


def known_encoding(value: str) -> str:
    """Validate a codec's ``encoding`` option: a text encoding Python knows."""
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(f"unknown text encoding {value!r}") from None
    return value


class CodecError(DataError):
    """Bad input to a codec, with a stable ``code`` (``json.non-finite``) beside the location.

    Without a source (an encoder does not know its file) the record number leads instead
    of a placeholder: ``record 3: cannot encode as JSON: ... [json.unencodable]``; the
    sink running the encoder adds its own name and path.
    """

    def __init__(self, code: str, message: str, **where: Any) -> None:
        self.code = code
        super().__init__(message, **where)

    def _render(self) -> str:
        if self.source is None:
            where = f"record {self.record}: " if self.record is not None else ""
            text = where + self.reason
        else:
            text = super()._render()
        return f"{text} [{self.code}]"


@dataclass(slots=True)
class DecodeAt:
    """Where a resumable decode starts and how far it went: ``line`` physical lines and
    ``offset`` bytes precede the stream's position; the decoder sets ``done`` (lines consumed
    from the file's start) and ``names`` (the column names in use) before each chunk it
    yields."""

    line: int = 0
    names: list[str] | None = None
    done: int = 0
    offset: int = 0


class RecordCuts:
    """Where an input is cut into byte ranges that start where records start: just after
    a ``\\n``; with ``quote``, one outside quoted fields (where the quotes counted from
    the previous cut, a record start, are even, so quoted line breaks and doubled quotes
    inside quoted fields are stepped over). Each cut comes with the line breaks before it
    (``\\n``; with ``crlf``, ``\\r\\n``, ``\\r`` and ``\\n`` alike), for locations.

    One cut at a time (:meth:`after`), so that a run can read its first ranges while
    the later ones are still being found; the input is read once, in ``block``-byte
    reads, quotes and breaks counted as they are read."""

    def __init__(
        self, quote: bytes | None = None, *, crlf: bool = False, block: int = 1 << 22
    ) -> None:
        self.quote = quote
        self.crlf = crlf
        self.block = block

    def after(
        self, stream: BinaryIO, start: int, lines: int, step: int, size: int
    ) -> tuple[int, int] | None:
        """The first cut at least ``step`` bytes after ``start`` (a cut, with ``lines``
        line breaks before it) in ``stream`` of ``size`` bytes, with the line breaks
        before it; None when the input ends first (a cut at its very end is none)."""
        target = start + step
        if target >= size:
            return None
        stream.seek(start)
        readinto = cast(io.RawIOBase, stream).readinto
        scan = _Scan(self.quote, self.crlf)
        buffer = bytearray(self.block)
        at = start  # the offset of the buffer in the stream
        while length := readinto(buffer):
            data = buffer if length == self.block else buffer[:length]
            i = 0
            if target - at >= length:
                scan.take(data, 0, length)
                at += length
                continue
            if target >= at:  # the target is in this block: the cut is a break after it
                scan.take(data, 0, target - at)
                i = target - at
            while (brk := data.find(b"\n", i)) >= 0:
                scan.take(data, i, brk + 1)
                i = brk + 1
                if not scan.odd:
                    cut = at + i
                    return None if cut >= size else (cut, lines + scan.lines)
            scan.take(data, i, length)
            at += length
        return None

    def breaks(self, stream: BinaryIO, start: int, size: int) -> int:
        """The line breaks from ``start`` (a cut) to ``size`` bytes into ``stream``."""
        stream.seek(start)
        readinto = cast(io.RawIOBase, stream).readinto
        scan = _Scan(None, self.crlf)
        buffer = bytearray(self.block)
        at = start
        while at < size and (length := readinto(buffer)):
            length = min(length, size - at)
            scan.take(buffer, 0, length)
            at += length
        return scan.lines


def line_starts(
    stream: BinaryIO,
    step: int,
    quote: bytes | None = None,
    *,
    crlf: bool = False,
    block: int = 1 << 22,
) -> list[tuple[int, int]]:
    """Every cut :class:`RecordCuts` finds in ``stream``, ``step`` bytes apart, 0 first,
    each with the line breaks before it."""
    cuts = RecordCuts(quote, crlf=crlf, block=block)
    size = stream.seek(0, io.SEEK_END)
    found = [(0, 0)]
    while (cut := cuts.after(stream, *found[-1], step, size)) is not None:
        found.append(cut)
    return found


class _Scan:
    """The parity of quotes and the count of line breaks of the bytes taken so far."""

    __slots__ = ("cr", "crlf", "lines", "odd", "quote")

    def __init__(self, quote: bytes | None, crlf: bool) -> None:
        self.quote = quote
        self.crlf = crlf
        self.odd = 0
        self.lines = 0
        self.cr = False  # the last byte taken was a CR (an LF next ends the same line)

    def take(self, data: bytearray, start: int, end: int) -> None:
        if start >= end:
            return
        if self.quote:
            self.odd ^= data.count(self.quote, start, end) & 1
        self.lines += data.count(b"\n", start, end)
        if self.crlf:
            if self.cr and data[start] == 0x0A:
                self.lines -= 1
            # a CR is a break of its own where no LF follows: most inputs have none
            if data.find(b"\r", start, end) >= 0 and LONE_CR.search(data, start, end):
                self.lines += data.count(b"\r", start, end) - data.count(b"\r\n", start, end)
            self.cr = data[end - 1] == 0x0D


#: a CR that ends a line of its own (no LF after it)
LONE_CR = re.compile(rb"\r(?!\n)")


class Framing(NamedTuple):
    """How outputs written in pieces join into the output one encoder writes: every piece
    but the first drops its first ``head`` bytes, every piece but the last its last
    ``tail`` bytes, and ``sep`` goes between two pieces."""

    head: int
    sep: bytes
    tail: int


class Encoder(ABC):
    """Writes records to a binary stream; ``finish`` writes any trailer (e.g. ``]``)."""

    #: ``write`` takes column batches (engine.columnar) as they are; other encoders are
    #: given their records
    takes_columns: ClassVar[bool] = False

    @abstractmethod
    def write(self, records: Batch) -> None: ...

    def finish(self) -> None:  # noqa: B027 - an optional hook: most encoders have no trailer
        pass

    def state(self) -> dict[str, object] | None:
        """What a later encoder needs to go on appending to this output (None: it cannot)."""
        return None

    def resume(self, state: dict[str, object]) -> None:
        """Go on after the output another encoder wrote, as :meth:`state` described it."""
        raise NotImplementedError

    def framing(self) -> Framing | None:
        """After ``finish``: how this output joins others of the same codec written in
        pieces (None: it cannot)."""
        return None


class CodecConfig(BaseModel, ABC):
    """A codec's options; ``type`` names the codec. Decoding streams: memory stays flat."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    #: The file extensions (no dot) this codec claims, each with the options it implies;
    #: the codec registry maps paths to codecs from these, and from nothing else.
    extensions: ClassVar[Mapping[str, Mapping[str, object]]] = {}

    type: str

    #: Outputs written in pieces join into one (its encoder's ``framing`` says how).
    joinable: ClassVar[bool] = False

    def __hash__(self) -> int:
        """Hashable like any frozen model, although options such as ``types`` are dicts."""
        values = (
            tuple(sorted(v.items())) if isinstance(v, dict) else v for v in self.__dict__.values()
        )
        return hash((type(self), *values))

    @abstractmethod
    def decode(self, stream: BinaryIO, *, source: str, batch_size: int = 1000) -> Iterator[Chunk]:
        """Yield chunks of at most ``batch_size`` records.

        A record that cannot be decoded but leaves the stream readable (a malformed CSV row)
        goes into ``Chunk.rejected`` with its location; an error that leaves the rest
        unreadable raises :class:`engine.errors.DataError` naming ``source`` and the
        line or byte offset. Records already yielded stay delivered.
        """

    @abstractmethod
    def encoder(self, stream: BinaryIO) -> Encoder: ...

    #: ``decode_columns`` spends its time outside the GIL (in polars): a source runs it in
    #: a worker thread, beside the stages after it
    columns_in_thread: ClassVar[bool] = False

    def reads_columns(self) -> bool:
        """Whether :meth:`decode_columns` can decode this input (the columnar path)."""
        return False

    def decode_columns(
        self, stream: BinaryIO, *, source: str, at: DecodeAt, batch_size: int = 1000
    ) -> Iterator[Chunk]:
        """Like ``decode``, with each chunk's records a column batch
        (:class:`engine.columnar.ColumnBatch`); only when :meth:`reads_columns`."""
        raise NotImplementedError

    def line_ends(self) -> re.Pattern[bytes] | None:
        """The line breaks of the byte stream when ``decode`` can resume at a line start
        (it takes ``at: DecodeAt``); None when it cannot."""
        return None

    def record_cuts(self) -> RecordCuts | None:
        """How this codec's inputs are cut into byte ranges that start where records
        start (each read by a ``decode`` resumed there), with the line breaks
        (:meth:`line_ends`) before each cut. None when this codec cannot cut its input."""
        return None
