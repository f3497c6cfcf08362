"""Replay protection: each webhook delivery is claimed once, atomically, in a store that lasts.

A request is keyed twice: by the provider's delivery id (when it sends one) and by the
SHA-256 of the bytes its signature covers. GitHub and Shopify do not sign their delivery-id
header, so a captured body resent under a new (or no) id still meets its digest key. A claim
takes every key of a request or none of them. It starts as a short lease while the request is
delivered (a copy arriving meanwhile is told to retry, not that it was delivered); the handler
confirms it once delivered (copies are then duplicates for the whole replay window) or releases
it when delivery fails, so the provider's retry gets through. A lease left by a crashed process
expires on its own.

The claims live in the workspace's SQLite state database, so they survive a restart; with
``INTEGRATION_REDIS_URL`` set they live in Redis (see :mod:`engine.webhooks.replay_redis`),
which replicas behind one load balancer share.
"""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import anyio

from engine.errors import TransientError
from engine.ledger.sqlite import use_wal
from engine.webhooks.claims import Claim, ReplayStore, Seen
from engine.webhooks.signatures import Verified

__all__ = [
    "Claim",
    "ReplayStore",
    "Seen",
    "SqliteReplayStore",
    "open_replay_store",
    "replay_keys",
]

#: expired claims are swept after this many new ones
_SWEEP_EVERY = 1000


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
            use_wal(conn.cursor())
            conn.execute(
                "CREATE TABLE IF NOT EXISTS webhook_replay (key TEXT PRIMARY KEY, "
                "token TEXT NOT NULL, expires REAL NOT NULL, delivered INTEGER NOT NULL)"
            )
            self._conn = conn
        return self._conn

    async def claim(self, keys: Sequence[str], ttl: float, lease: float) -> Claim | Seen:
        claim = Claim(tuple(keys), secrets.token_hex(16), ttl)
        seen = await anyio.to_thread.run_sync(self._claim, claim, lease)
        return claim if seen is None else seen

    async def confirm(self, claim: Claim) -> None:
        await anyio.to_thread.run_sync(self._confirm, claim)

    async def release(self, claim: Claim) -> None:
        await anyio.to_thread.run_sync(self._release, claim)

    async def aclose(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _claim(self, claim: Claim, lease: float) -> Seen | None:
        now = time.time()
        with self._lock:
            try:
                db = self._db()
                db.execute("BEGIN IMMEDIATE")
                try:
                    seen = self._take(db, claim, now, lease)
                    db.execute("ROLLBACK" if seen is not None else "COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise _unavailable(self.path, exc) from None
        return seen

    def _take(self, db: sqlite3.Connection, claim: Claim, now: float, lease: float) -> Seen | None:
        for key in claim.keys:
            # a key whose claim expired is taken over; a live one is not
            cursor = db.execute(
                "INSERT INTO webhook_replay (key, token, expires, delivered) "
                "VALUES (?, ?, ?, 0) ON CONFLICT (key) DO UPDATE SET token = excluded.token, "
                "expires = excluded.expires, delivered = 0 WHERE webhook_replay.expires <= ?",
                (key, claim.token, now + lease, now),
            )
            if cursor.rowcount != 1:
                row = db.execute(
                    "SELECT delivered FROM webhook_replay WHERE key = ?", (key,)
                ).fetchone()
                return Seen.DELIVERED if row and row[0] else Seen.IN_FLIGHT
        self._claims += 1
        if self._claims % _SWEEP_EVERY == 0:
            db.execute("DELETE FROM webhook_replay WHERE expires <= ?", (now,))
        return None

    def _confirm(self, claim: Claim) -> None:
        expires = time.time() + claim.ttl
        self._write(
            "UPDATE webhook_replay SET expires = ?, delivered = 1 WHERE key = ? AND token = ?",
            [(expires, key, claim.token) for key in claim.keys],
        )

    def _release(self, claim: Claim) -> None:
        self._write(
            "DELETE FROM webhook_replay WHERE key = ? AND token = ?",
            [(key, claim.token) for key in claim.keys],
        )

    def _write(self, sql: str, rows: list[tuple[object, ...]]) -> None:
        with self._lock:
            try:
                self._db().executemany(sql, rows)
            except sqlite3.Error as exc:
                raise _unavailable(self.path, exc) from None


def _unavailable(path: Path, exc: sqlite3.Error) -> TransientError:
    return TransientError(f"replay store {path}: {exc}")


def open_replay_store(workspace: Path, redis_url: str | None = None) -> ReplayStore:
    """Redis at ``redis_url`` (INTEGRATION_REDIS_URL) when given, else the workspace's state
    database."""
    url = redis_url
    if url:
        from engine.webhooks.replay_redis import RedisReplayStore

        return RedisReplayStore(url)
    return SqliteReplayStore(workspace / "state.db")
