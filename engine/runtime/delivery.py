"""Delivery tracking: a source's chunk is acknowledged once every sink has published it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import anyio

from engine.components.base import Sink, Source
from engine.runtime.observer import RunObserver

__all__ = ["Delivery", "Held"]


@dataclass(slots=True)
class Delivery:
    """Pieces of one acknowledgeable source chunk still in flight; the source is told at zero."""

    source: Source[Any]
    token: object
    pending: int = 1

    async def release(self) -> None:
        self.pending -= 1
        if self.pending == 0:
            await self.source.ack(self.token)

    async def fail(self, *, permanent: bool) -> None:
        """A sink could not deliver part of this chunk: the source may dead-letter or requeue."""
        self.pending = -1  # never acked now
        await self.source.nack(self.token, permanent=permanent)


@dataclass(slots=True)
class Held:
    """What one sink has written but not yet published: the deliveries it holds back."""

    sink: Sink[Any]
    #: the acknowledging sources upstream of the sink
    sources: tuple[Source[Any], ...] = ()
    deliveries: list[Delivery] = field(default_factory=list)
    staged: bool = False  # written since the last publish

    def due_now(self) -> bool:
        """Publish after this write: the sink asks for it, or a source waits for acks."""
        due = self.sink.publish_due()
        if due is None:
            return False
        if due <= 0:
            return True
        return bool(self.deliveries) and any(s.awaits_ack() for s in self.sources)

    def wait(self) -> float | None:
        """How long the sink may wait for more input before it publishes (None: no limit)."""
        if not self.staged:
            return None
        due = self.sink.publish_due()
        return None if due is None else max(due, 0.0)

    async def publish(self, observer: RunObserver) -> None:
        """Trail, then output, then input: the events describing the staged records become
        durable, the sink makes the records durable, and only then is the input released."""
        # shielded: a run failing elsewhere must not cut this between publish and release,
        # or published input would be delivered again by the next run
        with anyio.CancelScope(shield=True):
            if self.staged and (self.deliveries or not self.sink.durable_on_write):
                observer.flush()
                await self.sink.publish()
            self.staged = False
            deliveries, self.deliveries = self.deliveries, []
            for delivery in deliveries:
                await delivery.release()
