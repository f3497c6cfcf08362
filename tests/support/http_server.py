"""A real HTTP peer for connector tests, the examples and the benchmark (Starlette on uvicorn).

Serves every pagination style, 429 with Retry-After, 5xx bursts, slow responses, an OAuth2
client-credentials token endpoint, a GraphQL endpoint, a recording sink and the endpoints the
examples use. Run it by hand for the examples: ``python -m tests.support.http_server``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import socket
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import uvicorn
from graphql import build_schema, graphql
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

CLIENT_ID = "test-client"
CLIENT_SECRET = "test-client-secret-value"
API_KEY = "test-api-key-value"
WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

ITEMS = [
    {
        "id": i,
        "sku": f"SKU{i:03d}",
        "quantity": i * 3 % 7,
        "updated_at": f"2024-01-{i:02d}T00:00:00Z",
    }
    for i in range(1, 26)
]


@dataclass
class ServerState:
    """What the server saw; tests read it to assert on requests, not just on results."""

    hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    received: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (time.time)
    token_requests: int = 0
    token_ttl: float = 3600.0
    request_times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def reset(self) -> None:
        self.hits.clear()
        self.received.clear()
        self.tokens.clear()
        self.token_requests = 0
        self.token_ttl = 3600.0
        self.request_times.clear()


STATE = ServerState()


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


# -- pagination ------------------------------------------------------------------------------
PAGE = 10


async def link_pages(request: Request) -> Response:
    page = int(request.query_params.get("page", "1"))
    chunk = ITEMS[(page - 1) * PAGE : page * PAGE]
    headers = {}
    if page * PAGE < len(ITEMS):
        url = f"{_base(request)}/items/link?page={page + 1}"
        headers["Link"] = f'<{url}>; rel="next", <{_base(request)}/items/link?page=1>; rel="first"'
    return JSONResponse(chunk, headers=headers)


async def next_url_pages(request: Request) -> Response:
    page = int(request.query_params.get("page", "1"))
    chunk = ITEMS[(page - 1) * PAGE : page * PAGE]
    nxt = f"/items/next?page={page + 1}" if page * PAGE < len(ITEMS) else None
    return JSONResponse({"data": chunk, "links": {"next": nxt}})


async def cursor_pages(request: Request) -> Response:
    start = int(request.query_params.get("cursor") or 0)
    chunk = ITEMS[start : start + PAGE]
    nxt = str(start + PAGE) if start + PAGE < len(ITEMS) else None
    return JSONResponse({"items": chunk, "meta": {"next_cursor": nxt, "has_more": nxt is not None}})


async def offset_pages(request: Request) -> Response:
    offset = int(request.query_params.get("offset", "0"))
    limit = int(request.query_params.get("limit", "10"))
    STATE.hits["offset"] += 1
    return JSONResponse({"results": ITEMS[offset : offset + limit], "total": len(ITEMS)})


async def numbered_pages(request: Request) -> Response:
    page = int(request.query_params.get("page", "1"))
    size = int(request.query_params.get("per_page", "10"))
    STATE.hits["page"] += 1
    pages = -(-len(ITEMS) // size)
    chunk = ITEMS[(page - 1) * size : page * size]
    return JSONResponse({"items": chunk, "total_pages": pages})


async def incremental(request: Request) -> Response:
    since = request.query_params.get("updated_since")
    STATE.received["incremental"].append({"updated_since": since})
    chunk = [i for i in ITEMS if since is None or i["updated_at"] > since]
    return JSONResponse({"items": chunk[:PAGE]})


async def csv_items(request: Request) -> Response:
    lines = ["sku,quantity"] + [f"{i['sku']},{i['quantity']}" for i in ITEMS[:5]]
    return PlainTextResponse("\n".join(lines) + "\n", media_type="text/csv")


# -- failures --------------------------------------------------------------------------------
async def flaky(request: Request) -> Response:
    """Fails with 503 `fail` times per key, then answers."""
    key = request.path_params["key"]
    fail = int(request.query_params.get("fail", "2"))
    STATE.hits[f"flaky:{key}"] += 1
    if STATE.hits[f"flaky:{key}"] <= fail:
        return PlainTextResponse("busy", status_code=503)
    return JSONResponse([{"ok": True, "attempt": STATE.hits[f"flaky:{key}"]}])


async def rate_limited(request: Request) -> Response:
    """429 with Retry-After on the first call per key."""
    key = request.path_params["key"]
    STATE.hits[f"429:{key}"] += 1
    STATE.request_times[f"429:{key}"].append(time.monotonic())
    if STATE.hits[f"429:{key}"] == 1:
        retry = request.query_params.get("retry_after", "1")
        return PlainTextResponse("slow down", status_code=429, headers={"Retry-After": retry})
    return JSONResponse([{"ok": True}])


async def status(request: Request) -> Response:
    code = int(request.path_params["code"])
    STATE.hits[f"status:{code}"] += 1
    return PlainTextResponse(f"status {code}", status_code=code)


async def slow(request: Request) -> Response:
    await asyncio.sleep(float(request.query_params.get("delay", "2")))
    return JSONResponse([{"slow": True}])


async def always_down(request: Request) -> Response:
    key = request.path_params["key"]
    STATE.hits[f"down:{key}"] += 1
    return PlainTextResponse("down", status_code=500)


# -- auth ------------------------------------------------------------------------------------
async def oauth_token(request: Request) -> Response:
    form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
    header = request.headers.get("authorization", "")
    cid = csecret = None
    if header.startswith("Basic "):
        cid, _, csecret = base64.b64decode(header[6:]).decode().partition(":")
    else:
        cid, csecret = str(form.get("client_id")), str(form.get("client_secret"))
    if form.get("grant_type") != "client_credentials":
        return JSONResponse({"error": "unsupported_grant_type"}, status_code=400)
    if cid != CLIENT_ID or csecret != CLIENT_SECRET:
        return JSONResponse({"error": "invalid_client"}, status_code=401)
    STATE.token_requests += 1
    token = secrets.token_hex(16)
    STATE.tokens[token] = time.time() + STATE.token_ttl
    return JSONResponse(
        {"access_token": token, "token_type": "Bearer", "expires_in": STATE.token_ttl}
    )


async def oauth_revoke(request: Request) -> Response:
    STATE.tokens.clear()
    return Response(status_code=204)


async def protected(request: Request) -> Response:
    header = request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ")
    if STATE.tokens.get(token, 0) < time.time():
        return JSONResponse({"error": "invalid_token"}, status_code=401)
    STATE.hits["protected"] += 1
    return JSONResponse([{"secret_data": True}])


async def api_key_items(request: Request) -> Response:
    if (
        request.headers.get("x-api-key") != API_KEY
        and request.query_params.get("api_key") != API_KEY
    ):
        return JSONResponse({"error": "bad key"}, status_code=403)
    return JSONResponse(ITEMS[:3])


async def basic_items(request: Request) -> Response:
    expected = "Basic " + base64.b64encode(b"user:pass-word").decode()
    if request.headers.get("authorization") != expected:
        return JSONResponse({"error": "bad credentials"}, status_code=401)
    return JSONResponse(ITEMS[:2])


# -- sinks -----------------------------------------------------------------------------------
async def sink(request: Request) -> Response:
    key = request.path_params["key"]
    body = await request.body()
    STATE.received[key].append(
        {
            "path": request.url.path,
            "method": request.method,
            "headers": dict(request.headers),
            "body": json.loads(body) if body and body[:1] in b"[{" else body.decode(),
        }
    )
    return JSONResponse({"ok": True}, status_code=201)


async def sink_with_id(request: Request) -> Response:
    key = request.path_params["key"]
    body = await request.body()
    STATE.received[key].append(
        {"path": request.url.path, "method": request.method, "body": json.loads(body)}
    )
    return JSONResponse({"ok": True})


async def flaky_sink(request: Request) -> Response:
    """Records every request; answers 503 to every 3rd one per key."""
    key = request.path_params["key"]
    STATE.hits[f"flakysink:{key}"] += 1
    body = json.loads(await request.body())
    if STATE.hits[f"flakysink:{key}"] % 3 == 0:
        return PlainTextResponse("busy", status_code=503)
    STATE.received[key].append(
        {"body": body, "idempotency": request.headers.get("idempotency-key")}
    )
    return JSONResponse({"ok": True})


async def fast_sink(request: Request) -> Response:
    await request.body()
    STATE.hits["fast"] += 1
    return Response(b'{"ok":true}', media_type="application/json")


async def webhook_receiver(request: Request) -> Response:
    """Checks a Standard Webhooks signature like a receiver would."""
    body = await request.body()
    key = base64.b64decode(WEBHOOK_SECRET.removeprefix("whsec_"))
    msg_id = request.headers["webhook-id"]
    ts = request.headers["webhook-timestamp"]
    expected = base64.b64encode(
        hmac.new(key, f"{msg_id}.{ts}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    valid = any(
        sig.partition(",")[2] == expected for sig in request.headers["webhook-signature"].split()
    )
    STATE.received["webhooks"].append({"id": msg_id, "valid": valid, "body": json.loads(body)})
    return Response(status_code=204 if valid else 401)


# -- GraphQL ---------------------------------------------------------------------------------
SDL = """
type Product { id: ID!, sku: String!, title: String!, updatedAt: String }
type PageInfo { hasNextPage: Boolean!, endCursor: String }
type ProductEdge { node: Product!, cursor: String! }
type ProductConnection { edges: [ProductEdge!]!, pageInfo: PageInfo! }
input ProductInput { sku: String!, title: String! }
type Query {
  products(first: Int = 10, after: String, updatedSince: String): ProductConnection!
  broken: [Product]
}
type Mutation { createProduct(input: ProductInput!): Product }
"""
SCHEMA = build_schema(SDL)


def _product(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(item["id"]),
        "sku": item["sku"],
        "title": f"Product {item['id']}",
        "updatedAt": item["updated_at"],
    }


def _products(
    info: Any, first: int = 10, after: str | None = None, updatedSince: str | None = None
) -> Any:
    items = [i for i in ITEMS if updatedSince is None or i["updated_at"] > updatedSince]
    start = int(after) if after else 0
    chunk = items[start : start + first]
    end = start + len(chunk)
    return {
        "edges": [{"node": _product(i), "cursor": str(start + n + 1)} for n, i in enumerate(chunk)],
        "pageInfo": {"hasNextPage": end < len(items), "endCursor": str(end) if chunk else None},
    }


def _broken(info: Any) -> Any:
    def bad_title(info: Any) -> str:
        raise ValueError("title unavailable")

    return [_product(ITEMS[0]), {**_product(ITEMS[1]), "title": bad_title}]


def _create(info: Any, input: dict[str, Any]) -> Any:
    if input["sku"] == "BAD":
        raise ValueError("sku BAD is refused")
    STATE.received["graphql"].append(input)
    return {"id": str(len(STATE.received["graphql"])), **input}


async def graphql_endpoint(request: Request) -> Response:
    payload = await request.json()
    root = {"products": _products, "broken": _broken, "createProduct": _create}
    result = await graphql(
        SCHEMA,
        payload["query"],
        root_value=root,
        variable_values=payload.get("variables"),
        operation_name=payload.get("operationName"),
    )
    body: dict[str, Any] = {"data": result.data}
    if result.errors:
        body["errors"] = [e.formatted for e in result.errors]
    return JSONResponse(body)


# -- the seed's Python API examples -----------------------------------------------------------
async def example_products(request: Request) -> Response:
    body = await request.json()
    STATE.received["example_products"].append(
        {"body": body, "api_key": request.headers.get("x-api-key")}
    )
    return JSONResponse({"id": len(STATE.received["example_products"]), **body}, status_code=201)


routes = [
    Route("/items/link", link_pages),
    Route("/items/next", next_url_pages),
    Route("/items/cursor", cursor_pages),
    Route("/items/offset", offset_pages),
    Route("/items/page", numbered_pages),
    Route("/items/incremental", incremental),
    Route("/items/csv", csv_items),
    Route("/flaky/{key}", flaky, methods=["GET", "POST"]),
    Route("/ratelimited/{key}", rate_limited, methods=["GET", "POST"]),
    Route("/status/{code:int}", status, methods=["GET", "POST"]),
    Route("/slow", slow),
    Route("/down/{key}", always_down, methods=["GET", "POST"]),
    Route("/oauth/token", oauth_token, methods=["POST"]),
    Route("/oauth/revoke", oauth_revoke, methods=["POST"]),
    Route("/protected", protected, methods=["GET", "POST"]),
    Route("/apikey/items", api_key_items),
    Route("/basic/items", basic_items),
    Route("/sink/{key}", sink, methods=["POST", "PUT", "PATCH"]),
    Route("/sink/{key}/{item}", sink_with_id, methods=["POST", "PUT", "PATCH"]),
    Route("/flakysink/{key}", flaky_sink, methods=["POST"]),
    Route("/fast", fast_sink, methods=["POST"]),
    Route("/webhooks/receive", webhook_receiver, methods=["POST"]),
    Route("/graphql", graphql_endpoint, methods=["POST"]),
    Route("/v1/products", example_products, methods=["POST"]),
]

app = Starlette(routes=routes)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ServerThread:
    """uvicorn in a thread with its own event loop, so sync and async tests can both use it."""

    def __init__(self, asgi: Any = app, port: int | None = None, **tls: Any) -> None:
        """``tls``: uvicorn's ``ssl_certfile`` and ``ssl_keyfile`` to serve https."""
        self.port = port or free_port()
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            asgi, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off", **tls
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="info")


if __name__ == "__main__":
    main()
