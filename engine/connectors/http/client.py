"""The HTTP endpoint a connector talks to: one pooled httpx client with auth, rate limit, breaker.

``HttpEndpoint`` runs one request attempt (circuit check, token bucket, send, status mapped)
and hands retries to the runtime through ``context.call``; its settings are
:class:`~engine.connectors.http.options.HttpOptions`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from engine.connectors.context import ConnectorContext
from engine.connectors.http.auth import secret_query_params
from engine.connectors.http.auth_flows import TokenCache, build_auth
from engine.connectors.http.errors import (
    HttpPermanentError,
    HttpTransientError,
    error_for_status,
    map_http_errors,
)
from engine.connectors.http.options import HttpOptions
from engine.errors import FatalError
from engine.resilience.breaker import BreakerState, CircuitBreaker
from engine.resilience.ratelimit import RateLimiter, build_limiter

__all__ = ["HttpEndpoint"]


class HttpEndpoint:
    """One component's connection: open once, send many, close once."""

    def __init__(
        self,
        options: HttpOptions,
        context: ConnectorContext,
        *,
        base_headers: Mapping[str, str] | None = None,
    ) -> None:
        self.options = options
        self.context = context
        # the component's `timeout`, which the runtime passes on through the context;
        # INTEGRATION_TIMEOUT when it sets none
        self.timeout = context.timeout or context.settings.integration_timeout
        self.secret_params = secret_query_params(options.auth)
        self._base_headers = dict(base_headers or {})
        self._client: httpx.AsyncClient | None = None
        self._tokens: TokenCache | None = None
        self.limiter: RateLimiter | None = None
        self.breaker: CircuitBreaker | None = None

    # -- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        if self._client is not None:
            return
        opts = self.options
        verify = opts.tls_verify()
        auth, self._tokens = build_auth(
            opts.auth, verify=verify, timeout=self.timeout, on_event=self._event
        )
        self._client = httpx.AsyncClient(
            auth=auth,
            headers={**self._base_headers, **opts.headers},
            timeout=self.timeout,
            verify=verify,
            follow_redirects=True,
            limits=httpx.Limits(
                max_connections=opts.max_connections,
                max_keepalive_connections=opts.max_connections,
            ),
        )
        if opts.rate_limit is not None:
            key = f"{self.context.pipeline}:{self.context.component_id}"
            redis = self.context.settings.integration_redis_url
            self.limiter = build_limiter(opts.rate_limit, key, default_redis=redis)
        if opts.circuit_breaker is not None:
            self.breaker = CircuitBreaker(opts.circuit_breaker, on_change=self._circuit_changed)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        if self._tokens is not None:
            await self._tokens.aclose()
            self._tokens = None
        if self.limiter is not None:
            await self.limiter.aclose()
            self.limiter = None

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            raise FatalError("HttpEndpoint used before open()")
        return self._client

    # -- requests -------------------------------------------------------------------------
    async def attempt(self, method: str, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """One try: circuit check, a token from the bucket, the request, its status mapped."""
        breaker = self.breaker
        if breaker is not None:
            breaker.before()
        try:
            if self.limiter is not None:
                await self.limiter.acquire()
            with map_http_errors(method, url, self.secret_params):
                response = await self.client.request(method, url, **kwargs)
            self.context.meter.response(response.status_code)
            error = error_for_status(response, self.secret_params)
        except HttpTransientError as exc:
            if breaker is not None:
                breaker.failure(str(exc.status or "connection"))
            raise
        except BaseException:
            if breaker is not None:
                breaker.release()
            raise
        if breaker is not None:
            # a 429 says the endpoint is alive and wants us slower: Retry-After handles it
            if isinstance(error, HttpTransientError) and error.status != 429:
                breaker.failure(str(error.status))
            else:
                breaker.success()
        if error is not None:
            raise error
        return response

    async def request(self, method: str, url: str | httpx.URL, **kwargs: Any) -> httpx.Response:
        """A request under the runtime's timeout and retry policy."""
        return await self.context.call(lambda: self.attempt(method, url, **kwargs))

    async def check(self) -> None:
        """Probe the endpoint once: unreachable, 5xx, 401, 403 and 404 are unhealthy.

        Other answers (405 from a POST-only endpoint, 400 for a missing body) prove the
        endpoint is there and accepts our credentials.
        """
        url = self.options.health_url or self.options.url
        try:
            await self.attempt("GET", url)
        except HttpPermanentError as exc:
            if exc.status in (401, 403, 404) or exc.status is None:
                raise

    # -- audit ------------------------------------------------------------------------------
    def _event(self, action: str, level: str, details: Mapping[str, object]) -> None:
        self.context.emit(action, level, **details)

    def _circuit_changed(self, old: BreakerState, new: BreakerState, reason: str) -> None:
        level = "WARNING" if new is BreakerState.OPEN else "INFO"
        self.context.emit(
            f"circuit_{new.value}",
            level,
            previous=old.value,
            state=new.value,
            reason=reason,
            resource=self.options.resource(),
        )
