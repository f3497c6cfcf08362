"""Resilience around connectors: token-bucket rate limits and circuit breakers."""

from __future__ import annotations

from engine.resilience.breaker import (
    BreakerState,
    CircuitBreaker,
    CircuitBreakerConfig,
    CircuitOpenError,
)
from engine.resilience.ratelimit import (
    LocalTokenBucket,
    RateLimiter,
    RateLimitSpec,
    RateLimitSpecField,
    RedisTokenBucket,
    build_limiter,
    parse_rate,
)

__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "CircuitBreakerConfig",
    "CircuitOpenError",
    "LocalTokenBucket",
    "RateLimitSpec",
    "RateLimitSpecField",
    "RateLimiter",
    "RedisTokenBucket",
    "build_limiter",
    "parse_rate",
]
