"""Connection settings shared by the http, graphql and webhook-sink kinds, without httpx.

The settings are read by config validation; the client that uses them,
:class:`~engine.connectors.http.client.HttpEndpoint`, is imported only to run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.connectors.http.auth import AuthSpec, secret_query_params
from engine.errors import PermanentError
from engine.redact import KEY_MATERIAL, redact_url
from engine.resilience.breaker import CircuitBreakerConfig
from engine.resilience.ratelimit import RateLimitSpecField

if TYPE_CHECKING:
    import ssl

__all__ = ["HttpOptions"]


class HttpOptions(BaseModel):
    """Connection fields shared by the http and graphql connectors."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(description="Endpoint URL.", examples=["https://api.example.com/v1/items"])
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers.")
    auth: AuthSpec | None = Field(
        None, description="api_key, bearer, basic or oauth2 (client credentials)."
    )
    rate_limit: RateLimitSpecField | None = Field(
        None,
        description="Token bucket: '100/s' or { rate, burst, redis, key }; shared through "
        "Redis when INTEGRATION_REDIS_URL or `redis` is set.",
    )
    circuit_breaker: CircuitBreakerConfig | None = Field(
        None, description="Fail fast after repeated failures: { failures, reset_timeout, ... }."
    )
    verify_tls: bool = Field(True, description="Verify the server's TLS certificate.")
    ca_cert: Annotated[str | None, KEY_MATERIAL] = Field(
        None,
        description="Trust these CA certificates (PEM) instead of the system's, for a private "
        "CA or a self-signed server: `${file:certs/ca.pem}` (several lines allowed).",
        examples=["${file:certs/ca.pem}"],
    )
    max_connections: int = Field(100, ge=1, description="Connection pool size.")
    health_url: str | None = Field(
        None, description="URL probed by health checks; default `url` (GET)."
    )

    @field_validator("url", "health_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.lower().startswith(("http://", "https://")):
            raise ValueError(f"{redact_url(value)!r} is not an http:// or https:// URL")
        return value

    @field_validator("ca_cert")
    @classmethod
    def _pem(cls, value: str | None) -> str | None:
        if value is not None and "-----BEGIN CERTIFICATE-----" not in value:
            raise ValueError("ca_cert takes PEM certificates; read a file with ${file:path}")
        return value

    def tls_verify(self) -> bool | ssl.SSLContext:
        """What httpx's ``verify`` gets: off, the system's CAs, or exactly ``ca_cert``."""
        if not self.verify_tls:
            return False
        if self.ca_cert is None:
            return True
        import ssl

        try:
            return ssl.create_default_context(cadata=self.ca_cert)
        except (ssl.SSLError, ValueError) as exc:  # the reason, never the certificate
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise PermanentError(f"ca_cert does not load: {reason}") from None

    def resource(self) -> str | None:
        return redact_url(self.url, secret_query_params(self.auth))
