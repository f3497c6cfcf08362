"""A circuit breaker per component: closed, open (fail fast), half-open (trial calls).

It opens after ``failures`` consecutive transient failures, or when the share of failures
among the last ``window`` calls reaches ``failure_ratio``; after ``reset_timeout`` seconds it
lets ``half_open_calls`` trial calls through: one success closes it, one failure re-opens it.
Every change of state is reported to ``on_change`` (the component's audit events).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from engine.errors import TransientError

__all__ = ["BreakerState", "CircuitBreaker", "CircuitBreakerConfig", "CircuitOpenError"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreakerConfig(BaseModel):
    """When to stop calling a failing endpoint and when to try again."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    failures: int = Field(5, ge=1, description="Consecutive failures that open the circuit.")
    failure_ratio: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Also open when this share of the last `window` calls failed.",
    )
    window: int = Field(20, ge=1, description="Calls the failure ratio is computed over.")
    min_calls: int = Field(
        10, ge=1, description="Calls needed in the window before the ratio counts."
    )
    reset_timeout: float = Field(
        30.0, gt=0, description="Seconds the circuit stays open before a trial call."
    )
    half_open_calls: int = Field(1, ge=1, description="Trial calls allowed while half-open.")


class CircuitOpenError(TransientError):
    """The circuit is open: the endpoint was not called."""


log = logging.getLogger("engine.resilience")

ChangeHook = Callable[[BreakerState, BreakerState, str], None]


class CircuitBreaker:
    def __init__(
        self,
        config: CircuitBreakerConfig,
        on_change: ChangeHook | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.state = BreakerState.CLOSED
        self._on_change = on_change
        self._clock = clock
        self._consecutive = 0
        self._outcomes: deque[bool] = deque(maxlen=config.window)
        self._opened_at = 0.0
        self._trials = 0

    def before(self) -> None:
        """Called before each call: raises CircuitOpenError instead of calling a sick endpoint."""
        if self.state is BreakerState.OPEN:
            remaining = self._opened_at + self.config.reset_timeout - self._clock()
            if remaining > 0:
                raise CircuitOpenError(
                    f"circuit open: endpoint not called; next trial in {remaining:.1f}s",
                    retry_after=remaining,
                )
            self._change(BreakerState.HALF_OPEN, "reset timeout elapsed")
        if self.state is BreakerState.HALF_OPEN:
            if self._trials >= self.config.half_open_calls:
                raise CircuitOpenError(
                    "circuit half-open: a trial call is in flight; endpoint not called",
                    retry_after=min(1.0, self.config.reset_timeout),
                )
            self._trials += 1

    def success(self) -> None:
        if self.state is BreakerState.HALF_OPEN:
            self._change(BreakerState.CLOSED, "trial call succeeded")
            return
        self._consecutive = 0
        self._outcomes.append(True)

    def failure(self, reason: str = "") -> None:
        if self.state is BreakerState.HALF_OPEN:
            self._open(f"trial call failed: {reason}".rstrip(": "))
            return
        if self.state is BreakerState.OPEN:
            return
        self._consecutive += 1
        self._outcomes.append(False)
        if self._consecutive >= self.config.failures:
            self._open(f"{self._consecutive} consecutive failures")
            return
        ratio = self.config.failure_ratio
        if ratio is not None and len(self._outcomes) >= self.config.min_calls:
            failed = self._outcomes.count(False) / len(self._outcomes)
            if failed >= ratio:
                self._open(f"{failed:.0%} of the last {len(self._outcomes)} calls failed")

    def release(self) -> None:
        """A call ended without an outcome (cancelled): free its half-open trial slot."""
        if self.state is BreakerState.HALF_OPEN and self._trials > 0:
            self._trials -= 1

    def _open(self, reason: str) -> None:
        self._opened_at = self._clock()
        self._change(BreakerState.OPEN, reason)

    def _change(self, new: BreakerState, reason: str) -> None:
        old, self.state = self.state, new
        self._trials = 0
        if new is BreakerState.CLOSED:
            self._consecutive = 0
            self._outcomes.clear()
        if old is new:
            return
        level = logging.WARNING if new is BreakerState.OPEN else logging.INFO
        log.log(
            level,
            f"circuit {new.value} (was {old.value}): {reason}",
            extra={"circuit": new.value, "previous": old.value},
        )
        if self._on_change is not None:
            self._on_change(old, new, reason)
