"""Items made in a thread of their own, one ahead of the run that takes them.

A source that decodes in a worker thread (CSV into column batches, which polars parses)
would otherwise ask for the next chunk only once the event loop has delivered the one
before, and the loop may be busy with other stages (a map on the batch before): the
decoder then waits, and it is the slowest stage. Here the next chunk is decoded while the
one before is delivered, and no more: at most one chunk waits, made but not taken.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import anyio

__all__ = ["ReadAhead"]

T = TypeVar("T")
R = TypeVar("R")

_STOP = object()


class ReadAhead(Generic[T, R]):
    """``next(items)`` in a thread, one ahead; ``made(item)`` runs in that thread right
    after each item (what must be known of the moment it was made, before the thread
    goes on: the digest of the bytes read for it, where the decoder stands), and
    :meth:`next` gives both. :meth:`close` stops the thread after the item it is making;
    call it before closing what the items are read from."""

    def __init__(self, items: Iterator[T], made: Callable[[T], R], *, name: str) -> None:
        self._items = items
        self._made = made
        self._asked = threading.Semaphore(0)
        self._out: queue.SimpleQueue[tuple[T, R] | BaseException | None] = queue.SimpleQueue()
        self._closing = False
        self._done = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)

    def _work(self) -> None:
        while True:
            self._asked.acquire()
            if self._closing:
                return
            try:
                item = next(self._items, _STOP)
                if item is _STOP:
                    self._out.put(None)
                    return
                self._out.put((item, self._made(item)))  # type: ignore[arg-type]
            except BaseException as exc:  # handed to the run, raised where it takes it
                self._out.put(exc)
                return

    async def next(self) -> tuple[T, R] | None:
        """The next item and what ``made`` said of it (None: no more). Asks for the one
        after it at once, so that it is being made while this one is delivered."""
        if self._done:
            return None
        if self._thread.ident is None:
            self._thread.start()
            self._asked.release()
        out = await anyio.to_thread.run_sync(self._out.get)
        if out is None or isinstance(out, BaseException):
            self._done = True
            if out is not None:
                raise out
            return None
        self._asked.release()
        return out

    async def close(self) -> None:
        """Stop making items; returns once the thread has stopped."""
        self._closing = True
        self._asked.release()
        if self._thread.ident is not None:
            await anyio.to_thread.run_sync(self._thread.join)
