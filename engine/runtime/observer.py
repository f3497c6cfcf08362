"""The seam between the runtime and whoever watches a run (the audit trail, metrics).

The runtime's stage wrappers call these methods; components never do. Methods are
synchronous and called from the event loop: an implementation buffers and must be
cheap per batch (no per-record work beyond what it needs, e.g. a digest).
An exception raised by an observer fails the run (fail closed).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol

from engine.records import Record, Rejected
from engine.records.digest import ContentDigest
from engine.redact import ValueMask

__all__ = [
    "BatchAction",
    "NullObserver",
    "ObserverGroup",
    "RunInfo",
    "RunObserver",
    "RunSummary",
    "StageInfo",
    "StageStats",
]


class BatchAction(StrEnum):
    READ = "batch_read"
    TRANSFORMED = "batch_transformed"
    WRITTEN = "batch_written"


@dataclass(frozen=True, slots=True)
class RunInfo:
    run_id: str
    pipeline: str
    pipeline_file: str | None
    pipeline_sha256: str | None
    started_at: datetime
    user: str
    host: str
    dry_run: bool = False
    tags: tuple[str, ...] = ()
    #: masks what interpolation put into secret fields: for anything an observer writes out
    mask: ValueMask = field(default_factory=ValueMask, repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class StageInfo:
    component: str
    role: str  # "source" | "transform" | "sink"
    type: str  # the component kind, e.g. "file"
    resource: str | None = None  # what it touches, secrets removed (a path, a URL)


@dataclass(slots=True)
class StageStats:
    records_in: int = 0
    records_out: int = 0
    rejected: int = 0
    batches: int = 0
    errors: int = 0
    retries: int = 0


@dataclass(slots=True)
class RunSummary:
    run_id: str
    pipeline: str
    ok: bool
    duration_s: float
    stages: dict[str, StageStats] = field(default_factory=dict)
    error: str | None = None
    dead_letters: int = 0
    #: the file the dead letters went to (None when there were none, or nothing was written)
    dead_letter_path: str | None = None
    #: stopped by a signal before its input ran out (then ``ok`` is false)
    interrupted: bool = False

    @property
    def outcome(self) -> str:
        """``success``, ``interrupted`` or ``failure``: the word summaries and the trail use."""
        if self.interrupted:
            return "interrupted"
        return "success" if self.ok else "failure"


class RunObserver(Protocol):
    def run_started(self, run: RunInfo, details: Mapping[str, object]) -> None: ...

    # ``content``: the digest of the bytes a source read or a sink wrote for this batch
    # (set only for observers whose ``wants_content`` is true, by components that can).
    # Returns the id of the event that records the batch, if it made one (traces carry it).
    def batch(
        self,
        stage: StageInfo,
        action: BatchAction,
        records: Sequence[Record],
        content: ContentDigest | None = None,
    ) -> str | None: ...

    def rejected(
        self, stage: StageInfo, rejected: Sequence[Rejected], disposition: str
    ) -> None: ...

    def connector_error(
        self, stage: StageInfo, error: BaseException, *, attempt: int, will_retry: bool
    ) -> None: ...

    def component_event(
        self, stage: StageInfo, action: str, level: str, details: Mapping[str, object]
    ) -> None: ...

    def flush(self) -> None:
        """Make every event observed so far durable in the store. The runtime calls this
        before it acknowledges input, commits a cursor or publishes output, so the trail
        describes a delivery before the fact."""

    def run_finished(self, run: RunInfo, summary: RunSummary) -> None: ...


class NullObserver:
    """Watches nothing; the default when auditing is off."""

    def run_started(self, run: RunInfo, details: Mapping[str, object]) -> None:
        pass

    def batch(
        self,
        stage: StageInfo,
        action: BatchAction,
        records: Sequence[Record],
        content: ContentDigest | None = None,
    ) -> None:
        pass

    def rejected(self, stage: StageInfo, rejected: Sequence[Rejected], disposition: str) -> None:
        pass

    def connector_error(
        self, stage: StageInfo, error: BaseException, *, attempt: int, will_retry: bool
    ) -> None:
        pass

    def component_event(
        self, stage: StageInfo, action: str, level: str, details: Mapping[str, object]
    ) -> None:
        pass

    def flush(self) -> None:
        pass

    def run_finished(self, run: RunInfo, summary: RunSummary) -> None:
        pass


class ObserverGroup:
    """Several observers as one: each call goes to each, in order (the first to raise
    fails the run)."""

    def __init__(self, *observers: RunObserver) -> None:
        self.observers = observers
        self.wants_content = any(getattr(o, "wants_content", False) for o in observers)

    def run_started(self, run: RunInfo, details: Mapping[str, object]) -> None:
        for observer in self.observers:
            observer.run_started(run, details)

    def batch(
        self,
        stage: StageInfo,
        action: BatchAction,
        records: Sequence[Record],
        content: ContentDigest | None = None,
    ) -> str | None:
        """The id of the batch's event, from the first observer that wrote one."""
        found: str | None = None
        for observer in self.observers:
            event_id = observer.batch(stage, action, records, content)
            found = found or event_id
        return found

    def rejected(self, stage: StageInfo, rejected: Sequence[Rejected], disposition: str) -> None:
        for observer in self.observers:
            observer.rejected(stage, rejected, disposition)

    def connector_error(
        self, stage: StageInfo, error: BaseException, *, attempt: int, will_retry: bool
    ) -> None:
        for observer in self.observers:
            observer.connector_error(stage, error, attempt=attempt, will_retry=will_retry)

    def component_event(
        self, stage: StageInfo, action: str, level: str, details: Mapping[str, object]
    ) -> None:
        for observer in self.observers:
            observer.component_event(stage, action, level, details)

    def flush(self) -> None:
        for observer in self.observers:
            observer.flush()

    def run_finished(self, run: RunInfo, summary: RunSummary) -> None:
        for observer in self.observers:
            observer.run_finished(run, summary)
