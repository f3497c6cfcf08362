"""AMQP connection settings and the robust (auto-reconnecting) connect step."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from engine.redact import MASK

if TYPE_CHECKING:
    from aio_pika.abc import AbstractRobustConnection

__all__ = ["AmqpEndpoint", "connect"]


class AmqpEndpoint(BaseModel):
    """Where the broker is; the URL carries the credentials, so it is a secret."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: SecretStr = Field(
        description="AMQP URL `amqp://user:password@host:port/vhost` (`amqps://` for TLS); "
        "keep the password in `${env:...}`.",
        examples=["amqp://app:${env:AMQP_PASSWORD}@rabbit:5672/"],
    )

    def endpoint(self) -> str:
        """The URL without its password, for logs and the audit trail."""
        # urllib, not yarl (aio-pika's): validate runs without the `amqp` extra
        try:
            parts = urlsplit(self.url.get_secret_value())
            password = parts.password
        except ValueError:
            return "amqp://<invalid url>"
        if password is not None:
            userinfo, _, hostport = parts.netloc.rpartition("@")
            user = userinfo.partition(":")[0]
            parts = parts._replace(netloc=f"{user}:{MASK}@{hostport}")
        return urlunsplit(parts)


async def connect(cfg: AmqpEndpoint, *, timeout: float | None = None) -> AbstractRobustConnection:
    """A robust connection: it reconnects and restores channels, QoS and consumers."""
    # aio-pika is imported by a component about to run, never by config validation
    import aio_pika

    from engine.connectors.amqp.errors import map_amqp_error

    try:
        return await aio_pika.connect_robust(
            cfg.url.get_secret_value(), timeout=timeout, reconnect_interval=0.5
        )
    except Exception as exc:
        raise map_amqp_error(exc, action=f"{cfg.endpoint()}: connect") from None
