"""Webhook replay claims in Redis: every replica that names the same Redis shares them."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.errors import TransientError
from engine.webhooks.claims import Claim, Seen

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisReplayStore"]

PREFIX = "engine:webhook-replay:"

# SET NX PX for every key, all or none: one script runs atomically on the server. A value is
# "lease:TOKEN" while the request is delivered and "done:TOKEN" once it was.
_CLAIM = """
for _, key in ipairs(KEYS) do
  local held = redis.call('GET', key)
  if held then
    if string.sub(held, 1, 5) == 'done:' then return 'delivered' end
    return 'in_flight'
  end
end
for _, key in ipairs(KEYS) do
  redis.call('SET', key, 'lease:' .. ARGV[1], 'NX', 'PX', ARGV[2])
end
return 'claimed'
"""

_CONFIRM = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == 'lease:' .. ARGV[1] then
    redis.call('SET', key, 'done:' .. ARGV[1], 'PX', ARGV[2])
  end
end
return 1
"""

_RELEASE = """
for _, key in ipairs(KEYS) do
  if redis.call('GET', key) == 'lease:' .. ARGV[1] then redis.call('DEL', key) end
end
return 1
"""


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class RedisReplayStore:
    """Claims as Redis keys that expire with the replay window."""

    def __init__(self, url: str) -> None:
        from redis.asyncio import Redis

        self._redis: Redis = Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        self._claim = self._redis.register_script(_CLAIM)
        self._confirm = self._redis.register_script(_CONFIRM)
        self._release = self._redis.register_script(_RELEASE)

    @staticmethod
    def _keys(keys: Sequence[str]) -> list[str]:
        # one hash tag per scope keeps a request's keys in one slot of a Redis cluster
        return ["{}{{{}}}|{}".format(PREFIX, *key.split("|", 1)) for key in keys]

    async def claim(self, keys: Sequence[str], ttl: float, lease: float) -> Claim | Seen:
        claim = Claim(tuple(keys), secrets.token_hex(16), ttl)
        answer = await self._run(self._claim, claim.keys, claim.token, _ms(lease))
        text = answer.decode() if isinstance(answer, bytes) else str(answer)
        return claim if text == "claimed" else Seen(text)

    async def confirm(self, claim: Claim) -> None:
        await self._run(self._confirm, claim.keys, claim.token, _ms(claim.ttl))

    async def release(self, claim: Claim) -> None:
        await self._run(self._release, claim.keys, claim.token)

    async def _run(self, script: AsyncScript, keys: Sequence[str], *args: str | int) -> object:
        from redis.exceptions import RedisError

        try:
            return await script(keys=self._keys(keys), args=list(args))
        except RedisError as exc:
            raise TransientError(
                f"replay store: Redis unavailable ({type(exc).__name__})"
            ) from None

    async def aclose(self) -> None:
        await self._redis.aclose()
