"""The keys the engine owns on every component, one envelope model per role.

A kind's config model subclasses its role's envelope and adds only its own fields. The
runtime reads these keys and applies them (re-batching, timeouts, retries, ``on_error``);
components never do. The set of envelope keys is derived from these models, never listed by
hand: :func:`envelope_keys` for one role, :func:`foreign_roles` for a key that belongs to
other roles only (``inputs`` on a source is an error, not ignored).
"""

from __future__ import annotations

from enum import StrEnum
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "BatchPolicy",
    "Envelope",
    "OnError",
    "RetryPolicy",
    "Role",
    "SinkEnvelope",
    "SourceEnvelope",
    "TransformEnvelope",
    "envelope_keys",
    "envelope_of",
    "foreign_roles",
]


class Role(StrEnum):
    SOURCE = "source"
    TRANSFORM = "transform"
    SINK = "sink"

    @property
    def table(self) -> str:
        return f"{self.value}s"


class OnError(StrEnum):
    FAIL = "fail"
    SKIP = "skip"
    DEAD_LETTER = "dead_letter"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class RetryPolicy(_Model):
    """How the runtime retries a component's transient failures."""

    attempts: int = Field(3, ge=1, le=100, description="Total attempts, the first included.")
    backoff: float = Field(
        0.5, ge=0, description="Base delay in seconds (exponential, full jitter)."
    )
    max_delay: float = Field(30.0, ge=0, description="Upper bound of one delay, in seconds.")


class BatchPolicy(_Model):
    """How many records travel together across a stage boundary."""

    size: int = Field(1000, ge=1, le=1_000_000, description="Records per batch.")
    timeout: float = Field(1.0, gt=0, description="Seconds before a partial batch is flushed.")


class Envelope(_Model):
    """The keys every role shares."""

    kind_role: ClassVar[Role]

    type: str = Field(description="The component kind.")
    on_error: OnError = Field(
        OnError.FAIL,
        description="What happens to a record or batch that fails: fail the run, skip it, "
        "or write it to the dead-letter sink.",
    )
    retry: RetryPolicy | None = Field(
        None,
        description="Retry policy for transient failures (a timeout is one). Default: "
        "INTEGRATION_RETRY_COUNT retries.",
    )
    # Each role says what these mean for it.
    timeout: float | None = Field(None, gt=0, description="Seconds one operation may take.")
    batch: BatchPolicy | None = Field(None, description="Batching.")


class SourceEnvelope(Envelope):
    """A source's envelope: it reads from outside the pipeline, so it has no `inputs`."""

    kind_role: ClassVar[Role] = Role.SOURCE

    timeout: float | None = Field(
        None,
        gt=0,
        description="Seconds one connector operation (a request, a connect) may take; the "
        "connector is given it too.",
    )
    batch: BatchPolicy = Field(
        default_factory=BatchPolicy,
        description="How the source chunks what it reads: records per chunk, and for a "
        "stream the seconds a partial chunk waits.",
    )


class _Downstream(Envelope):
    inputs: list[str] = Field(
        min_length=1, description="Ids of the components (or `id.route`) this one reads from."
    )
    batch: BatchPolicy | None = Field(
        None,
        description="Re-batch the input on its way in: at most `size` records per batch, a "
        "partial batch passed on after `timeout` seconds. Default: batches pass as they arrive.",
    )

    @field_validator("inputs")
    @classmethod
    def _unique_inputs(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for item in value:
            if item in seen:
                raise ValueError(f"input {item!r} is listed twice")
            seen.add(item)
        return value


class TransformEnvelope(_Downstream):
    """A transform's envelope."""

    kind_role: ClassVar[Role] = Role.TRANSFORM

    timeout: float | None = Field(
        None,
        gt=0,
        description="Seconds one batch may take to process; past it the batch fails as a "
        "transient error (retried per `retry`).",
    )


class SinkEnvelope(_Downstream):
    """A sink's envelope."""

    kind_role: ClassVar[Role] = Role.SINK

    timeout: float | None = Field(
        None,
        gt=0,
        description="Seconds one connector operation (a write, a request) may take; the "
        "connector is given it too.",
    )


_ENVELOPES: dict[Role, type[Envelope]] = {
    Role.SOURCE: SourceEnvelope,
    Role.TRANSFORM: TransformEnvelope,
    Role.SINK: SinkEnvelope,
}


def envelope_of(role: Role) -> type[Envelope]:
    """The envelope model of ``role``."""
    return _ENVELOPES[role]


def envelope_keys(role: Role) -> frozenset[str]:
    """The keys the engine owns on a component of ``role``."""
    return frozenset(_ENVELOPES[role].model_fields)


def foreign_roles(role: Role, key: str) -> tuple[Role, ...]:
    """The other roles whose envelope has ``key``, when ``role``'s does not (else empty)."""
    if key in envelope_keys(role):
        return ()
    return tuple(r for r in Role if r is not role and key in envelope_keys(r))
