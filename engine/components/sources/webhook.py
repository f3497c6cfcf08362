"""``webhook`` source: requests received by `engine serve` at a path, verified, then batched."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from engine.codecs import CodecSpec, JsonCodec
from engine.components.base import ComponentContext, Source, SourceConfig
from engine.errors import PermanentError
from engine.records import Chunk
from engine.webhooks.body import BodyKind
from engine.webhooks.intake import Intake
from engine.webhooks.signatures import SignatureSpec

if TYPE_CHECKING:
    from engine.registry import Registry

__all__ = ["WebhookSource", "WebhookSourceConfig"]


class WebhookSourceConfig(SourceConfig):
    """Receives signed webhook requests under `engine serve`; answers 2xx once delivered."""

    type: Literal["webhook"] = "webhook"
    requires_extras: ClassVar[tuple[str, ...]] = ("serve",)
    path: str = Field(description="URL path served, e.g. '/hooks/shopify'.")
    signature: SignatureSpec | None = Field(
        None,
        description="hmac, github, stripe, shopify, slack or standard-webhooks; "
        "without it requests are not authenticated.",
    )
    content: BodyKind = Field(
        "auto",
        description="How a body becomes records: `auto` (form-encoded bodies as forms, others "
        "as JSON), `json`, `form` (one record of the fields; a lone `payload` field is read "
        "as JSON) or `text` (one record {body, content_type}).",
    )
    codec: CodecSpec | None = Field(
        None, description="Body format read by a codec (csv, xml, ...) instead of `content`."
    )
    records: str | None = Field(
        None, description="JMESPath to the records in a JSON or form body; default the body."
    )
    max_body: int = Field(1_048_576, ge=1, description="Largest body accepted, in bytes (413).")
    replay_ttl: float = Field(
        86_400.0, gt=0, description="Seconds a delivery id is remembered to refuse replays."
    )
    ack_timeout: float = Field(
        30.0, gt=0, description="Seconds a request waits for delivery before a 503."
    )
    queue: int = Field(1024, ge=1, description="Requests waiting for the pipeline at most.")

    @field_validator("path")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/") or value.startswith(("/healthz", "/metrics")):
            raise ValueError("path must start with '/' and not be /healthz or /metrics")
        return value

    @model_validator(mode="after")
    def _json_records(self) -> WebhookSourceConfig:
        if self.records is not None and not (
            self.codec is None or isinstance(self.codec, JsonCodec)
        ):
            raise ValueError("`records` selects from a JSON body; this codec is not json")
        if self.codec is not None and self.content != "auto":
            raise ValueError("set `content` or `codec`, not both")
        if self.records is not None and self.content == "text":
            raise ValueError("`records` selects from a JSON or form body, not `content = text`")
        return self

    def resource(self) -> str | None:
        return f"webhook:{self.path}"

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        if self.records:
            yield ("records",), self.records


class WebhookSource(Source[WebhookSourceConfig]):
    """Yields what `engine serve` puts into its intake; without one it refuses to run."""

    acknowledges = True  # a request is answered 2xx once its records are published

    def __init__(
        self,
        config: WebhookSourceConfig,
        context: ComponentContext,
        intake: Intake | None = None,
    ) -> None:
        super().__init__(config, context)
        self.intake = intake

    async def read(self) -> AsyncIterator[Chunk]:
        if self.intake is None:
            raise PermanentError(
                f"webhook source {self.context.component_id!r} receives requests only under "
                "`engine serve FILE`"
            )
        async for chunk in self.intake.chunks(self.config.batch.size):
            yield chunk

    async def ack(self, token: object) -> None:
        if self.intake is not None:
            self.intake.acknowledge(token)

    async def nack(self, token: object, *, permanent: bool) -> None:
        if self.intake is not None:
            self.intake.refuse(token, "a sink could not deliver the records; retry")


def register(registry: Registry) -> None:
    registry.register(WebhookSourceConfig, WebhookSource)
