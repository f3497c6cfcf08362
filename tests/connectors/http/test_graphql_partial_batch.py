"""A graphql sink batch partly refused: what was created is counted, the rest routed.

The GraphQL server is written here on graphql-core's executor (not the shared test server).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from graphql import build_schema, graphql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.http_server import ServerThread
from tests.support.pipelines import run_file, write_pipeline

SCHEMA = build_schema(
    """
    type Item { sku: String!, qty: Int! }
    type Query { items: [Item!]! }
    type Mutation { createItem(sku: String!, qty: Int!): Item }
    """
)


class Shop:
    """A GraphQL endpoint whose ``createItem`` refuses negative quantities."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []
        self.app = Starlette(routes=[Route("/graphql", self.endpoint, methods=["POST"])])

    def create_item(self, _info: Any, sku: str, qty: int) -> dict[str, Any]:
        if qty < 0:
            raise ValueError(f"qty of {sku} must not be negative")
        item = {"sku": sku, "qty": qty}
        self.created.append(item)
        return item

    async def endpoint(self, request: Request) -> JSONResponse:
        body = await request.json()
        result = await graphql(
            SCHEMA,
            body["query"],
            root_value={"createItem": self.create_item},
            variable_values=body.get("variables"),
        )
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload["errors"] = [e.formatted for e in result.errors]
        return JSONResponse(payload)


@pytest.fixture
def shop() -> Iterator[tuple[Shop, str]]:
    server = Shop()
    with ServerThread(server.app) as thread:
        yield server, thread.url


def pipeline(tmp_path: Path, url: str, records: list[dict[str, Any]], on_error: str) -> Path:
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    mutation = "mutation($sku: String!, $qty: Int!) { createItem(sku: $sku, qty: $qty) { sku } }"
    return write_pipeline(
        tmp_path,
        f"""
[pipeline]
name = "partial"

[dead_letter]
path = "{tmp_path / "dead.jsonl"}"

[sources.file]
type = "file"
path = "in.jsonl"

[sinks.shop]
type = "graphql"
inputs = ["file"]
url = "{url}/graphql"
query = "{mutation}"
on_error = "{on_error}"
""",
    )


RECORDS = [{"sku": "A", "qty": 1}, {"sku": "BAD", "qty": -1}, {"sku": "C", "qty": 3}]


def test_delivered_records_are_counted_and_the_refused_one_dead_lettered(
    tmp_path: Path, shop: tuple[Shop, str]
) -> None:
    server, url = shop
    summary = anyio.run(run_file, pipeline(tmp_path, url, RECORDS, "dead_letter"))
    assert summary.ok, summary.error
    assert sorted(i["sku"] for i in server.created) == ["A", "C"]
    stats = summary.stages["shop"]
    assert (stats.records_in, stats.records_out, stats.rejected) == (3, 2, 1)
    assert summary.dead_letters == 1
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert [d["record"]["sku"] for d in dead] == ["BAD"]
    assert "qty of BAD must not be negative" in json.dumps(dead[0])


def test_skip_counts_the_delivered_and_fail_names_the_refused_record(
    tmp_path: Path, shop: tuple[Shop, str]
) -> None:
    server, url = shop
    summary = anyio.run(run_file, pipeline(tmp_path, url, RECORDS, "skip"))
    assert summary.ok, summary.error
    assert (summary.stages["shop"].records_out, summary.stages["shop"].rejected) == (2, 1)

    server.created.clear()
    summary = anyio.run(run_file, pipeline(tmp_path, url, RECORDS, "fail"))
    assert not summary.ok
    assert "1 of 3 records not delivered" in (summary.error or "")
    assert "qty of BAD must not be negative" in (summary.error or "")
    assert summary.stages["shop"].retries == 0
    assert sorted(i["sku"] for i in server.created) == ["A", "C"]
