"""Retries with exponential backoff and full jitter; only :class:`TransientError` is retried."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from engine.components.base import RetryPolicy
from engine.errors import TransientError

__all__ = ["default_policy", "delay_for", "retry_call"]

T = TypeVar("T")


def default_policy(retries: int) -> RetryPolicy:
    """The policy for components without `retry`: ``retries`` (INTEGRATION_RETRY_COUNT)."""
    return RetryPolicy(attempts=max(1, retries + 1))


def delay_for(
    policy: RetryPolicy, attempt: int, error: TransientError, rng: random.Random
) -> float:
    """Full jitter: uniform in [0, min(max_delay, backoff * 2**(attempt-1))]; Retry-After wins."""
    if error.retry_after is not None:
        return min(max(error.retry_after, 0.0), policy.max_delay)
    cap = min(policy.max_delay, policy.backoff * (2 ** (attempt - 1)))
    return rng.uniform(0, cap)


async def retry_call(
    fn: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[TransientError, int, float], None] | None = None,
    rng: random.Random | None = None,
) -> T:
    """Call ``fn`` until it succeeds, raises a non-transient error, or attempts run out."""
    r = rng or random.Random()
    attempt = 1
    while True:
        try:
            return await fn()
        except TransientError as exc:
            if attempt >= policy.attempts:
                raise
            delay = delay_for(policy, attempt, exc, r)
            if on_retry is not None:
                on_retry(exc, attempt, delay)
            await anyio.sleep(delay)
            attempt += 1
