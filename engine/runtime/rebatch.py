"""Re-batching on the channel into a transform or a sink: how the runtime applies ``batch``.

A message on a channel is a batch and the deliveries it carries, one entry per piece of an
acknowledgeable source chunk. Merging messages keeps every entry; splitting one adds a piece
to each of its deliveries, so a chunk is acknowledged only once every piece is through.
"""

from __future__ import annotations

from collections import deque

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from engine.components.envelope import BatchPolicy
from engine.records import Batch
from engine.runtime.delivery import Delivery

__all__ = ["Message", "Rebatcher"]

#: what travels on a channel: a batch and the deliveries of the source chunks it comes from
Message = tuple[Batch, tuple[Delivery, ...]]


class Rebatcher:
    """A stage's inbox: batches of at most ``policy.size`` records, a partial one handed out
    once it has waited ``policy.timeout`` seconds or the channel ends. Without a policy,
    batches pass as they arrive.

    Safe to cancel while waiting (a sink publishing on a timer does): what was received is
    kept for the next call.
    """

    def __init__(
        self, channel: MemoryObjectReceiveStream[Message], policy: BatchPolicy | None
    ) -> None:
        self._channel = channel
        self._policy = policy
        self._parts: deque[Message] = deque()
        self._held = 0  # records in _parts
        self._deadline: float | None = None  # when the oldest held record must be passed on
        self._ended = False

    async def __aenter__(self) -> Rebatcher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._channel.close()

    def __aiter__(self) -> Rebatcher:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def receive(self) -> Message:
        """The next batch; raises :class:`anyio.EndOfStream` once the channel is drained."""
        policy = self._policy
        if policy is None:
            return await self._channel.receive()
        while self._held < policy.size and not self._ended:
            if self._deadline is None:
                message = await self._next()
            else:
                left = self._deadline - anyio.current_time()
                if left <= 0:
                    break
                message = None
                with anyio.move_on_after(left):
                    message = await self._next()
                if message is None and not self._ended:
                    break  # waited long enough: pass on the partial batch
            if message is not None and message[0]:
                if not self._held:
                    self._deadline = anyio.current_time() + policy.timeout
                self._parts.append(message)
                self._held += len(message[0])
        if not self._held:
            raise anyio.EndOfStream
        return self._take(min(policy.size, self._held))

    async def _next(self) -> Message | None:
        try:
            return await self._channel.receive()
        except anyio.EndOfStream:
            self._ended = True
            return None

    def _take(self, count: int) -> Message:
        records: Batch = []
        deliveries: list[Delivery] = []
        while count > 0:
            batch, carried = self._parts[0]
            if len(batch) <= count:
                self._parts.popleft()
                piece = batch
            else:
                piece = batch[:count]
                self._parts[0] = (batch[count:], carried)
                for delivery in carried:
                    delivery.pending += 1  # the rest is one more piece in flight
            # the first piece is passed as is: a batch that fits is never copied
            records = piece if not records else [*records, *piece]
            deliveries.extend(carried)
            count -= len(piece)
            self._held -= len(piece)
        if not self._held:
            self._deadline = None
        return records, tuple(deliveries)
