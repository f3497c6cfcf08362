"""The runtime's side of a component's envelope: ``timeout``, ``retry`` and ``on_error``.

Every role gets the same rule: one operation (a connector call of a source or a sink, one
batch through a transform) may take ``timeout`` seconds, a :class:`TransientError` (a
timeout is one) is retried per ``retry``, and rejected records go where ``on_error`` says.
``batch`` is applied by :mod:`engine.runtime.rebatch`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio

from engine.columnar import ColumnBatch, takes_columns
from engine.components.base import ComponentConfig, Transform, TransformResult
from engine.components.envelope import OnError, RetryPolicy
from engine.errors import EngineError, PermanentError, RunError, TransientError
from engine.records import Batch, Rejected
from engine.runtime.observer import RunObserver, StageInfo, StageStats
from engine.runtime.retry import default_policy, retry_call

__all__ = ["Enforcer", "apply_on_error", "as_run_error"]

T = TypeVar("T")

log = logging.getLogger("engine.retry")


@dataclass(frozen=True, slots=True)
class Enforcer:
    """One component's timeout and retry policy, and who hears about retries and failures."""

    timeout: float | None
    retry: RetryPolicy
    #: a transient failure that will be retried: (error, attempt, delay)
    on_retry: Callable[[TransientError, int, float], None]
    #: the operation failed for good after ``attempts`` attempts
    on_failure: Callable[[EngineError, int], None]

    @classmethod
    def of(
        cls,
        config: ComponentConfig,
        info: StageInfo,
        stats: StageStats,
        observer: RunObserver,
        *,
        default_retries: int,
    ) -> Enforcer:
        """A component's policy, reporting retries and failures to ``observer``;
        ``default_retries`` (INTEGRATION_RETRY_COUNT) when it sets no `retry`."""

        policy = config.retry or default_policy(default_retries)

        def on_retry(exc: TransientError, attempt: int, delay: float) -> None:
            stats.retries += 1
            observer.connector_error(info, exc, attempt=attempt, will_retry=True)
            log.warning(
                f"attempt {attempt} of {policy.attempts} failed: {exc}; retrying in {delay:.2f}s",
                extra={
                    "component": info.component,
                    "attempt": attempt,
                    "attempts": policy.attempts,
                    "delay_s": round(delay, 3),
                    "error": type(exc).__name__,
                },
            )

        def on_failure(exc: EngineError, attempts: int) -> None:
            observer.connector_error(info, exc, attempt=attempts, will_retry=False)

        return cls(config.timeout, policy, on_retry, on_failure)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """One connector operation, under the timeout and retried."""
        timeout = self.timeout

        async def once() -> T:
            try:
                if timeout is None:
                    return await fn()
                with anyio.fail_after(timeout):
                    return await fn()
            except TimeoutError:
                raise TransientError(f"timed out after {timeout}s") from None

        return await self._retried(once)

    async def process(self, transform: Transform[Any], batch: Batch) -> TransformResult:
        """One batch through a transform, under the timeout and retried.

        A transform is synchronous, so with a timeout it runs in a worker thread that a
        timeout abandons (it cannot be interrupted); without one it runs inline, as fast as
        a plain call, except on a column batch whose columns are made (a CSV block): polars
        works in a worker thread, while the event loop goes on handing the other stages
        their batches (the source's decoder waits for none, see engine.records.ahead).
        Decoded records (JSON Lines) stay inline: a filter runs them as they are, in Python,
        and a thread would only pass the GIL back and forth."""
        timeout = self.timeout

        async def once() -> TransformResult:
            if timeout is None:
                if takes_columns(transform) and isinstance(batch, ColumnBatch) and batch.built:
                    return await anyio.to_thread.run_sync(transform.process, batch)
                return transform.process(batch)
            try:
                with anyio.fail_after(timeout):
                    return await anyio.to_thread.run_sync(
                        transform.process, batch, abandon_on_cancel=True
                    )
            except TimeoutError:
                raise TransientError(f"timed out after {timeout}s processing a batch") from None

        return await self._retried(once)

    async def _retried(self, once: Callable[[], Awaitable[T]]) -> T:
        try:
            return await retry_call(once, self.retry, on_retry=self.on_retry)
        except EngineError as exc:
            self.on_failure(exc, self.retry.attempts)
            raise


def apply_on_error(
    policy: OnError,
    rejected: Sequence[Rejected],
    *,
    report: Callable[[Sequence[Rejected], str], None],
    dead_letter: Callable[[list[Rejected]], None],
) -> int:
    """Route rejected records as ``on_error`` says: ``fail`` raises (after reporting them),
    ``skip`` drops them, ``dead_letter`` writes them. Returns how many were set aside."""
    if policy is OnError.FAIL:
        first = rejected[0]
        where = f"{first.location}: " if first.location else ""
        more = f" (and {len(rejected) - 1} more)" if len(rejected) > 1 else ""
        report(rejected, policy.value)
        raise PermanentError(f"{where}{first.reason}{more}")
    if policy is OnError.DEAD_LETTER:
        dead_letter(list(rejected))
    report(rejected, policy.value)
    return len(rejected)


def as_run_error(component: str, exc: BaseException) -> RunError:
    """What a component's failure says in the run summary: the engine's words."""
    if isinstance(exc, RunError):
        return exc
    if isinstance(exc, EngineError):
        message = str(exc)
    elif isinstance(exc, OSError) and exc.strerror:
        # not `FileNotFoundError: [Errno 2] ...`
        message = f"{exc.filename}: {exc.strerror}" if exc.filename else exc.strerror
    else:
        message = f"{type(exc).__name__}: {exc}"
    return RunError(component, message, exc)
