"""``graphql`` source: a query read page by page through Relay `pageInfo` cursors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from engine.components.base import ComponentContext, Source, SourceConfig
from engine.connectors.http.decode import split_records
from engine.connectors.http.graphql import (
    DocumentProblem,
    GraphQLDocument,
    GraphQLOperation,
    GraphQLPagination,
    document_problems,
    execute,
    load_document,
)
from engine.connectors.http.incremental import CursorTracker, IncrementalSpec
from engine.connectors.http.lifecycle import EndpointLifecycle
from engine.connectors.http.options import HttpOptions
from engine.records import Chunk, Rejected
from engine.redact import redact_url

if TYPE_CHECKING:
    from engine.registry import Registry

__all__ = ["GraphQLSource", "GraphQLSourceConfig"]


class GraphQLSourceConfig(SourceConfig, HttpOptions, GraphQLOperation):
    """Reads records from a GraphQL API; partial data with errors is handled per on_error."""

    type: Literal["graphql"] = "graphql"
    requires_extras: ClassVar[tuple[str, ...]] = ("graphql",)
    variables: dict[str, Any] = Field(default_factory=dict, description="Query variables.")
    records: str = Field(
        description="JMESPath (within `data`) to the records.",
        examples=["products.edges[].node"],
    )
    pagination: GraphQLPagination | None = Field(
        None, description="Cursor pagination through pageInfo { hasNextPage endCursor }."
    )
    incremental: IncrementalSpec | None = Field(
        None, description="Highest cursor value kept between runs, sent as variable `param`."
    )

    def resource(self) -> str | None:
        return HttpOptions.resource(self)

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        yield ("records",), self.records
        if self.pagination is not None:
            yield ("pagination", "page_info"), self.pagination.page_info
        if self.incremental is not None:
            for path, expr in self.incremental.expressions():
                yield ("incremental", *path), expr


class GraphQLSource(EndpointLifecycle, Source[GraphQLSourceConfig]):
    def __init__(self, config: GraphQLSourceConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        self.attach_endpoint(config, context)
        self._records = context.expression(("records",), config.records)
        self._page_info = (
            context.expression(("pagination", "page_info"), config.pagination.page_info)
            if config.pagination
            else None
        )
        self._document: GraphQLDocument | None = None
        self._cursor: CursorTracker | None = None

    async def open(self) -> None:
        await self.endpoint.open()
        self._document = load_document(self.context, self.config.query, self.config.query_file)

    async def check(self) -> None:
        await self.endpoint.open()
        document = GraphQLDocument("query { __typename }")
        await execute(self.endpoint, document, {})

    async def check_document(self) -> list[DocumentProblem]:
        """The document's errors against the server's schema (`validate --connect`)."""
        await self.endpoint.open()
        return await document_problems(self.endpoint, self.context, self.config)

    async def read(self) -> AsyncIterator[Chunk]:
        cfg = self.config
        if self._document is None:
            await self.open()
        document = self._document
        assert document is not None
        variables = dict(cfg.variables)
        if cfg.incremental is not None:
            self._cursor = CursorTracker(
                cfg.incremental, self.context, self.context.expressions.under("incremental")
            )
            variables.update(self._cursor.params())
        source = redact_url(cfg.url, self.endpoint.secret_params)
        pages = 0
        seen: set[str] = set()
        while True:
            current = dict(variables)
            result = await self.context.call(
                lambda v=current: execute(self.endpoint, document, v, cfg.operation_name)  # type: ignore[misc]
            )
            chunk = split_records(self._records.search(result.data), source)
            if result.errors:
                chunk.rejected.append(
                    Rejected(
                        {"errors": result.errors, "variables": current},
                        "GraphQL errors with partial data: " + "; ".join(result.messages),
                        source,
                    )
                )
            if self._cursor is not None:
                self._cursor.observe(chunk.records, source)
            yield chunk
            pages += 1
            if self._page_info is None or not chunk.records:
                return
            assert cfg.pagination is not None
            if cfg.pagination.max_pages is not None and pages >= cfg.pagination.max_pages:
                return
            info = self._page_info.search(result.data)
            if not isinstance(info, dict) or not info.get("hasNextPage"):
                return
            cursor = info.get("endCursor")
            if not isinstance(cursor, str) or cursor in seen:
                return
            seen.add(cursor)
            variables[cfg.pagination.cursor_variable] = cursor

    async def commit(self) -> None:
        if self._cursor is not None:
            self._cursor.commit()


def register(registry: Registry) -> None:
    registry.register(GraphQLSourceConfig, GraphQLSource)
