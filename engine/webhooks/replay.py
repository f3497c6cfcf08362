"""Replay protection: each webhook delivery is claimed once, atomically, in a store that lasts.

A request is keyed twice: by the provider's delivery id (when it sends one) and by the
SHA-256 of the bytes its signature covers. GitHub and Shopify do not sign their delivery-id
header, so a captured body resent under a new (or no) id still meets its digest key. A claim
takes every key of a request or none of them; the handler releases it when the delivery fails,
so the provider's retry is not refused as a replay.

The claims live in the workspace's SQLite state database, so they survive a restart; with
``INTEGRATION_REDIS_URL`` set they live in Redis (see :mod:`engine.webhooks.replay_redis`),
which replicas behind one load balancer share.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import anyio

from engine.errors import TransientError
from engine.webhooks.signatures import Verified

__all__ = ["Claim", "ReplayStore", "SqliteReplayStore", "open_replay_store", "replay_keys"]

#: expired claims are swept after this many new ones
_SWEEP_EVERY = 1000


@dataclass(frozen=True, slots=True)
class Claim:
    """The keys one request holds, and the token that proves it holds them."""

    keys: tuple[str, ...]
    token: str


class ReplayStore(Protocol):
    """Where claims live; ``claim`` returns None when any key is already held."""

    async def claim(self, keys: Sequence[str], ttl: float) -> Claim | None: ...

    async def release(self, claim: Claim) -> None: ...

    async def aclose(self) -> None: ...


def replay_keys(scope: str, verified: Verified) -> tuple[str, ...]:
    """The keys of one verified request, within ``scope`` (pipeline and source)."""
    keys = [f"{scope}|sig|{verified.digest}"]
    if verified.delivery_id is not None:
        keys.append(f"{scope}|id|{verified.delivery_id}")
    return tuple(keys)


class SqliteReplayStore:
    """Claims in the ``webhook_replay`` table of a SQLite database (the workspace state.db)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._claims = 0

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=30, check_same_thread=False, isolation_level=None
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS webhook_replay "
                "(key TEXT PRIMARY KEY, token TEXT NOT NULL, expires REAL NOT NULL)"
            )
            self._conn = conn
        return self._conn

    async def claim(self, keys: Sequence[str], ttl: float) -> Claim | None:
        claim = Claim(tuple(keys), secrets.token_hex(16))
        taken = await anyio.to_thread.run_sync(self._claim, claim, ttl)
        return claim if taken else None

    async def release(self, claim: Claim) -> None:
        await anyio.to_thread.run_sync(self._release, claim)

    async def aclose(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _claim(self, claim: Claim, ttl: float) -> bool:
        now = time.time()
        with self._lock:
            try:
                db = self._db()
                db.execute("BEGIN IMMEDIATE")
                try:
                    for key in claim.keys:
                        # a key whose claim expired is taken over; a live one is not
                        cursor = db.execute(
                            "INSERT INTO webhook_replay (key, token, expires) VALUES (?, ?, ?) "
                            "ON CONFLICT (key) DO UPDATE SET token = excluded.token, "
                            "expires = excluded.expires WHERE webhook_replay.expires <= ?",
                            (key, claim.token, now + ttl, now),
                        )
                        if cursor.rowcount != 1:
                            db.execute("ROLLBACK")
                            return False
                    self._claims += 1
                    if self._claims % _SWEEP_EVERY == 0:
                        db.execute("DELETE FROM webhook_replay WHERE expires <= ?", (now,))
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise TransientError(f"replay store {self.path}: {exc}") from None
        return True

    def _release(self, claim: Claim) -> None:
        with self._lock:
            try:
                self._db().executemany(
                    "DELETE FROM webhook_replay WHERE key = ? AND token = ?",
                    [(key, claim.token) for key in claim.keys],
                )
            except sqlite3.Error as exc:
                raise TransientError(f"replay store {self.path}: {exc}") from None


def open_replay_store(workspace: Path, env: dict[str, str] | None = None) -> ReplayStore:
    """Redis when ``INTEGRATION_REDIS_URL`` is set, else the workspace's state database."""
    url = (env if env is not None else os.environ).get("INTEGRATION_REDIS_URL")
    if url:
        from engine.webhooks.replay_redis import RedisReplayStore

        return RedisReplayStore(url)
    return SqliteReplayStore(workspace / "state.db")
