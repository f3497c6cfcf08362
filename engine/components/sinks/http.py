"""``http`` sink: POST/PUT/PATCH per record (URL templates) or per batch, with idempotency keys."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from engine.codecs import CodecSpec
from engine.components.base import ComponentContext, Sink, SinkConfig
from engine.connectors.http.delivery import (
    RecordDelivery,
    UrlTemplate,
    content_type,
    encode_batch,
    encode_record,
    idempotency_value,
)
from engine.connectors.http.lifecycle import EndpointLifecycle
from engine.connectors.http.options import HttpOptions
from engine.errors import PermanentError
from engine.records import Batch, Record

if TYPE_CHECKING:
    from engine.registry import Registry

__all__ = ["HttpSink", "HttpSinkConfig", "IdempotencyKey"]


class IdempotencyKey(BaseModel):
    """A header that lets the endpoint recognise a retried delivery."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    header: str = Field("Idempotency-Key", description="Header name.")
    field: str | None = Field(
        None,
        description="JMESPath to a key in the record; default a SHA-256 of method, URL and "
        "body, the same on every retry.",
    )


def _idempotency_shorthand(value: Any) -> Any:
    if value is True:
        return {}
    if value is False:
        return None
    if isinstance(value, str):
        return {"header": value}
    return value


class HttpSinkConfig(SinkConfig, HttpOptions):
    """Sends records to an HTTP API, one request per record or one per batch."""

    type: Literal["http"] = "http"
    requires_extras: ClassVar[tuple[str, ...]] = ("http",)
    method: Literal["POST", "PUT", "PATCH"] = Field("POST", description="HTTP method.")
    mode: Literal["record", "batch"] = Field(
        "record", description="One request per record, or one per batch (the body an array)."
    )
    codec: CodecSpec | None = Field(None, description="Body format; default json.")
    concurrency: int = Field(8, ge=1, le=1000, description="Requests in flight (record mode).")
    idempotency_key: Annotated[
        IdempotencyKey | None,
        BeforeValidator(_idempotency_shorthand, json_schema_input_type=bool | str | IdempotencyKey),
    ] = Field(None, description="true, a header name, or { header, field }.")

    @model_validator(mode="after")
    def _template_per_record(self) -> HttpSinkConfig:
        template = UrlTemplate(self.url)
        if not template.static and self.mode == "batch":
            raise ValueError("a URL with {fields} needs mode = 'record'")
        return self

    def resource(self) -> str | None:
        return HttpOptions.resource(self)

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        if self.idempotency_key is not None and self.idempotency_key.field:
            yield ("idempotency_key", "field"), self.idempotency_key.field


class HttpSink(EndpointLifecycle, Sink[HttpSinkConfig]):
    def __init__(self, config: HttpSinkConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        self.attach_endpoint(
            config,
            context,
            base_headers={"Content-Type": content_type(config.codec)},
        )
        self.template = UrlTemplate(config.url)
        self.delivery = RecordDelivery(config.concurrency)
        key = config.idempotency_key
        self._key_field = (
            context.expression(("idempotency_key", "field"), key.field)
            if key and key.field
            else None
        )

    def _headers(self, url: str, body: bytes, record: Record | None) -> dict[str, str] | None:
        key = self.config.idempotency_key
        if key is None:
            return None
        if self._key_field is not None and record is not None:
            value = self._key_field.search(record)
            if value in (None, ""):
                raise PermanentError(f"idempotency key {key.field!r} is empty in the record")
            return {key.header: str(value)}
        return {key.header: idempotency_value(self.config.method, url, body)}

    async def _send(self, record: Record) -> None:
        url = self.template.render(record)
        body = encode_record(self.config.codec, record)
        headers = self._headers(url, body, record)
        await self.endpoint.attempt(self.config.method, url, content=body, headers=headers)

    async def write(self, batch: Batch) -> None:
        # The runtime retries write() as a whole (timeout, Retry-After, backoff): each attempt
        # here is a single try, and records already delivered are not sent again.
        if not batch:
            return
        if self.config.mode == "record":
            await self.delivery.deliver(batch, self._send)
            return
        body = encode_batch(self.config.codec, batch)
        headers = self._headers(self.config.url, body, None)
        await self.endpoint.attempt(
            self.config.method, self.config.url, content=body, headers=headers
        )


def register(registry: Registry) -> None:
    registry.register(HttpSinkConfig, HttpSink)
