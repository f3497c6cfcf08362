"""The seam between the runtime and its metrics and traces, beside the audit observer.

The runner tells a :class:`RunTelemetry` when a run starts and ends, how long each batch
took at each stage (with the id of the audit event that recorded it, so a trace leads to the
trail), where records were dead-lettered and what connectors report (response codes, a
source's backlog). Record counts, rejections and retries it reads from the live
:class:`~engine.runtime.observer.StageStats` handed over at the start, so nothing is
counted twice. Calls are synchronous, from the event loop, at most a few per batch.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from engine.connectors.context import NULL_METER, Meter
from engine.records import Record
from engine.records.digest import ContentDigest
from engine.runtime.observer import (
    BatchAction,
    RunInfo,
    RunObserver,
    RunSummary,
    StageInfo,
    StageStats,
)

__all__ = ["NULL_TELEMETRY", "BatchTiming", "RunTelemetry", "Stage", "Watch"]


@dataclass(frozen=True, slots=True)
class Stage:
    """A component as the telemetry sees it: who it is, and its live statistics."""

    info: StageInfo
    stats: StageStats


@dataclass(frozen=True, slots=True)
class BatchTiming:
    """One batch through one stage: reading a chunk, transforming, or writing a batch."""

    action: BatchAction
    records: int
    #: wall-clock nanoseconds (``time.time_ns``) when the stage began and ended the batch
    began_ns: int
    ended_ns: int
    #: the audit event that recorded the batch (None when auditing is off)
    event_id: str | None = None

    @property
    def seconds(self) -> float:
        return max(self.ended_ns - self.began_ns, 0) / 1e9


class RunTelemetry(Protocol):
    def run_started(self, run: RunInfo, stages: Mapping[str, Stage]) -> None: ...

    def batch(self, stage: StageInfo, timing: BatchTiming) -> None: ...

    def dead_lettered(self, stage: StageInfo, records: int) -> None: ...

    def component_event(
        self, stage: StageInfo, action: str, details: Mapping[str, object]
    ) -> None: ...

    def meter(self, stage: StageInfo) -> Meter:
        """Where the stage's connector reports response codes and backlog."""
        ...

    def run_finished(self, run: RunInfo, summary: RunSummary) -> None: ...


class _NullTelemetry:
    """Watches nothing: runs without metrics or traces."""

    def run_started(self, run: RunInfo, stages: Mapping[str, Stage]) -> None:
        pass

    def batch(self, stage: StageInfo, timing: BatchTiming) -> None:
        pass

    def dead_lettered(self, stage: StageInfo, records: int) -> None:
        pass

    def component_event(self, stage: StageInfo, action: str, details: Mapping[str, object]) -> None:
        pass

    def meter(self, stage: StageInfo) -> Meter:
        return NULL_METER

    def run_finished(self, run: RunInfo, summary: RunSummary) -> None:
        pass


NULL_TELEMETRY: RunTelemetry = _NullTelemetry()


@dataclass(frozen=True, slots=True)
class Watch:
    """Who hears of a batch: the audit observer first, then, with its event's id, the
    telemetry."""

    observer: RunObserver
    telemetry: RunTelemetry

    def batch(
        self,
        stage: StageInfo,
        action: BatchAction,
        records: Sequence[Record],
        began: int,
        content: ContentDigest | None = None,
        *,
        ended: int | None = None,
    ) -> None:
        """A batch through a stage, begun at ``began`` (``time.time_ns``), ended now
        unless told."""
        ended = time.time_ns() if ended is None else ended
        event_id = self.observer.batch(stage, action, records, content)
        self.telemetry.batch(stage, BatchTiming(action, len(records), began, ended, event_id))
