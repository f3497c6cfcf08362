"""``webhook`` sink: one signed delivery per record, per the Standard Webhooks specification."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from engine.components.base import ComponentContext, Sink, SinkConfig
from engine.connectors.http.delivery import RecordDelivery, encode_record
from engine.connectors.http.lifecycle import EndpointLifecycle
from engine.connectors.http.options import HttpOptions
from engine.errors import PermanentError
from engine.records import Batch, Record
from engine.webhooks.signatures import (
    checked_standard_webhook_secret,
    sign_standard_webhook,
)

if TYPE_CHECKING:
    from engine.registry import Registry

__all__ = ["WebhookSink", "WebhookSinkConfig"]


class WebhookSinkConfig(SinkConfig, HttpOptions):
    """Delivers each record as a JSON webhook signed with webhook-id/-timestamp/-signature."""

    type: Literal["webhook"] = "webhook"
    requires_extras: ClassVar[tuple[str, ...]] = ("http",)
    secret: SecretStr = Field(description="Signing secret, `whsec_` + base64 (Standard Webhooks).")
    id_field: str | None = Field(
        None,
        description="JMESPath to the delivery id in the record; default a hash of the body "
        "(the same on every retry, so receivers can drop duplicates).",
    )
    concurrency: int = Field(8, ge=1, le=1000, description="Deliveries in flight.")

    @field_validator("secret")
    @classmethod
    def _valid_secret(cls, value: SecretStr) -> SecretStr:
        return checked_standard_webhook_secret(value)

    def resource(self) -> str | None:
        return HttpOptions.resource(self)

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        if self.id_field:
            yield ("id_field",), self.id_field


class WebhookSink(EndpointLifecycle, Sink[WebhookSinkConfig]):
    def __init__(self, config: WebhookSinkConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        self.attach_endpoint(
            config,
            context,
            base_headers={"Content-Type": "application/json"},
        )
        self.delivery = RecordDelivery(config.concurrency)
        self._id = context.expression(("id_field",), config.id_field) if config.id_field else None

    def message_id(self, record: Record, body: bytes) -> str:
        if self._id is not None:
            value = self._id.search(record)
            if value in (None, ""):
                raise PermanentError(f"delivery id {self.config.id_field!r} is empty in the record")
            return str(value)
        return "msg_" + hashlib.sha256(body).hexdigest()[:32]

    async def _send(self, record: Record) -> None:
        body = encode_record(None, record)
        msg_id = self.message_id(record, body)
        timestamp = int(time.time())
        signature = sign_standard_webhook(
            self.config.secret.get_secret_value(), msg_id, timestamp, body
        )
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
        await self.endpoint.attempt("POST", self.config.url, content=body, headers=headers)

    async def write(self, batch: Batch) -> None:
        await self.delivery.deliver(batch, self._send)


def register(registry: Registry) -> None:
    registry.register(WebhookSinkConfig, WebhookSink)
