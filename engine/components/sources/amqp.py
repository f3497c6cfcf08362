"""``amqp`` source: messages from a RabbitMQ queue, acked only once delivered downstream."""

from __future__ import annotations

import contextlib
import io
import math
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import anyio
from pydantic import Field

from engine.codecs import CodecSpec
from engine.codecs.base import CodecConfig
from engine.codecs.json import JsonCodec
from engine.components.base import ComponentContext, Source, SourceConfig
from engine.connectors.amqp.client import AmqpEndpoint
from engine.errors import DataError
from engine.records import Batch, Chunk, Rejected

if TYPE_CHECKING:
    from aio_pika.abc import (
        AbstractIncomingMessage,
        AbstractQueue,
        AbstractRobustChannel,
        AbstractRobustConnection,
    )
    from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

    from engine.registry import Registry

    Messages = list[AbstractIncomingMessage]

__all__ = ["AmqpSource", "AmqpSourceConfig"]

#: seconds between two asks for the queue's depth (a passive declare each), and their timeout
BACKLOG_EVERY = 5.0
BACKLOG_TIMEOUT = 2.0


class AmqpSourceConfig(AmqpEndpoint, SourceConfig):
    """Consumes a RabbitMQ queue; a message is acked once every sink delivered its records."""

    type: Literal["amqp"] = "amqp"
    requires_extras: ClassVar[tuple[str, ...]] = ("amqp",)
    queue: str = Field(description="Queue to consume.")
    declare: bool = Field(
        False,
        description="Declare the queue (durable) if missing; default: it must exist, so a "
        "typo fails instead of consuming from a new empty queue.",
    )
    prefetch: int = Field(
        100, ge=1, le=65535, description="Unacknowledged messages the broker may send ahead."
    )
    codec: CodecSpec = Field(
        default_factory=JsonCodec,
        description="How a message body becomes records (one JSON object or array per "
        "message by default).",
    )
    idle_timeout: float | None = Field(
        None,
        gt=0,
        description="Stop after this many seconds without a message (batch-style runs); "
        "default: consume until stopped.",
    )
    max_messages: int | None = Field(
        None, ge=1, description="Stop after this many messages (batch-style runs)."
    )

    def resource(self) -> str | None:
        return f"{self.endpoint().rstrip('/')}/{self.queue}"


class AmqpSource(Source[AmqpSourceConfig]):
    acknowledges = True
    _connection: AbstractRobustConnection | None = None
    _channel: AbstractRobustChannel | None = None
    _queue: AbstractQueue | None = None
    _consumer_tag: str | None = None
    _backlog_at = 0.0

    def __init__(self, config: AmqpSourceConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        self._send: MemoryObjectSendStream[AbstractIncomingMessage] | None = None
        self._receive: MemoryObjectReceiveStream[AbstractIncomingMessage] | None = None
        #: received and not yet acked or nacked (requeued on close)
        self._unsettled: dict[int, AbstractIncomingMessage] = {}
        self.acked = 0
        self.dead_lettered = 0

    async def open(self) -> None:
        from aio_pika.abc import AbstractIncomingMessage, AbstractRobustChannel

        from engine.connectors.amqp.client import connect
        from engine.connectors.amqp.errors import map_amqp_error

        cfg = self.config
        self._connection = await connect(cfg, timeout=self.context.timeout)
        try:
            channel = await self._connection.channel()
            assert isinstance(channel, AbstractRobustChannel)
            self._channel = channel
            await channel.set_qos(prefetch_count=cfg.prefetch)
            if cfg.declare:
                self._queue = await channel.declare_queue(cfg.queue, durable=True)
            else:
                self._queue = await channel.get_queue(cfg.queue, ensure=True)
            self._backlog_at = time.monotonic()
            self._report_backlog()
            # the consumer never blocks: the broker sends at most `prefetch` unacked messages
            self._send, self._receive = anyio.create_memory_object_stream[AbstractIncomingMessage](
                math.inf
            )
        except Exception as exc:
            await self._disconnect()
            raise map_amqp_error(exc, action=f"amqp queue {cfg.queue}") from None

    async def check(self) -> None:
        await self.open()
        await self._disconnect()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        if self._send is None:  # closing: the broker requeues it with the channel
            return
        self._unsettled[id(message)] = message
        self._send.send_nowait(message)

    def _decode(self, message: AbstractIncomingMessage) -> tuple[Batch, list[Rejected]]:
        codec: CodecConfig = self.config.codec
        where = f"{self.config.queue}#{message.delivery_tag}"
        records: Batch = []
        rejected: list[Rejected] = []
        for chunk in codec.decode(io.BytesIO(message.body), source=where, batch_size=1000):
            records.extend(chunk.records)
            rejected.extend(chunk.rejected)
        return records, rejected

    async def read(self) -> AsyncIterator[Chunk]:
        from engine.connectors.amqp.errors import map_amqp_error

        assert self._queue is not None and self._receive is not None, "open() first"
        receive = self._receive
        cfg = self.config
        if self._consumer_tag is None:
            # one consumer for the source's life: a robust queue restores it after a
            # reconnect, so a later read() must not consume again on a channel being rebuilt
            try:
                self._consumer_tag = await self._queue.consume(self._on_message)
            except Exception as exc:
                raise map_amqp_error(exc, action=f"amqp consume {cfg.queue}") from None
        received = 0
        size, linger = cfg.batch.size, cfg.batch.timeout
        while cfg.max_messages is None or received < cfg.max_messages:
            messages: Messages = []
            records: Batch = []
            rejected: list[Rejected] = []
            wait = cfg.idle_timeout if cfg.idle_timeout is not None else math.inf
            while len(records) < size and len(messages) < cfg.prefetch:
                if cfg.max_messages is not None and received >= cfg.max_messages:
                    break
                message = None
                with anyio.move_on_after(wait):
                    message = await receive.receive()
                if message is None:
                    break
                received += 1
                wait = linger  # the first message of a chunk waits at most batch.timeout more
                try:
                    got, bad = self._decode(message)
                except DataError as exc:
                    # a body that cannot be read is a permanent failure: dead-letter it
                    await self._settle([message], requeue=False)
                    self.dead_lettered += 1
                    rejected.append(Rejected(message.body[:1000], exc.reason, exc.location))
                    continue
                messages.append(message)
                records.extend(got)
                rejected.extend(bad)
            if messages or rejected:
                yield Chunk(records, rejected, token=messages or None)
                await self._refresh_backlog()
            if not messages and not rejected:
                return  # idle for idle_timeout

    def _report_backlog(self) -> None:
        """The queue's ready messages, as the broker last declared them, to the metrics."""
        result = self._queue.declaration_result if self._queue is not None else None
        count = getattr(result, "message_count", None)
        if isinstance(count, int):
            self.context.meter.backlog(count)

    async def _refresh_backlog(self) -> None:
        """Ask the broker for the queue's depth again, at most every BACKLOG_EVERY seconds;
        a failure is no matter (the channel may be reconnecting)."""
        if self._queue is None or time.monotonic() - self._backlog_at < BACKLOG_EVERY:
            return
        self._backlog_at = time.monotonic()
        with contextlib.suppress(Exception):
            await self._queue.declare(timeout=BACKLOG_TIMEOUT)
            self._report_backlog()

    async def ack(self, token: object) -> None:
        if not isinstance(token, list):
            return
        for message in token:
            self._unsettled.pop(id(message), None)
            try:
                await message.ack()
                self.acked += 1
            except Exception as exc:
                # the channel it came on is gone (reconnect): the broker redelivers it
                self.context.emit(
                    "amqp_ack_lost", "WARNING", queue=self.config.queue, error=type(exc).__name__
                )

    def awaits_ack(self) -> bool:
        """The broker sends nothing more until some of the `prefetch` messages are acked."""
        return len(self._unsettled) >= self.config.prefetch

    async def _settle(self, messages: Messages, *, requeue: bool) -> None:
        for message in messages:
            self._unsettled.pop(id(message), None)
            # a channel that is gone needs nothing: the broker requeues its messages itself
            with contextlib.suppress(Exception):
                if requeue:
                    await message.nack(requeue=True)
                else:
                    await message.reject(requeue=False)  # to the queue's dead-letter exchange

    async def nack(self, token: object, *, permanent: bool) -> None:
        """A chunk failed downstream: dead-letter it (permanent) or requeue it (transient)."""
        if isinstance(token, list):
            await self._settle(token, requeue=not permanent)
            if permanent:
                self.dead_lettered += len(token)

    async def partitions(self, workers: int) -> list[dict[str, Any]]:
        """Competing consumers of the queue: one per worker (each its own ``prefetch``,
        ``idle_timeout`` and ``max_messages``)."""
        return [{"consumer": n} for n in range(1, workers + 1)]

    async def close(self) -> None:
        with anyio.CancelScope(shield=True):
            if self._queue is not None and self._consumer_tag is not None:
                with contextlib.suppress(Exception):  # closing anyway
                    await self._queue.cancel(self._consumer_tag)
            self._consumer_tag = None
            # never delivered (the run failed or stopped): back to the queue for the next run
            await self._settle(list(self._unsettled.values()), requeue=True)
            await self._disconnect()
            for stream in (self._send, self._receive):
                if stream is not None:
                    stream.close()
            self._send = self._receive = None

    async def _disconnect(self) -> None:
        if self._connection is not None:
            await self._connection.close()
            self._connection = None
            self._channel = None
            self._queue = None


def register(registry: Registry) -> None:
    registry.register(AmqpSourceConfig, AmqpSource)
