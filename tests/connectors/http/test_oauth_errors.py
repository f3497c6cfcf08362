"""OAuth2 token errors keep their RFC 6749 reason, against a token endpoint written here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from tests.support.http_server import ServerThread
from tests.support.pipelines import run_file, write_pipeline

SECRET = "s3cr3t-'quoted'-value"


class TokenEndpoint:
    """``POST /token`` answers what the test sets; ``GET /items`` wants the bearer token."""

    def __init__(self) -> None:
        self.answer: Response = JSONResponse({"access_token": "tok", "expires_in": 60})
        self.requests = 0
        self.app = Starlette(
            routes=[
                Route("/token", self.token, methods=["POST"]),
                Route("/items", self.items),
            ]
        )

    async def token(self, request: Request) -> Response:
        self.requests += 1
        await request.body()
        return self.answer

    async def items(self, request: Request) -> Response:
        if request.headers.get("authorization") != "Bearer tok":
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        return JSONResponse([{"id": 1}])


@pytest.fixture
def idp() -> Iterator[tuple[TokenEndpoint, str]]:
    endpoint = TokenEndpoint()
    with ServerThread(endpoint.app) as server:
        yield endpoint, server.url


def run_against(tmp_path: Path, url: str, client_auth: str = "body") -> Any:
    text = f"""
[pipeline]
name = "oauth"

[sources.api]
type = "http"
url = "{url}/items"
retry = {{ attempts = 2, backoff = 0.01, max_delay = 0.01 }}
auth = {{ type = "oauth2", token_url = "{url}/token", client_id = "app", \
client_secret = "{SECRET}", client_auth = "{client_auth}" }}

[sinks.out]
type = "file"
inputs = ["api"]
path = "{tmp_path / "out.jsonl"}"
"""
    return anyio.run(run_file, write_pipeline(tmp_path, text))


@pytest.mark.parametrize("client_auth", ["body", "basic"])
def test_invalid_client_is_reported_with_its_code_and_description(
    tmp_path: Path, idp: tuple[TokenEndpoint, str], client_auth: str
) -> None:
    endpoint, url = idp
    endpoint.answer = JSONResponse(
        {
            "error": "invalid_client",
            "error_description": f"Client authentication failed (secret {SECRET} unknown)",
        },
        status_code=400,
    )
    summary = run_against(tmp_path, url, client_auth)
    assert not summary.ok
    error = summary.error or ""
    assert "oauth2 token request refused" in error
    assert "HTTP 400" in error
    assert "error=invalid_client" in error
    assert "Client authentication failed (secret *** unknown)" in error
    assert SECRET not in error
    assert endpoint.requests == 1  # permanent: not retried
    assert summary.stages["api"].retries == 0


def test_a_transient_token_error_keeps_its_code_and_is_retried(
    tmp_path: Path, idp: tuple[TokenEndpoint, str]
) -> None:
    endpoint, url = idp
    endpoint.answer = JSONResponse(
        {"error": "temporarily_unavailable", "error_description": "maintenance"},
        status_code=503,
    )
    summary = run_against(tmp_path, url)
    assert not summary.ok
    assert "error=temporarily_unavailable" in (summary.error or "")
    assert "'maintenance'" in (summary.error or "")
    assert endpoint.requests == 2  # transient: retried up to `attempts`


def test_a_token_error_without_an_rfc_6749_body_still_names_the_status(
    tmp_path: Path, idp: tuple[TokenEndpoint, str]
) -> None:
    endpoint, url = idp
    endpoint.answer = PlainTextResponse("<html>bad gateway config</html>", status_code=403)
    summary = run_against(tmp_path, url)
    assert not summary.ok
    error = summary.error or ""
    assert "HTTP 403" in error
    assert "error=" not in error
    assert "html" not in error
