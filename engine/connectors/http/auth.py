"""HTTP and GraphQL authentication settings: api_key, bearer, basic, oauth2 client credentials.

Secrets are pydantic ``SecretStr``: they never appear in reprs, errors or audit events. The
httpx flows that apply them live in :mod:`engine.connectors.http.auth_flows`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = [
    "ApiKeyAuth",
    "AuthSpec",
    "BasicAuth",
    "BearerAuth",
    "OAuth2Auth",
    "secret_query_params",
]


class _Auth(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ApiKeyAuth(_Auth):
    """An API key in a header or a query parameter."""

    type: Literal["api_key"] = "api_key"
    key: SecretStr = Field(description="The key; use `${env:NAME}`.")
    name: str = Field("X-API-Key", description="Header or query parameter name.")
    location: Literal["header", "query"] = Field("header", description="Where the key goes.")
    prefix: str | None = Field(None, description="Text before the key, e.g. 'ApiKey '.")


class BearerAuth(_Auth):
    """A static bearer token in the Authorization header."""

    type: Literal["bearer"] = "bearer"
    token: SecretStr = Field(description="The token; use `${env:NAME}`.")


class BasicAuth(_Auth):
    """HTTP Basic authentication."""

    type: Literal["basic"] = "basic"
    username: str = Field(description="User name.")
    password: SecretStr = Field(description="Password; use `${env:NAME}`.")


class OAuth2Auth(_Auth):
    """OAuth2 client credentials: a token fetched from `token_url`, cached and refreshed."""

    type: Literal["oauth2"] = "oauth2"
    token_url: str = Field(description="The token endpoint.")
    client_id: str = Field(description="Client id.")
    client_secret: SecretStr = Field(description="Client secret; use `${env:NAME}`.")
    scope: str | None = Field(None, description="Space-separated scopes to request.")
    audience: str | None = Field(
        None, description="`audience` parameter, for providers needing it."
    )
    client_auth: Literal["basic", "body"] = Field(
        "basic", description="Send the client credentials as Basic auth or in the form body."
    )
    refresh_before: float = Field(
        60.0, ge=0, description="Seconds before expiry the token is refreshed."
    )


AuthSpec = Annotated[ApiKeyAuth | BearerAuth | BasicAuth | OAuth2Auth, Field(discriminator="type")]


def secret_query_params(
    spec: ApiKeyAuth | BearerAuth | BasicAuth | OAuth2Auth | None,
) -> tuple[str, ...]:
    """Query parameter names carrying a secret, to redact from URLs in messages."""
    if isinstance(spec, ApiKeyAuth) and spec.location == "query":
        return (spec.name,)
    return ()
