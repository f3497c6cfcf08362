"""Several telemetries (metrics, traces) as one, for the runner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from engine.connectors.context import Meter
from engine.runtime.observer import RunInfo, RunSummary, StageInfo
from engine.runtime.telemetry import BatchTiming, RunTelemetry, Stage

__all__ = ["Hooks"]


class _Meters:
    def __init__(self, meters: Sequence[Meter]) -> None:
        self.meters = meters

    def response(self, status: int) -> None:
        for meter in self.meters:
            meter.response(status)

    def backlog(self, records: int) -> None:
        for meter in self.meters:
            meter.backlog(records)


class Hooks:
    """Tells each of ``hooks``, in order, everything the runner tells it."""

    def __init__(self, *hooks: RunTelemetry) -> None:
        self.hooks = hooks

    def run_started(self, run: RunInfo, stages: Mapping[str, Stage]) -> None:
        for hook in self.hooks:
            hook.run_started(run, stages)

    def batch(self, stage: StageInfo, timing: BatchTiming) -> None:
        for hook in self.hooks:
            hook.batch(stage, timing)

    def dead_lettered(self, stage: StageInfo, records: int) -> None:
        for hook in self.hooks:
            hook.dead_lettered(stage, records)

    def component_event(self, stage: StageInfo, action: str, details: Mapping[str, object]) -> None:
        for hook in self.hooks:
            hook.component_event(stage, action, details)

    def meter(self, stage: StageInfo) -> Meter:
        return _Meters([hook.meter(stage) for hook in self.hooks])

    def run_finished(self, run: RunInfo, summary: RunSummary) -> None:
        for hook in self.hooks:
            hook.run_finished(run, summary)
