"""HTTP plumbing for the http and graphql connectors: client, auth, errors, pagination, cursors."""

from __future__ import annotations

from engine.connectors.http.auth import (
    ApiKeyAuth,
    AuthSpec,
    BasicAuth,
    BearerAuth,
    OAuth2Auth,
    TokenCache,
    build_auth,
)
from engine.connectors.http.client import HttpEndpoint, HttpOptions, default_timeout
from engine.connectors.http.errors import (
    HttpPermanentError,
    HttpTransientError,
    error_for_status,
    map_http_errors,
    redact_url,
    retry_after_seconds,
)
from engine.connectors.http.incremental import CursorTracker, IncrementalSpec
from engine.connectors.http.pagination import Page, PaginationSpec, Paginator

__all__ = [
    "ApiKeyAuth",
    "AuthSpec",
    "BasicAuth",
    "BearerAuth",
    "CursorTracker",
    "HttpEndpoint",
    "HttpOptions",
    "HttpPermanentError",
    "HttpTransientError",
    "IncrementalSpec",
    "OAuth2Auth",
    "Page",
    "PaginationSpec",
    "Paginator",
    "TokenCache",
    "build_auth",
    "default_timeout",
    "error_for_status",
    "map_http_errors",
    "redact_url",
    "retry_after_seconds",
]
