"""``http`` source: a REST endpoint read page by page, optionally incrementally."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from engine.codecs import CodecSpec, JsonCodec
from engine.components.base import ComponentContext, Source, SourceConfig
from engine.connectors.http.decode import decode_body
from engine.connectors.http.incremental import CursorTracker, IncrementalSpec
from engine.connectors.http.lifecycle import EndpointLifecycle
from engine.connectors.http.options import HttpOptions
from engine.connectors.http.pagination import Page, PaginationSpec, Paginator
from engine.records import Chunk
from engine.redact import redact_url

if TYPE_CHECKING:
    from engine.registry import Registry

__all__ = ["HttpSource", "HttpSourceConfig"]

Scalar = str | int | float | bool


class HttpSourceConfig(SourceConfig, HttpOptions):
    """Reads records from an HTTP API: pagination, incremental cursors, JSON/XML/CSV bodies."""

    type: Literal["http"] = "http"
    requires_extras: ClassVar[tuple[str, ...]] = ("http",)
    method: Literal["GET", "POST"] = Field("GET", description="HTTP method.")
    query: dict[str, Scalar] = Field(default_factory=dict, description="Query parameters.")
    body: dict[str, Any] | list[Any] | None = Field(
        None, description="JSON request body (for search endpoints read with POST)."
    )
    records: str | None = Field(
        None,
        description="JMESPath to the records in a JSON response; default the whole body "
        "(a list, or one object).",
        examples=["data.items", "products"],
    )
    codec: CodecSpec | None = Field(None, description="Response format; default json.")
    pagination: PaginationSpec | None = Field(
        None, description="link, next_url, cursor, offset or page; default one request."
    )
    incremental: IncrementalSpec | None = Field(
        None, description="Keep the highest cursor value between runs and send it back."
    )

    @model_validator(mode="after")
    def _json_only(self) -> HttpSourceConfig:
        json_codec = self.codec is None or isinstance(self.codec, JsonCodec)
        if not json_codec:
            if self.records is not None:
                raise ValueError("`records` selects from a JSON body; this codec is not json")
            if self.pagination is not None and self.pagination.type in ("next_url", "cursor"):
                raise ValueError(f"{self.pagination.type} pagination needs a JSON body")
        return self

    def resource(self) -> str | None:
        return HttpOptions.resource(self)

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        if self.records:
            yield ("records",), self.records
        if self.pagination is not None:
            for path, expr in self.pagination.expressions():
                yield ("pagination", *path), expr
        if self.incremental is not None:
            for path, expr in self.incremental.expressions():
                yield ("incremental", *path), expr


class HttpSource(EndpointLifecycle, Source[HttpSourceConfig]):
    def __init__(self, config: HttpSourceConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        self.attach_endpoint(config, context)
        self._records = context.expression(("records",), config.records) if config.records else None
        self._cursor: CursorTracker | None = None

    async def read(self) -> AsyncIterator[Chunk]:
        cfg = self.config
        await self.endpoint.open()
        params: dict[str, Any] = dict(cfg.query)
        if cfg.incremental is not None:
            self._cursor = CursorTracker(
                cfg.incremental, self.context, self.context.expressions.under("incremental")
            )
            params.update(self._cursor.params())
        paginator = Paginator(
            cfg.pagination, cfg.url, params, self.context.expressions.under("pagination")
        )
        url, page_params = paginator.first()
        while True:
            response = await self.endpoint.request(
                cfg.method, url, params=page_params or None, json=cfg.body
            )
            source = redact_url(response.request.url, self.endpoint.secret_params)
            document, chunk = decode_body(response.content, cfg.codec, self._records, source)
            if self._cursor is not None:
                self._cursor.observe(chunk.records, source)
            yield chunk
            page = Page(response.request.url, document, len(chunk.records), response.links)
            following = paginator.next(page)
            if following is None:
                return
            url, page_params = following

    async def commit(self) -> None:
        if self._cursor is not None:
            self._cursor.commit()


def register(registry: Registry) -> None:
    registry.register(HttpSourceConfig, HttpSource)
