"""The ``notify`` action: POST a small, HMAC-signed JSON message to a webhook.

Sent from one background thread so that logging never waits on the network; the body
names the rule and the event, never the event's details. The receiver checks
``X-Engine-Signature: sha256=HEX`` = HMAC-SHA256(secret, timestamp + "." + body).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

import httpx
import orjson

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
    """Posts notifications to ``url`` in the background; :meth:`drain` waits for them."""

    def __init__(self, url: str, secret: bytes, *, timeout: float = 5.0) -> None:
        self.url = url
        self._secret = secret
        self._timeout = timeout
        self._pool: ThreadPoolExecutor | None = None
        self._client: httpx.Client | None = None
        self._pending: list[Future[None]] = []
        self.sent = 0
        self.failed = 0

    def send(self, message: Mapping[str, Any]) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit-notify")
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._pool.submit(self._post, orjson.dumps(dict(message))))

    def _post(self, body: bytes) -> None:
        stamp = str(int(time.time()))
        headers = {
            "content-type": "application/json",
            "x-engine-timestamp": stamp,
            "x-engine-signature": sign_notification(self._secret, stamp, body),
        }
        try:
            if self._client is None:
                self._client = httpx.Client(timeout=self._timeout)
            response = self._client.post(self.url, content=body, headers=headers)
            response.raise_for_status()
            self.sent += 1
        except httpx.HTTPError as exc:
            self.failed += 1
            # The URL may hold a token in its query: name the host only.
            host = httpx.URL(self.url).host
            log.error("compliance notification to %s failed: %s", host, type(exc).__name__)

    def drain(self, timeout: float = 10.0) -> None:
        """Wait for notifications in flight (at most ``timeout`` seconds)."""
        if self._pending:
            wait(self._pending, timeout=timeout)
            self._pending = [f for f in self._pending if not f.done()]

    def close(self) -> None:
        self.drain()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None
