"""Where accepted webhook requests wait for the pipeline, and how they learn they were delivered.

The HTTP handler submits a request's records and waits; the webhook source takes whatever
is queued (up to a batch) as one chunk whose token is the list of waiting requests; when
every sink downstream delivered the chunk the runtime acks it and the handlers answer 2xx.
If the pipeline stops first, every waiting request is failed (the client gets a 503 and
retries) — a request is never answered 2xx before its records are delivered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from engine.errors import TransientError
from engine.records import Batch, Chunk

__all__ = ["Intake", "IntakeClosed", "Pending"]


class IntakeClosed(TransientError):
    """The pipeline is not taking requests (not started, stopping, or failed): the sender
    is told to retry (503)."""


class Pending:
    """One request's records, waiting to be delivered."""

    __slots__ = ("_done", "error", "records")

    def __init__(self, records: Batch) -> None:
        self.records = records
        self.error: str | None = None
        self._done = anyio.Event()

    def accept(self) -> None:
        self._done.set()

    def fail(self, reason: str) -> None:
        if not self._done.is_set():
            self.error = reason
            self._done.set()

    async def wait(self, timeout: float) -> bool:
        """True once delivered; False on timeout; raises IntakeClosed if the pipeline failed."""
        with anyio.move_on_after(timeout):
            await self._done.wait()
        if self.error is not None:
            raise IntakeClosed(self.error)
        return self._done.is_set()


class Intake:
    """A bounded queue between the HTTP handlers and one webhook source."""

    def __init__(self, capacity: int = 1024) -> None:
        self._send: MemoryObjectSendStream[Pending]
        self._receive: MemoryObjectReceiveStream[Pending]
        self._send, self._receive = anyio.create_memory_object_stream[Pending](capacity)
        self._outstanding: set[Pending] = set()
        self.open = False

    async def submit(self, records: Batch) -> Pending:
        if not self.open:
            raise IntakeClosed("the pipeline is not running")
        pending = Pending(records)
        self._outstanding.add(pending)
        try:
            await self._send.send(pending)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._outstanding.discard(pending)
            raise IntakeClosed("the pipeline is not running") from None
        return pending

    async def chunks(self, max_records: int) -> AsyncIterator[Chunk]:
        """What the webhook source yields: queued requests grouped up to ``max_records``."""
        self.open = True
        try:
            while True:
                try:
                    first = await self._receive.receive()
                except anyio.EndOfStream:
                    return
                group = [first]
                count = len(first.records)
                while count < max_records:
                    try:
                        item = self._receive.receive_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    group.append(item)
                    count += len(item.records)
                records = (
                    first.records if len(group) == 1 else [r for p in group for r in p.records]
                )
                yield Chunk(records, token=group)
        finally:
            self.open = False

    def acknowledge(self, token: object) -> None:
        for pending in _requests(token):
            pending.accept()
            self._outstanding.discard(pending)

    def refuse(self, token: object, reason: str) -> None:
        """A sink could not deliver these requests' records: their clients get a 503."""
        for pending in _requests(token):
            pending.fail(reason)
            self._outstanding.discard(pending)

    def close(self, reason: str = "the pipeline stopped") -> None:
        """No more requests; fail every one not yet delivered."""
        self.open = False
        self._send.close()
        self._receive.close()
        for pending in list(self._outstanding):
            pending.fail(reason)
        self._outstanding.clear()


def _requests(token: object) -> list[Pending]:
    """The waiting requests a chunk's token stands for."""
    return [p for p in token if isinstance(p, Pending)] if isinstance(token, list) else []
