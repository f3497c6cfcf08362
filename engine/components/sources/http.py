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
        self._pages: list[dict[str, Any]] | None = None  # a partition's page set

    def _paginator(self, params: dict[str, Any]) -> Paginator:
        cfg = self.config
        return Paginator(
            cfg.pagination, cfg.url, params, self.context.expressions.under("pagination")
        )

    async def _get(self, url: str, params: dict[str, Any] | None) -> tuple[str, Chunk, Page]:
        """One request: the URL for messages (secrets removed), its records, the page."""
        cfg = self.config
        response = await self.endpoint.request(
            cfg.method, url, params=params or None, json=cfg.body
        )
        source = redact_url(response.request.url, self.endpoint.secret_params)
        document, chunk = decode_body(response.content, cfg.codec, self._records, source)
        page = Page(response.request.url, document, len(chunk.records), response.links)
        return source, chunk, page

    async def partitions(self, workers: int) -> list[dict[str, Any]] | None:
        """Sets of pages when the first page says how many there are (offset or page
        pagination with a total, or ``max_pages``); not for incremental reads."""
        if self.config.incremental is not None:
            return None
        spec = self.config.pagination
        if spec is None or spec.type not in ("offset", "page"):
            return None
        paginator = self._paginator(dict(self.config.query))
        await self.endpoint.open()
        url, params = paginator.first()
        _, _, first = await self._get(url, params)
        pages = paginator.every_page(first)
        if pages is None:
            return None
        count = min(len(pages), 2 * workers)
        size = -(-len(pages) // count)
        return [{"pages": pages[at : at + size]} for at in range(0, len(pages), size)]

    def use_partition(self, spec: dict[str, Any]) -> None:
        if spec:
            self._pages = list(spec["pages"])

    async def read(self) -> AsyncIterator[Chunk]:
        cfg = self.config
        await self.endpoint.open()
        params: dict[str, Any] = dict(cfg.query)
        if cfg.incremental is not None:
            self._cursor = CursorTracker(
                cfg.incremental, self.context, self.context.expressions.under("incremental")
            )
            params.update(self._cursor.params())
        if self._pages is not None:
            for page_params in self._pages:
                _, chunk, _ = await self._get(cfg.url, page_params)
                yield chunk
            return
        paginator = self._paginator(params)
        url, page_params = paginator.first()
        while True:
            source, chunk, page = await self._get(url, page_params)
            if self._cursor is not None:
                self._cursor.observe(chunk.records, source)
            yield chunk
            following = paginator.next(page)
            if following is None:
                return
            url, page_params = following

    async def commit(self) -> None:
        if self._cursor is not None:
            self._cursor.commit()


def register(registry: Registry) -> None:
    registry.register(HttpSourceConfig, HttpSource)
