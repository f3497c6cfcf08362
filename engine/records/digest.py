"""SHA-256 of the bytes a source reads or a sink writes, per batch, as they pass.

A file source hands its stream through :class:`HashingReader` (a file sink through
:class:`HashingWriter`), so the digest costs one pass of SHA-256 over bytes already in
memory and nothing is encoded again. Each batch gets a :class:`ContentDigest` of the
bytes read or written since the batch before it, with their byte offsets, so anyone
holding the file can recompute it.

The bytes are hashed in the thread that moves them. Handing each buffer to a hashing
thread costs more than it saves where SHA-256 runs in hardware (1.7 GB/s here, about 3%
of a CSV-to-JSON Lines run): every buffer and every batch's digest would cross threads
and take the GIL back (measured: a run 5-7% slower than hashing in place).
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["ContentDigest", "Digester", "HashingReader", "HashingWriter", "write_through"]

#: bytes read back at a time to hash what a writer wrote to a file itself
_READ_BACK = 1 << 20


@dataclass(frozen=True, slots=True)
class ContentDigest:
    """SHA-256 (hex) of bytes ``start``..``end`` of a source's input or a sink's output."""

    digest: str
    start: int
    end: int
    # The bytes are exactly the batch's records as JSON Lines (a JSON Lines file sink
    # wrote them), which is also how the records themselves are digested.
    records_jsonl: bool = False


class Digester:
    """Wraps the streams of a run's sources and sinks so that what they move is hashed."""

    def reader(self, stream: BinaryIO, start: int = 0) -> HashingReader:
        """``stream`` as a buffered reader whose every byte read is hashed; ``start``: the
        byte offset of the stream's position (the ranges of a resumed read go on from it)."""
        reader = HashingReader(stream)
        reader._raw.stretch.restart(start)
        return reader

    def writer(self, stream: BinaryIO, start: int = 0) -> HashingWriter:
        """``stream`` as a writer whose every byte written is hashed (from offset ``start``)."""
        writer = HashingWriter(stream)
        writer._stretch.restart(start)
        return writer


class _Stretch:
    """The bytes passed through a stream since the last ``take``: hashed as they pass."""

    def __init__(self) -> None:
        self._hasher = hashlib.sha256()
        self._start = 0
        self.position = 0

    def restart(self, position: int) -> None:
        self._start = self.position = position

    def add(self, data: bytes | memoryview) -> None:
        self.position += len(data)
        self._hasher.update(data)

    def take(self, records_jsonl: bool = False) -> ContentDigest:
        digest = ContentDigest(self._hasher.hexdigest(), self._start, self.position, records_jsonl)
        self._hasher = hashlib.sha256()
        self._start = self.position
        return digest


class _HashingRaw(io.RawIOBase):
    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        self.stretch = _Stretch()

    @property
    def name(self) -> str:
        return str(getattr(self._stream, "name", "<stream>"))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        fill = getattr(self._stream, "readinto", None)
        if fill is not None:  # straight into the buffer: no copy
            n = fill(buffer) or 0
        else:
            data = self._stream.read(len(buffer))
            n = len(data)
            buffer[:n] = data
        if n:
            self.stretch.add(buffer[:n])
        return n

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            super().close()


class HashingReader(io.BufferedReader):
    """A buffered reader that hashes what it reads; :meth:`take` closes one chunk's digest."""

    def __init__(self, stream: BinaryIO, buffer_size: int = 1 << 16) -> None:
        self._raw = _HashingRaw(stream)
        super().__init__(self._raw, buffer_size)

    def take(self) -> ContentDigest:
        """The digest of the bytes read from the file since the last ``take``."""
        return self._raw.stretch.take()


class HashingWriter(io.RawIOBase):
    """Passes writes through, hashing them; :meth:`take` closes one batch's digest."""

    def __init__(self, stream: BinaryIO) -> None:
        super().__init__()
        self._stream = stream
        self._stretch = _Stretch()
        self._back: memoryview | None = None

    @property
    def name(self) -> str:
        return str(getattr(self._stream, "name", "<stream>"))

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        chunk = bytes(data)
        written = self._stream.write(chunk)
        if chunk:
            self._stretch.add(chunk)
        return written if written is not None else len(chunk)

    def flush(self) -> None:
        self._stream.flush()

    def write_through(self, produce: Callable[[BinaryIO], object]) -> bool:
        """Let ``produce`` write to the file itself (polars writes a file it has the
        descriptor of without going through Python), then hash what it wrote, read back
        from the page cache. False, with nothing written: the stream is no file that can
        be read back; write bytes instead."""
        target = self._stream
        try:
            fd = target.fileno()
            readable = target.readable() and target.seekable()
        except (AttributeError, OSError, ValueError):
            return False
        if not readable:
            return False
        target.flush()
        start = target.tell()
        _produce(target, start, produce)
        position, end = start, target.tell()
        if self._back is None:  # one buffer for every read back: no memory to churn
            self._back = memoryview(bytearray(_READ_BACK))
        while position < end:
            read = os.preadv(fd, [self._back[: min(_READ_BACK, end - position)]], position)
            if not read:
                raise OSError(f"{self.name} is shorter than what was just written to it")
            self._stretch.add(self._back[:read])
            position += read
        return True

    def take(self, *, records_jsonl: bool = False) -> ContentDigest:
        """The digest of the bytes written since the last ``take``."""
        return self._stretch.take(records_jsonl)

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()  # flushes the stream first
        finally:
            self._stream.close()


def write_through(stream: BinaryIO, produce: Callable[[BinaryIO], object]) -> bool:
    """``produce`` writes to ``stream``'s file itself, hashed if ``stream`` hashes (see
    :meth:`HashingWriter.write_through`); False, with nothing written: ``stream`` is not a
    file, write bytes to it instead."""
    if isinstance(stream, HashingWriter):
        return stream.write_through(produce)
    if not isinstance(stream, io.BufferedWriter | io.BufferedRandom | io.FileIO):
        return False
    stream.flush()
    _produce(stream, stream.tell(), produce)
    return True


def _produce(target: BinaryIO, start: int, produce: Callable[[BinaryIO], object]) -> None:
    """``produce`` writes to ``target`` from ``start``; if it fails part way, what it wrote
    is cut off again (a batch is in the file whole or not at all)."""
    try:
        produce(target)
        target.flush()
    except BaseException:
        target.seek(start)
        target.truncate()
        raise
