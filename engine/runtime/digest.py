"""SHA-256 of the bytes a source reads or a sink writes, per batch, on a background thread.

Hashing a buffer larger than 2 KiB releases the GIL, so a file source that hands its
stream through :class:`HashingReader` (or a file sink through :class:`HashingWriter`)
pays almost nothing for the digest: the bytes are hashed on the other core while the
codec works. Each batch gets a :class:`ContentDigest` of the bytes read or written since
the batch before it, with their byte offsets, so anyone holding the file can recompute it.
"""

from __future__ import annotations

import hashlib
import io
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

__all__ = ["ContentDigest", "Digester", "HashingReader", "HashingWriter"]


@dataclass(frozen=True, slots=True)
class ContentDigest:
    """SHA-256 (hex, or a future of it) of bytes ``start``..``end`` of a source's input."""

    digest: str | Future[str]
    start: int
    end: int
    # The bytes are exactly the batch's records as JSON Lines (a JSON Lines file sink
    # wrote them), which is also how the records themselves are digested.
    records_jsonl: bool = False


class Digester:
    """One background thread that hashes in submission order; close it when done.

    At most ``pending`` buffers wait to be hashed: a reader faster than the hashing
    waits for it rather than holding the whole input in memory.
    """

    def __init__(self, pending: int = 64) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-digest")
        self._slots = threading.BoundedSemaphore(pending)

    def reader(self, stream: BinaryIO) -> HashingReader:
        """``stream`` as a buffered reader whose every byte read is hashed."""
        return HashingReader(stream, self)

    def writer(self, stream: BinaryIO) -> HashingWriter:
        """``stream`` as a writer whose every byte written is hashed."""
        return HashingWriter(stream, self)

    def update(self, hasher: hashlib._Hash, data: bytes) -> None:
        self._slots.acquire()
        try:
            done = self._pool.submit(hasher.update, data)
        except BaseException:
            self._slots.release()
            raise
        done.add_done_callback(self._release)

    def _release(self, _done: Future[None]) -> None:
        self._slots.release()

    def hexdigest(self, hasher: hashlib._Hash) -> Future[str]:
        return self._pool.submit(hasher.hexdigest)

    def close(self) -> None:
        """Finish every pending hash, then stop the thread."""
        self._pool.shutdown(wait=True)


class _Stretch:
    """The bytes passed through a stream since the last ``take``: hashed as they pass."""

    def __init__(self, digester: Digester) -> None:
        self._digester = digester
        self._hasher = hashlib.sha256()
        self._start = 0
        self.position = 0

    def add(self, data: bytes) -> None:
        self.position += len(data)
        self._digester.update(self._hasher, data)

    def take(self, records_jsonl: bool = False) -> ContentDigest:
        digest = ContentDigest(
            self._digester.hexdigest(self._hasher), self._start, self.position, records_jsonl
        )
        self._hasher = hashlib.sha256()
        self._start = self.position
        return digest


class _HashingRaw(io.RawIOBase):
    def __init__(self, stream: BinaryIO, digester: Digester) -> None:
        super().__init__()
        self._stream = stream
        self.stretch = _Stretch(digester)

    @property
    def name(self) -> str:
        return str(getattr(self._stream, "name", "<stream>"))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        n = len(data)
        if n:
            buffer[:n] = data
            self.stretch.add(data)
        return n

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            super().close()


class HashingReader(io.BufferedReader):
    """A buffered reader that hashes what it reads; :meth:`take` closes one chunk's digest."""

    def __init__(self, stream: BinaryIO, digester: Digester, buffer_size: int = 1 << 16) -> None:
        self._raw = _HashingRaw(stream, digester)
        super().__init__(self._raw, buffer_size)

    def take(self) -> ContentDigest:
        """The digest of the bytes read from the file since the last ``take``."""
        return self._raw.stretch.take()


class HashingWriter(io.RawIOBase):
    """Passes writes through, hashing them; :meth:`take` closes one batch's digest."""

    def __init__(self, stream: BinaryIO, digester: Digester) -> None:
        super().__init__()
        self._stream = stream
        self._stretch = _Stretch(digester)

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
