"""GraphQL over HTTP: requests built with gql, sent through the same HttpEndpoint.

gql parses each document once and builds the request payloads (query, variables, operation
name). Sending them through :class:`HttpEndpoint` rather than one of gql's transports gives
GraphQL the http connector's auth, rate limit, circuit breaker, Retry-After and error map
unchanged (gql's transports drop Retry-After and wrap the status in their own errors).
A response's ``errors`` are GraphQL errors: with no data they fail the request; with
partial data the data is kept and the errors are reported as rejected input (``on_error``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Self

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.errors import PermanentError, TransientError

if TYPE_CHECKING:
    from engine.connectors.context import ConnectorContext
    from engine.connectors.http.client import HttpEndpoint

__all__ = [
    "DocumentProblem",
    "GraphQLDocument",
    "GraphQLErrors",
    "GraphQLOperation",
    "GraphQLPagination",
    "GraphQLResult",
    "check_document",
    "document_problems",
    "execute",
    "load_document",
]

#: `extensions.code` values that mean "slow down / try again", not "your request is wrong"
TRANSIENT_CODES = frozenset({"THROTTLED", "RATE_LIMITED", "SERVICE_UNAVAILABLE"})


class GraphQLPagination(BaseModel):
    """Relay cursor pagination through `pageInfo { hasNextPage endCursor }`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    page_info: str = Field(
        description="JMESPath (within `data`) to the pageInfo object.",
        examples=["products.pageInfo"],
    )
    cursor_variable: str = Field("after", description="Variable that receives `endCursor`.")
    max_pages: int | None = Field(None, ge=1, description="Read at most this many pages.")


class GraphQLOperation(BaseModel):
    """The document fields of the graphql source and sink: inline or from a file, one of them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query: str | None = Field(None, description="The query, inline.")
    query_file: str | None = Field(None, description="Or a .graphql file beside the pipeline.")
    operation_name: str | None = Field(None, description="Operation to run in the document.")

    @model_validator(mode="after")
    def _one_document(self) -> Self:
        if (self.query is None) == (self.query_file is None):
            raise ValueError("set exactly one of `query` and `query_file`")
        if self.query is not None:
            check_document(self.query, "query")
        return self


class GraphQLErrors(PermanentError):
    """The server answered with GraphQL errors and no data."""

    def __init__(self, messages: list[str]) -> None:
        self.messages = messages
        super().__init__("GraphQL errors: " + "; ".join(messages))


class GraphQLDocument:
    """A parsed query or mutation: its text, its operation kind and its gql request."""

    def __init__(self, text: str, where: str = "query") -> None:
        self.text = text
        self.operation = check_document(text, where)
        from gql import gql

        self.request = gql(text)

    def payload(self, variables: dict[str, Any], operation_name: str | None) -> dict[str, Any]:
        """The JSON body of one request, built by gql from the parsed document."""
        from gql import GraphQLRequest

        request = GraphQLRequest(
            self.request, variable_values=variables, operation_name=operation_name
        )
        return dict(request.payload)


def check_document(text: str, where: str = "query") -> str:
    """Parse ``text``; return its first operation kind ("query"/"mutation"); ValueError if bad."""
    # graphql-core is imported only by a pipeline that has a document to check
    from graphql import GraphQLError, OperationDefinitionNode, parse

    try:
        document = parse(text)
    except GraphQLError as exc:
        raise ValueError(f"{where} is not valid GraphQL: {exc.message}") from None
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            return definition.operation.value
    raise ValueError(f"{where} defines no operation")


def load_document(
    context: ConnectorContext, inline: str | None, file: str | None
) -> GraphQLDocument:
    """The document from config (inline or a file beside the pipeline); PermanentError if bad."""
    if inline is not None:
        return GraphQLDocument(inline)
    assert file is not None
    path = context.resolve(file)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PermanentError(f"cannot read GraphQL document {path}: {exc.strerror}") from None
    try:
        return GraphQLDocument(text, str(path))
    except ValueError as exc:
        raise PermanentError(str(exc)) from None


class GraphQLResult:
    def __init__(self, data: Any, errors: list[dict[str, Any]]) -> None:
        self.data = data
        self.errors = errors

    @property
    def messages(self) -> list[str]:
        return [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in self.errors]


async def execute(
    endpoint: HttpEndpoint,
    document: GraphQLDocument,
    variables: dict[str, Any],
    operation_name: str | None = None,
) -> GraphQLResult:
    """One attempt (no retry): POST the operation; classify transport and GraphQL errors."""
    payload = document.payload(variables, operation_name)
    response = await endpoint.attempt(
        "POST",
        endpoint.options.url,
        content=orjson.dumps(payload),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise PermanentError("GraphQL response is not JSON") from None
    if not isinstance(body, dict) or ("data" not in body and "errors" not in body):
        raise PermanentError("GraphQL response has neither `data` nor `errors`")
    errors = body.get("errors") or []
    if not isinstance(errors, list):
        errors = [errors]
    result = GraphQLResult(body.get("data"), errors)
    if errors and result.data is None:
        codes = {
            str((e.get("extensions") or {}).get("code", "")) for e in errors if isinstance(e, dict)
        }
        if codes & TRANSIENT_CODES:
            raise TransientError("GraphQL: " + "; ".join(result.messages))
        raise GraphQLErrors(result.messages)
    return result


class DocumentProblem(NamedTuple):
    """Where a document disagrees with the server's schema: ``file`` is the .graphql file,
    or None for an inline ``query`` (line and column are then within the query text)."""

    message: str
    file: str | None
    line: int
    column: int


async def document_problems(
    endpoint: HttpEndpoint, context: ConnectorContext, operation: GraphQLOperation
) -> list[DocumentProblem]:
    """Every error of the configured document against the server's schema, fetched by
    introspection (the query gql writes) through the endpoint; raises like :func:`execute`."""
    from gql.utilities import get_introspection_query_ast
    from graphql import build_client_schema, parse, print_ast, validate

    introspection = GraphQLDocument(print_ast(get_introspection_query_ast()), "introspection")
    result = await execute(endpoint, introspection, {})
    if not isinstance(result.data, dict) or "__schema" not in result.data:
        raise PermanentError("the server answered introspection without a schema")
    schema = build_client_schema(result.data)  # type: ignore[arg-type]
    document = load_document(context, operation.query, operation.query_file)
    where = str(context.resolve(operation.query_file)) if operation.query_file else None
    problems = []
    for error in validate(schema, parse(document.text)):
        line, column = (
            (error.locations[0].line, error.locations[0].column) if error.locations else (1, 1)
        )
        problems.append(DocumentProblem(error.message, where, line, column))
    return problems
