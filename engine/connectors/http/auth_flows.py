"""The httpx auth flows behind the auth settings: header, query, Basic, OAuth2 bearer.

The OAuth2 token is fetched once, cached, refreshed shortly before it expires, and refreshed
once more when the endpoint answers 401 anyway.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncGenerator, Callable, Generator, Mapping
from typing import TYPE_CHECKING

import anyio
import httpx

from engine.connectors.http.auth import ApiKeyAuth, BasicAuth, BearerAuth, OAuth2Auth
from engine.connectors.http.errors import (
    HttpPermanentError,
    HttpTransientError,
    error_for_status,
    map_http_errors,
)
from engine.redact import MASK, redact_url

if TYPE_CHECKING:
    from engine.errors import EngineError

__all__ = ["EventHook", "OAuth2Flow", "TokenCache", "build_auth"]

EventHook = Callable[[str, str, Mapping[str, object]], None]


class _HeaderAuth(httpx.Auth):
    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers[self._name] = self._value
        yield request


class _QueryAuth(httpx.Auth):
    def __init__(self, name: str, value: str) -> None:
        self._name = name
        self._value = value

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.url = request.url.copy_merge_params({self._name: self._value})
        yield request


class _NoAuth(httpx.Auth):
    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        yield request


class TokenCache:
    """One client-credentials token, fetched on demand and shared by concurrent requests."""

    def __init__(
        self,
        spec: OAuth2Auth,
        *,
        verify: bool | ssl.SSLContext = True,
        timeout: float = 30.0,
        on_event: EventHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.spec = spec
        self._client = httpx.AsyncClient(verify=verify, timeout=timeout)
        self._on_event = on_event
        self._clock = clock
        self._lock = anyio.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self.fetches = 0

    def _fresh(self) -> bool:
        return self._token is not None and self._clock() < self._expires_at

    async def token(self, *, stale: str | None = None) -> str:
        """A valid token; ``stale`` is one the endpoint refused (401): replace it once."""
        if self._fresh() and (stale is None or self._token != stale):
            assert self._token is not None
            return self._token
        async with self._lock:
            # another task may have refreshed while this one waited for the lock
            if self._fresh() and (stale is None or self._token != stale):
                assert self._token is not None
                return self._token
            reason = "rejected" if stale is not None else ("expiring" if self._token else "initial")
            return await self._fetch(reason)

    async def _fetch(self, reason: str) -> str:
        spec = self.spec
        data = {"grant_type": "client_credentials"}
        if spec.scope:
            data["scope"] = spec.scope
        if spec.audience:
            data["audience"] = spec.audience
        secret = spec.client_secret.get_secret_value()
        if spec.client_auth == "basic":
            auth: httpx.Auth = httpx.BasicAuth(spec.client_id, secret)
        else:
            auth = _NoAuth()
            data["client_id"] = spec.client_id
            data["client_secret"] = secret
        with map_http_errors("POST", spec.token_url):
            response = await self._client.post(spec.token_url, data=data, auth=auth)
        error: EngineError | None = error_for_status(response)
        if error is not None:
            message = f"oauth2 token request refused: {error}{_oauth_reason(response, secret)}"
            if isinstance(error, HttpTransientError):
                raise HttpTransientError(
                    message, status=error.status, retry_after=error.retry_after
                )
            raise HttpPermanentError(message, status=response.status_code)
        try:
            body = response.json()
            token = str(body["access_token"])
        except (ValueError, KeyError, TypeError):
            raise HttpPermanentError(
                f"oauth2 token response from {redact_url(spec.token_url)} has no access_token"
            ) from None
        expires_in = float(body.get("expires_in") or 3600)
        margin = min(spec.refresh_before, expires_in / 2)
        self._token = token
        self._expires_at = self._clock() + expires_in - margin
        self.fetches += 1
        if self._on_event is not None:
            self._on_event(
                "oauth2_token_refreshed",
                "INFO",
                {
                    "token_url": redact_url(spec.token_url),
                    "reason": reason,
                    "expires_in": expires_in,
                },
            )
        return token

    async def aclose(self) -> None:
        await self._client.aclose()


class OAuth2Flow(httpx.Auth):
    """Adds the cached bearer token; on 401 refreshes it once and resends."""

    def __init__(self, cache: TokenCache) -> None:
        self.cache = cache

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        token = await self.cache.token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401:
            await response.aread()
            token = await self.cache.token(stale=token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        raise RuntimeError("oauth2 auth needs the async client")


def build_auth(
    spec: ApiKeyAuth | BearerAuth | BasicAuth | OAuth2Auth | None,
    *,
    verify: bool | ssl.SSLContext = True,
    timeout: float = 30.0,
    on_event: EventHook | None = None,
) -> tuple[httpx.Auth | None, TokenCache | None]:
    """The httpx auth for a spec, and the token cache to close when it is OAuth2."""
    if spec is None:
        return None, None
    if isinstance(spec, ApiKeyAuth):
        value = (spec.prefix or "") + spec.key.get_secret_value()
        if spec.location == "query":
            return _QueryAuth(spec.name, value), None
        return _HeaderAuth(spec.name, value), None
    if isinstance(spec, BearerAuth):
        return _HeaderAuth("Authorization", f"Bearer {spec.token.get_secret_value()}"), None
    if isinstance(spec, BasicAuth):
        return httpx.BasicAuth(spec.username, spec.password.get_secret_value()), None
    cache = TokenCache(spec, verify=verify, timeout=timeout, on_event=on_event)
    return OAuth2Flow(cache), cache


def _oauth_reason(response: httpx.Response, secret: str) -> str:
    """The RFC 6749 (5.2) ``error`` code and description of a refused token request, if any.

    Only these two fields are shown, shortened, with the client secret masked should a
    server echo it back.
    """
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict) or not isinstance(body.get("error"), str):
        return ""

    def masked(text: str, limit: int) -> str:
        return (text.replace(secret, MASK) if secret else text)[:limit]

    parts = [f"error={masked(body['error'], 100)}"]
    description = body.get("error_description")
    if isinstance(description, str) and description:
        parts.append(f"error_description={masked(description, 300)!r}")
    return " (" + ", ".join(parts) + ")"
