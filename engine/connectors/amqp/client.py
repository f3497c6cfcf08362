"""AMQP connection settings and the robust (auto-reconnecting) connect step."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from engine.logs import bound
from engine.redact import MASK

if TYPE_CHECKING:
    from aio_pika.abc import AbstractRobustConnection

__all__ = ["AmqpEndpoint", "connect"]

log = logging.getLogger("engine.amqp")


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
        connection = await aio_pika.connect_robust(
            cfg.url.get_secret_value(), timeout=timeout, reconnect_interval=0.5
        )
    except Exception as exc:
        raise map_amqp_error(exc, action=f"{cfg.endpoint()}: connect") from None
    _Reconnects(connection, cfg.endpoint())
    return connection


class _Reconnects:
    """Logs each reconnect episode of a robust connection twice, whatever aio-pika retries
    meanwhile: a warning when the connection is lost, and a line when it is back."""

    def __init__(self, connection: AbstractRobustConnection, endpoint: str) -> None:
        self.endpoint = endpoint
        self.context = bound()  # the callbacks run in aio-pika's tasks
        self.lost_at: float | None = None
        self.episodes = 0
        connection.close_callbacks.add(self.lost)
        connection.reconnect_callbacks.add(self.back)

    def lost(self, connection: object, exc: BaseException | None = None) -> None:
        if self.lost_at is not None or getattr(connection, "_close_called", False):
            return  # the same episode, or our own close
        if exc is None or isinstance(exc, asyncio.CancelledError):
            return
        self.lost_at = time.monotonic()
        self.episodes += 1
        log.warning(
            f"connection to {self.endpoint} lost ({type(exc).__name__}: {exc}); reconnecting",
            extra={**self.context, "reconnect": self.episodes},
        )

    def back(self, connection: object) -> None:
        if self.lost_at is None:
            return
        took, self.lost_at = time.monotonic() - self.lost_at, None
        log.info(
            f"reconnected to {self.endpoint} after {took:.1f}s",
            extra={**self.context, "reconnect": self.episodes, "down_s": round(took, 3)},
        )
