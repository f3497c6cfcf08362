"""Token-bucket rate limits: in-process, or shared by every process through one Redis script.

Both buckets work by reservation: a caller takes its token at once (the balance may go
negative) and sleeps until the moment that token would have been refilled. Over any window
of ``T`` seconds at most ``burst + rate * T`` calls pass, however many tasks or processes
share the bucket, and nobody polls.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, NamedTuple, Protocol

import anyio
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from engine.errors import TransientError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "LocalTokenBucket",
    "RateLimitSpec",
    "RateLimitSpecField",
    "RateLimiter",
    "RedisTokenBucket",
    "Reservation",
    "build_limiter",
    "parse_rate",
]

log = logging.getLogger("engine.resilience")

_UNITS: dict[str, float] = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(\d+(?:\.\d+)?)?\s*([a-z]+)\s*$")


def parse_rate(text: str) -> float:
    """``"100/s"``, ``"6000/min"``, ``"5/100ms"`` -> calls per second."""
    match = _RATE.match(text.lower())
    if match is None or match.group(3) not in _UNITS:
        raise ValueError(
            f"invalid rate {text!r}: expected COUNT/UNIT such as '100/s', '6000/min' or "
            f"'5/100ms' (units: {', '.join(sorted(_UNITS))})"
        )
    count = float(match.group(1))
    period = float(match.group(2) or 1) * _UNITS[match.group(3)]
    if count <= 0 or period <= 0:
        raise ValueError(f"invalid rate {text!r}: count and period must be positive")
    return count / period


def _shorthand(value: Any) -> Any:
    if isinstance(value, str):
        return {"rate": value}
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"rate": f"{value}/s"}
    return value


class RateLimitSpec(BaseModel):
    """A token bucket: ``rate`` calls per period with a ``burst``; shared through Redis if set."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    rate: str = Field(description="Calls per period: '100/s', '6000/min', '5/100ms'.")
    burst: int | None = Field(
        None,
        ge=1,
        description="Calls allowed at once after a quiet spell; default a tenth of a second's "
        "worth of `rate`, at least 1.",
    )
    redis: str | bool | None = Field(
        None,
        description="Redis URL to share the bucket between processes; default "
        "INTEGRATION_REDIS_URL when set; false keeps the bucket in this process.",
    )
    key: str | None = Field(
        None,
        description="Name of the shared bucket; components and pipelines with the same key "
        "share one limit. Default: pipeline and component id.",
    )

    @field_validator("rate")
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @property
    def per_second(self) -> float:
        return parse_rate(self.rate)

    @property
    def burst_size(self) -> int:
        return self.burst or max(1, math.ceil(self.per_second / 10))

    def redis_url(self, default: str | None = None) -> str | None:
        """`redis`, else ``default`` (INTEGRATION_REDIS_URL) unless `redis` is false."""
        if self.redis is False:
            return None
        if isinstance(self.redis, str):
            return self.redis
        return default or None


#: the config field type: accepts ``"100/s"``, a number (per second) or a table
RateLimitSpecField = Annotated[
    RateLimitSpec,
    BeforeValidator(_shorthand, json_schema_input_type=str | float | RateLimitSpec),
]


class Reservation(NamedTuple):
    """A bucket's decision: taken at ``at`` (the bucket's clock), usable ``wait`` seconds later."""

    at: float
    wait: float

    @property
    def due(self) -> float:
        return self.at + self.wait


class RateLimiter(Protocol):
    async def acquire(self) -> None:
        """Wait until one call may go."""

    async def aclose(self) -> None: ...


class _Spell:
    """Sleeps a bucket's wait, and logs when callers start waiting for tokens: once per
    spell of throttling (it ends after a minute without a wait), not once per call."""

    QUIET = 60.0

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.clock = clock
        self.last: float | None = None  # when a call last had to wait

    async def wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        now = self.clock()
        if self.last is None or now - self.last > self.QUIET:
            log.info(
                f"rate limit of {self.rate:g} calls/s reached: calls wait for it "
                f"({seconds:.2f}s now)",
                extra={"rate_per_s": self.rate, "wait_s": round(seconds, 3)},
            )
        self.last = now
        await anyio.sleep(seconds)


class LocalTokenBucket:
    """A token bucket for the tasks of this process."""

    def __init__(self, rate: float, burst: int, clock: Any = time.monotonic) -> None:
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._tokens = float(burst)
        self._last = clock()
        self._spell = _Spell(rate, clock)

    def reserve(self, n: float = 1.0) -> float:
        """Take ``n`` tokens now; return how long to wait before using them."""
        return self.schedule(n).wait

    def schedule(self, n: float = 1.0) -> Reservation:
        """Take ``n`` tokens now; return when, on this bucket's clock, they may be used."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        self._tokens -= n
        return Reservation(now, max(0.0, -self._tokens / self.rate))

    async def acquire(self) -> None:
        await self._spell.wait(self.reserve())

    async def aclose(self) -> None:
        pass


# Runs atomically in Redis, timed by the Redis server's clock so processes on hosts with
# different clocks still share one bucket. Returns the server time (seconds, microseconds) and
# the wait in seconds as a string (Lua numbers returned to Redis are truncated to integers).
_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
tokens = tokens - n
-- tostring keeps 14 digits, which rounds epoch seconds to 0.1 ms: a drift every call
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
  'ts', string.format('%.6f', now))
local idle = (burst - tokens) / rate
redis.call('PEXPIRE', KEYS[1], math.ceil(idle * 1000) + 1000)
local wait = 0
if tokens < 0 then
  wait = -tokens / rate
end
return {t[1], t[2], string.format('%.17g', wait)}
"""


class RedisTokenBucket:
    """A token bucket shared by every process that names the same key in the same Redis."""

    def __init__(self, url: str, key: str, rate: float, burst: int) -> None:
        from redis.asyncio import Redis

        self.key = f"engine:ratelimit:{key}"
        self.rate = rate
        self.burst = burst
        self._redis: Redis = Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
        self._script = self._redis.register_script(_LUA)
        self._spell = _Spell(rate)

    async def reserve(self) -> float:
        """Take a token now; return how long to wait before using it."""
        return (await self.schedule()).wait

    async def schedule(self) -> Reservation:
        """Take a token now; return when, on the Redis server's clock, it may be used."""
        from redis.exceptions import RedisError

        try:
            seconds, micros, wait = await self._script(
                keys=[self.key], args=[self.rate, self.burst, 1]
            )
        except RedisError as exc:
            # The limit is a contract with the endpoint: without Redis, wait and retry rather
            # than overrun it from every process at once.
            raise TransientError(
                f"rate limiter: Redis unavailable ({type(exc).__name__})"
            ) from None
        return Reservation(int(seconds) + int(micros) / 1e6, float(wait))

    async def acquire(self) -> None:
        await self._spell.wait(await self.reserve())

    async def aclose(self) -> None:
        await self._redis.aclose()


def build_limiter(
    spec: RateLimitSpec, default_key: str, *, default_redis: str | None = None
) -> RateLimiter:
    """The bucket a component uses: shared through Redis when a URL is configured (`redis`,
    else ``default_redis``, the INTEGRATION_REDIS_URL setting)."""
    url = spec.redis_url(default_redis)
    if url:
        return RedisTokenBucket(url, spec.key or default_key, spec.per_second, spec.burst_size)
    return LocalTokenBucket(spec.per_second, spec.burst_size)


def redis_client(url: str) -> Redis:
    """A client for health checks and tests (same options as the shared bucket)."""
    from redis.asyncio import Redis

    return Redis.from_url(url, socket_connect_timeout=5, socket_timeout=5)
