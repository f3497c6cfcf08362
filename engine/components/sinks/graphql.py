"""``graphql`` sink: one mutation per record, variables from record fields by JMESPath."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from engine.components.base import ComponentContext, Sink, SinkConfig
from engine.connectors.http.delivery import RecordDelivery
from engine.connectors.http.graphql import (
    DocumentProblem,
    GraphQLDocument,
    GraphQLErrors,
    GraphQLOperation,
    document_problems,
    execute,
    load_document,
)
from engine.connectors.http.lifecycle import EndpointLifecycle
from engine.connectors.http.options import HttpOptions
from engine.errors import EngineError, PartialWriteError, TransientError
from engine.records import Batch, Record, Rejected

if TYPE_CHECKING:
    from engine.registry import Registry

__all__ = ["GraphQLSink", "GraphQLSinkConfig"]


class GraphQLSinkConfig(SinkConfig, HttpOptions, GraphQLOperation):
    """Runs a mutation per record; GraphQL errors fail the record (routed by on_error)."""

    type: Literal["graphql"] = "graphql"
    requires_extras: ClassVar[tuple[str, ...]] = ("graphql",)
    query: str | None = Field(None, description="The mutation, inline.")
    variables: dict[str, str] | None = Field(
        None,
        description="Variable name -> JMESPath over the record; default the record itself "
        "is the variables object.",
        examples=[{"input": "{sku: sku, title: name}"}],
    )
    static_variables: dict[str, Any] = Field(
        default_factory=dict, description="Variables with fixed values, sent with every record."
    )
    concurrency: int = Field(8, ge=1, le=1000, description="Mutations in flight.")

    def resource(self) -> str | None:
        return HttpOptions.resource(self)

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        for name, expr in (self.variables or {}).items():
            yield ("variables", name), expr


class GraphQLSink(EndpointLifecycle, Sink[GraphQLSinkConfig]):
    def __init__(self, config: GraphQLSinkConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        self.attach_endpoint(config, context)
        self.delivery = RecordDelivery(config.concurrency)
        self._variables = {
            name: context.expression(("variables", name), expr)
            for name, expr in (config.variables or {}).items()
        }
        self._document: GraphQLDocument | None = None
        # ids of the records of the batch in hand the server accepted, kept across retries
        self._batch: Batch | None = None
        self._accepted: set[int] = set()

    async def open(self) -> None:
        await self.endpoint.open()
        self._document = load_document(self.context, self.config.query, self.config.query_file)

    async def check(self) -> None:
        await self.endpoint.open()
        await execute(self.endpoint, GraphQLDocument("query { __typename }"), {})

    async def check_document(self) -> list[DocumentProblem]:
        """The document's errors against the server's schema (`validate --connect`)."""
        await self.endpoint.open()
        return await document_problems(self.endpoint, self.context, self.config)

    def variables_for(self, record: Record) -> dict[str, Any]:
        if not self._variables:
            return {**self.config.static_variables, **record}
        out = dict(self.config.static_variables)
        for name, expr in self._variables.items():
            out[name] = expr.search(record)
        return out

    async def _send(self, record: Record) -> None:
        assert self._document is not None
        result = await execute(
            self.endpoint, self._document, self.variables_for(record), self.config.operation_name
        )
        if result.errors:
            raise GraphQLErrors(result.messages)

    async def write(self, batch: Batch) -> None:
        """Every record is tried; the ones refused are a :class:`PartialWriteError`.

        The records the server accepted count as delivered, the others are routed by
        ``on_error``, each with its own reason.
        """
        if self._document is None:
            await self.open()
        if batch is not self._batch:
            self._batch, self._accepted = batch, set()
        accepted, refused = self._accepted, dict[int, str]()

        async def send(record: Record) -> None:
            try:
                await self._send(record)
            except TransientError:
                raise
            except EngineError as exc:
                refused[id(record)] = str(exc)
                raise
            accepted.add(id(record))

        try:
            await self.delivery.deliver(batch, send)
        except TransientError:
            raise  # retried as a whole; accepted records are not sent again
        except EngineError as exc:
            rejected = [
                Rejected(r, refused.get(id(r), f"not sent: {exc}"))
                for r in batch
                if id(r) not in accepted
            ]
            self._batch, self._accepted = None, set()
            if not rejected:
                raise
            first = rejected[0].reason
            raise PartialWriteError(
                f"{len(rejected)} of {len(batch)} records not delivered: {first}", rejected
            ) from None
        self._batch, self._accepted = None, set()


def register(registry: Registry) -> None:
    registry.register(GraphQLSinkConfig, GraphQLSink)
