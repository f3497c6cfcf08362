"""The HTTP server under `engine serve`: uvicorn, with a header deadline and no signal handling.

uvicorn captures SIGINT/SIGTERM and raises them again once it has shut down, which would kill
the process before the pipeline drains; `EngineServer` handles the signals itself instead.
uvicorn has no deadline for a request's headers, so a client that sends them a byte at a time
holds its connection for ever (slowloris); :class:`HeaderTimeoutH11` closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["HeaderTimeoutH11", "Server", "http_server"]


class HeaderTimeoutH11(H11Protocol):
    """h11 with a deadline from a request's first byte (or the connection) to its last header."""

    header_timeout: float = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        before = self.cycle
        if before is None or before.response_complete:
            self._arm()  # bytes of a new request: its headers are due within the deadline
        super().data_received(data)
        if self.cycle is not before and self.cycle is not None:
            self._disarm()  # h11 has the request line and every header

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_deadline is None:
            self._header_deadline = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _expired(self) -> None:
        self._header_deadline = None
        idle = self.cycle is None or self.cycle.response_complete
        if idle and not self.transport.is_closing():
            self.transport.close()


class Server(uvicorn.Server):
    """uvicorn without its signal handlers: the caller decides what a signal means."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_server(app: Any, host: str, port: int, *, log_level: str, header_timeout: float) -> Server:
    """A server for ``app`` whose connections must send their headers in ``header_timeout``."""
    protocol = type("EngineH11", (HeaderTimeoutH11,), {"header_timeout": header_timeout})
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=None,  # its records go through the engine's handler and format
        lifespan="off",
        access_log=False,
        http=protocol,
    )
    return Server(config)
