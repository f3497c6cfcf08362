"""Webhook replay claims in Redis: every replica that names the same Redis shares them."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.errors import TransientError
from engine.webhooks.replay import Claim

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisReplayStore"]

PREFIX = "engine:webhook-replay:"

# SET NX PX for every key, all or none: one script runs atomically on the server
_CLAIM = """
for _, key in ipairs(KEYS) do
  if redis.call('EXISTS', key) == 1 then return 0 end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, ARGV[1], 'NX', 'PX', ARGV[2])
end
return 1
"""

_RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then redis.call('DEL', key) end
end
return 1
"""


def _unavailable(exc: Exception) -> TransientError:
    return TransientError(f"replay store: Redis unavailable ({type(exc).__name__})")


class RedisReplayStore:
    """Claims as Redis keys that expire with the replay window."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._redis: Redis = Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        self._claim = self._redis.register_script(_CLAIM)
        self._release = self._redis.register_script(_RELEASE)

    @staticmethod
    def _keys(keys: Sequence[str]) -> list[str]:
        # one hash tag per scope keeps a request's keys in one slot of a Redis cluster
        return ["{}{{{}}}|{}".format(PREFIX, *key.split("|", 1)) for key in keys]

    async def claim(self, keys: Sequence[str], ttl: float) -> Claim | None:
        from redis.exceptions import RedisError

        claim = Claim(tuple(keys), secrets.token_hex(16))
        try:
            taken = await self._claim(keys=self._keys(keys), args=[claim.token, int(ttl * 1000)])
        except RedisError as exc:
            raise _unavailable(exc) from None
        return claim if int(taken) == 1 else None

    async def release(self, claim: Claim) -> None:
        from redis.exceptions import RedisError

        try:
            await self._release(keys=self._keys(claim.keys), args=[claim.token])
        except RedisError as exc:
            raise _unavailable(exc) from None

    async def aclose(self) -> None:
        await self._redis.aclose()
