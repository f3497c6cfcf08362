"""``amqp`` sink: one persistent message per record, published with confirms."""

from __future__ import annotations

import io
import string
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal
from urllib.parse import urlsplit

import anyio
import orjson
from pydantic import Field, field_validator

from engine.codecs import CodecSpec
from engine.codecs.json import JsonCodec, dump_default
from engine.components.base import ComponentContext, Sink, SinkConfig, WrittenResource
from engine.connectors.amqp.client import AmqpEndpoint
from engine.errors import EngineError, PermanentError
from engine.records import Batch, Record

if TYPE_CHECKING:
    from aio_pika.abc import AbstractExchange, AbstractRobustConnection

    from engine.registry import Registry

__all__ = ["AmqpSink", "AmqpSinkConfig"]


class AmqpSinkConfig(AmqpEndpoint, SinkConfig):
    """Publishes each record as a persistent message; a batch counts once the broker confirms."""

    type: Literal["amqp"] = "amqp"
    requires_extras: ClassVar[tuple[str, ...]] = ("amqp",)
    exchange: str = Field("", description='Exchange to publish to; "" is the default exchange.')
    exchange_type: Literal["direct", "topic", "fanout", "headers"] = Field(
        "direct", description="Type used when `declare` creates the exchange."
    )
    declare: bool = Field(
        False, description="Declare the exchange (durable) if missing; default: it must exist."
    )
    routing_key: str = Field(
        description="Routing key template; `{field}` is taken from each record "
        "(with the default exchange, the queue name).",
        examples=["orders.{region}", "invoices"],
    )
    codec: CodecSpec = Field(
        default_factory=JsonCodec, description="How a record becomes a message body."
    )
    persistent: bool = Field(True, description="Messages survive a broker restart.")
    mandatory: bool = Field(
        True, description="A message no queue is bound for fails instead of vanishing."
    )

    @field_validator("routing_key")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            list(string.Formatter().parse(value))
        except ValueError as exc:
            raise ValueError(f"bad routing key template: {exc}") from None
        return value

    def resource(self) -> str | None:
        return f"{self.endpoint().rstrip('/')}/{self.exchange or '(default)'}"

    def written_resource(self, base: Path) -> WrittenResource | None:
        try:
            url = urlsplit(self.url.get_secret_value())
            where = f"{url.hostname}:{url.port}{url.path}"
        except ValueError:
            return None
        shown = f"{self.resource()} with routing key {self.routing_key!r}"
        return WrittenResource(f"{where} {self.exchange} {self.routing_key}", shown, "routing_key")


class AmqpSink(Sink[AmqpSinkConfig]):
    _connection: AbstractRobustConnection | None = None
    _exchange: AbstractExchange | None = None

    def __init__(self, config: AmqpSinkConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        self._static_key = not any(f for _, f, _, _ in string.Formatter().parse(config.routing_key))
        codec = config.codec
        self._content_type = {"json": "application/json", "xml": "application/xml"}.get(
            codec.type, "text/csv" if codec.type == "csv" else "application/octet-stream"
        )

    async def open(self) -> None:
        from aio_pika import ExchangeType

        from engine.connectors.amqp.client import connect
        from engine.connectors.amqp.errors import map_amqp_error

        cfg = self.config
        self._connection = await connect(cfg, timeout=self.context.timeout)
        try:
            channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            if not cfg.exchange:
                self._exchange = channel.default_exchange
            elif cfg.declare:
                kind = ExchangeType(cfg.exchange_type)
                self._exchange = await channel.declare_exchange(cfg.exchange, kind, durable=True)
            else:
                self._exchange = await channel.get_exchange(cfg.exchange, ensure=True)
        except Exception as exc:
            await self.close(success=False)
            raise map_amqp_error(exc, action=f"amqp exchange {cfg.exchange!r}") from None

    async def check(self) -> None:
        await self.open()
        await self.close(success=False)

    def routing_key(self, record: Record) -> str:
        if self._static_key:
            return self.config.routing_key
        try:
            return self.config.routing_key.format_map(record)
        except (KeyError, IndexError, AttributeError) as exc:
            raise PermanentError(
                f"routing key {self.config.routing_key!r}: record has no field {exc}"
            ) from None

    def body(self, record: Record) -> bytes:
        if isinstance(self.config.codec, JsonCodec) and not self.config.codec.pretty:
            return orjson.dumps(record, default=dump_default)
        buffer = io.BytesIO()
        encoder = self.config.codec.encoder(buffer)
        encoder.write([record])
        encoder.finish()
        return buffer.getvalue()

    async def write(self, batch: Batch) -> None:
        from aio_pika import DeliveryMode, Message

        from engine.connectors.amqp.errors import map_amqp_error

        assert self._exchange is not None, "open() first"
        exchange, mandatory = self._exchange, self.config.mandatory
        mode = DeliveryMode.PERSISTENT if self.config.persistent else DeliveryMode.NOT_PERSISTENT
        prepared = [
            (
                Message(self.body(r), delivery_mode=mode, content_type=self._content_type),
                self.routing_key(r),
            )
            for r in batch
        ]
        failures: list[BaseException] = []

        async def publish(message: Message, key: str) -> None:
            try:
                await exchange.publish(message, key, mandatory=mandatory)
            except Exception as exc:
                failures.append(exc)

        # all publishes in flight at once; each waits for its own broker confirm
        async with anyio.create_task_group() as tg:
            for message, key in prepared:
                tg.start_soon(publish, message, key)
        if failures:
            mapped = [map_amqp_error(e, action="amqp publish") for e in failures]
            first: EngineError = next(
                (e for e in mapped if isinstance(e, PermanentError)), mapped[0]
            )
            raise first

    async def close(self, *, success: bool) -> None:
        if self._connection is not None:
            with anyio.CancelScope(shield=True):
                await self._connection.close()
            self._connection = None
            self._exchange = None


def register(registry: Registry) -> None:
    registry.register(AmqpSinkConfig, AmqpSink)
