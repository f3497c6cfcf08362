"""Bridges an async SFTP file to the codecs' blocking streams, so large files are never loaded."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import asyncssh

from engine.codecs.base import CodecConfig
from engine.records import Chunk

__all__ = ["decode_remote"]

READ_BLOCK = 1 << 20


class _RemoteRaw(io.RawIOBase):
    """A blocking raw stream over an async SFTP file; used from a worker thread only."""

    def __init__(self, file: asyncssh.SFTPClientFile) -> None:
        self._file = file

    async def _read(self, size: int) -> bytes:
        data = await self._file.read(size)
        return data if isinstance(data, bytes) else data.encode()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = anyio.from_thread.run(self._read, len(view))
        view[: len(data)] = data
        return len(data)


_END = object()


async def decode_remote(
    file: asyncssh.SFTPClientFile, codec: CodecConfig, *, source: str, batch_size: int
) -> AsyncIterator[Chunk]:
    """Run the codec's decoder in a worker thread; each block is read from the event loop.

    One thread hop per chunk, not per record: the decoder pulls blocks of ``READ_BLOCK``
    bytes, and asyncssh fetches each block with parallel requests.
    """
    stream = io.BufferedReader(_RemoteRaw(file), READ_BLOCK)
    chunks: Iterator[Chunk] = codec.decode(stream, source=source, batch_size=batch_size)
    try:
        while True:
            chunk = await anyio.to_thread.run_sync(next, chunks, _END)
            if chunk is _END:
                return
            assert isinstance(chunk, Chunk)
            yield chunk
    finally:
        with anyio.CancelScope(shield=True):
            close = getattr(chunks, "close", None)
            if close is not None:
                await anyio.to_thread.run_sync(close)
