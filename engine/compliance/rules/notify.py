"""The ``notify`` action: POST a small, HMAC-signed JSON message to a webhook.

Sent through the engine's HTTP client from one background thread, so that logging never
waits on the network; the body names the rule and the event, never the event's details.
The receiver checks
``X-Engine-Signature: sha256=HEX`` = HMAC-SHA256(secret, timestamp + "." + body).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future, wait
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
from anyio.from_thread import BlockingPortal, start_blocking_portal

from engine.components.base import ComponentContext
from engine.connectors.http.client import HttpEndpoint
from engine.connectors.http.options import HttpOptions
from engine.errors import EngineError

__all__ = ["Notifier", "sign_notification", "verify_notification"]

log = logging.getLogger("engine.audit.compliance")


def sign_notification(secret: bytes, timestamp: str, body: bytes) -> str:
    """The ``X-Engine-Signature`` header value for a body sent at ``timestamp``."""
    mac = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={mac}"


def verify_notification(secret: bytes, timestamp: str, body: bytes, signature: str) -> bool:
    """Whether a received notification's signature is right (constant time)."""
    return hmac.compare_digest(sign_notification(secret, timestamp, body), signature)


class Notifier:
    """Posts notifications to ``url`` in the background; :meth:`drain` waits for them.

    The posts go through the engine's one HTTP client (:class:`HttpEndpoint`), on an event
    loop of their own in one background thread, started on the first notification.
    """

    def __init__(self, url: str, secret: bytes, *, timeout: float = 5.0) -> None:
        self.url = url
        self._secret = secret
        self._timeout = timeout
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._portal: BlockingPortal | None = None
        self._endpoint: HttpEndpoint | None = None
        self._pending: list[Future[None]] = []
        self.sent = 0
        self.failed = 0

    def send(self, message: Mapping[str, Any]) -> None:
        if self._portal is None:
            self._portal_cm = start_blocking_portal(name="audit-notify")
            self._portal = self._portal_cm.__enter__()
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._portal.start_task_soon(self._post, orjson.dumps(dict(message))))

    async def _post(self, body: bytes) -> None:
        stamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "x-engine-timestamp": stamp,
            "x-engine-signature": sign_notification(self._secret, stamp, body),
        }
        try:
            if self._endpoint is None:
                context = ComponentContext(
                    component_id="compliance-notify",
                    pipeline="audit",
                    base_dir=Path.cwd(),
                    workspace=Path.cwd(),
                    timeout=self._timeout,
                )
                endpoint = HttpEndpoint(HttpOptions(url=self.url), context)
                await endpoint.open()
                self._endpoint = endpoint
            await self._endpoint.attempt("POST", self.url, content=body, headers=headers)
            self.sent += 1
        except EngineError as exc:
            self.failed += 1
            # The URL may hold a token in its query: name the host only.
            host = urlsplit(self.url).hostname
            log.error("compliance notification to %s failed: %s", host, type(exc).__name__)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait for notifications in flight (at most ``timeout`` seconds)."""
        if self._pending:
            wait(self._pending, timeout=timeout)
            self._pending = [f for f in self._pending if not f.done()]

    def close(self) -> None:
        self.drain()
        portal, self._portal = self._portal, None
        if portal is None:
            return
        try:
            if self._endpoint is not None:
                portal.call(self._endpoint.aclose)
                self._endpoint = None
        finally:
            assert self._portal_cm is not None
            self._portal_cm.__exit__(None, None, None)
            self._portal_cm = None
