"""X12 tokenizer: separators from each ISA header, then segments, streamed.

Tolerates a UTF-8 byte-order mark, CR/LF and indentation between segments, lines
hard-wrapped inside segments (when the terminator is not itself a line break),
non-ASCII terminators and several interchanges with different separators per file.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO, NamedTuple

from engine.codecs.base import CodecError
from engine.errors import DataError

__all__ = ["Delimiters", "Segment", "Tokenizer"]

_READ_SIZE = 1 << 16
_BLANK = " \t\r\n\ufeff"
_ISA_ELEMENTS = 16


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The separators an ISA header declares; ``repetition`` is None before 00402."""

    element: str = "*"
    component: str = ">"
    repetition: str | None = "^"
    segment: str = "~"


class Segment(NamedTuple):
    """One segment: ``elements[0]`` is the tag; ``position`` counts segments in the file."""

    elements: list[str]
    line: int
    position: int


class Tokenizer:
    """Iterates the segments of a byte stream; ``delimiters`` follow the current ISA."""

    def __init__(self, stream: BinaryIO, *, source: str, encoding: str = "utf-8") -> None:
        self._stream = stream
        self.source = source
        self._encoding = encoding
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        self._bytes_read = 0
        self._eof = False
        self.delimiters: Delimiters | None = None

    def _read(self) -> str:
        data = self._stream.read(_READ_SIZE)
        self._eof = not data
        try:
            text = self._decoder.decode(data, final=self._eof)
        except UnicodeDecodeError as exc:
            raise CodecError(
                "x12.encoding",
                f"input is not valid {self._encoding} text: {exc.reason} "
                "(set the codec's `encoding`)",
                source=self.source,
                offset=self._bytes_read + exc.start,
            ) from None
        except UnicodeError as exc:  # e.g. "utf-16" without a byte order mark
            raise CodecError(
                "x12.encoding",
                f"input is not valid {self._encoding} text: {exc} (name the byte order in"
                " the codec's `encoding`, e.g. utf-16-le or utf-16-be)",
                source=self.source,
                offset=self._bytes_read,
            ) from None
        self._bytes_read += len(data)
        return text

    def __iter__(self) -> Iterator[Segment]:
        buf = ""
        line = 1
        index = 0
        while True:
            # Between interchanges: find the next ISA and read its separators.
            while True:
                stripped = buf.lstrip(_BLANK)
                line += buf[: len(buf) - len(stripped)].count("\n")
                buf = stripped
                if len(buf) >= 256 or self._eof:
                    break
                buf += self._read()
            if not buf:
                return
            if not buf.startswith("ISA"):
                hint = (
                    " (NUL bytes between letters: UTF-16 text? set the codec's `encoding`,"
                    " e.g. utf-16-le)"
                    if "\x00" in buf[:8]
                    else ""
                )
                raise CodecError(
                    "x12.structure",
                    f"expected an ISA interchange header, found {buf[:20]!r}{hint}",
                    source=self.source,
                    line=line,
                )
            delimiters, elements, used = self._parse_isa(buf, line)
            self.delimiters = delimiters
            index += 1
            yield Segment(elements, line, index)
            line += buf[:used].count("\n")
            buf = buf[used:]

            term = delimiters.segment
            sep = delimiters.element
            wrapped = term not in "\r\n"
            done = False
            while not done:
                pieces = buf.split(term)
                buf = "" if self._eof else pieces.pop()
                last = len(pieces) - 1 if self._eof else -1  # the piece no terminator ends
                for at, piece in enumerate(pieces):
                    text = piece.lstrip(_BLANK)
                    newlines = piece.count("\n")
                    start = line + piece[: len(piece) - len(text)].count("\n")
                    line += newlines + (term == "\n")
                    if not text:
                        if wrapped and at != last:
                            # `~~`: an empty segment, which the envelope reader reports
                            index += 1
                            yield Segment([""], start, index)
                        continue
                    if wrapped:
                        if newlines or "\r" in text:
                            text = text.replace("\r", "").replace("\n", "")
                    else:
                        text = text.rstrip("\r")
                    elements = text.split(sep)
                    index += 1
                    yield Segment(elements, start, index)
                    if elements[0] == "IEA":
                        # The next interchange may declare other separators.
                        rest = pieces[at + 1 :] if self._eof else [*pieces[at + 1 :], buf]
                        buf = term.join(rest)
                        done = True
                        break
                if done:
                    break
                if self._eof:
                    return
                buf += self._read()

    def _parse_isa(self, buf: str, line: int) -> tuple[Delimiters, list[str], int]:
        """Separators and elements of the ISA at the start of ``buf``; returns chars used."""
        sep = buf[3]
        if sep.isalnum() or sep in _BLANK:
            raise DataError(
                f"ISA element separator {sep!r} is not a valid delimiter",
                source=self.source,
                line=line,
                column=4,
            )
        count = 0
        pos = 3
        kept: list[str] = ["ISA"]
        size = len(buf)
        while pos < size and count < _ISA_ELEMENTS:
            ch = buf[pos]
            if ch == sep:
                count += 1
            if ch not in "\r\n":
                kept.append(ch)
            pos += 1
        while pos < size and buf[pos] in "\r\n":
            pos += 1  # a wrapped line just before ISA16
        if count < _ISA_ELEMENTS or pos + 1 >= size:
            raise DataError(
                "truncated ISA interchange header: expected 16 elements and a segment terminator",
                source=self.source,
                line=line,
            )
        component = buf[pos]
        term = buf[pos + 1]
        kept.append(component)
        elements = "".join(kept).split(sep)
        if term.isalnum() or term in " \t" or term in (sep, component):
            raise DataError(
                f"ISA segment terminator {term!r} after ISA16 is not a valid delimiter "
                "(the ISA must have 16 elements; ISA16 is one character)",
                source=self.source,
                line=line,
            )
        if component.isalnum() or component == sep:
            raise DataError(
                f"ISA16 component separator {component!r} is not a valid delimiter",
                source=self.source,
                line=line,
            )
        version = elements[12]
        marker = elements[11]
        repetition: str | None = None
        if (
            version >= "00402"
            and len(marker) == 1
            and not marker.isalnum()
            and marker not in (sep, component, term)
        ):
            repetition = marker
        return Delimiters(sep, component, repetition, term), elements, pos + 2
