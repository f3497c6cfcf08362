"""The trail of one partition of a run, written by the process that runs the partition.

Every partition writes to its pipeline's chain itself: the store serialises appends per
chain (it locks the chain head for each one), so events of processes running side by side
are numbered and chained one after the other. A partition writes ``partition_started``,
its batch events and ``partition_finished``; the run's own ``run_started`` and
``run_finished`` are written by the process that planned the partitions, which commits
once they are all done.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from engine.audit.observer import AuditObserver
from engine.ledger.canonical import json_safe
from engine.ledger.events import AuditCategory, AuditLevel
from engine.model.audit import AuditSettings
from engine.redact import redact
from engine.runtime.observer import NullObserver, RunInfo, RunObserver, RunSummary
from engine.settings import EngineSettings

__all__ = ["PartitionObserver", "create_partition_observer"]


class PartitionObserver(AuditObserver):
    """An :class:`AuditObserver` for one partition: ``partition_started`` and
    ``partition_finished`` in place of the run's start and end."""

    def __init__(
        self,
        settings: AuditSettings,
        workspace: Path,
        *,
        partition: str,
        about: Mapping[str, object],
        env: EngineSettings | None = None,
    ) -> None:
        super().__init__(settings, workspace, env=env)
        self.partition = partition
        self.about = dict(about)  # what the partition reads, for its events

    def run_started(self, run: RunInfo, details: Mapping[str, object]) -> None:
        self._run = run
        trail = self._trail_for(run)
        policy = self._resources.policy
        if policy is not None:
            # the run's tags and declarations scope the rules, as its run_started does
            clean = redact(json_safe(dict(details)), self.settings.mask_fields)
            policy.note_pipeline({"pipeline": run.pipeline, "details": clean})
        self._emit(
            level=AuditLevel.INFO,
            category=AuditCategory.SYSTEM,
            action="partition_started",
            details={"partition": self.partition, **json_safe(self.about)},
        )
        trail.flush()

    def run_finished(self, run: RunInfo, summary: RunSummary) -> None:
        self._run = run
        self._trail_for(run)
        self._finished("partition_finished", summary, partition=self.partition)
        if self._trail is not None:
            self._trail.flush()


def create_partition_observer(
    settings: AuditSettings,
    workspace: Path,
    *,
    partition: str,
    about: Mapping[str, object],
    env: EngineSettings | None = None,
) -> RunObserver:
    """The observer of one partition (close it after); a no-op when auditing is off."""
    if not settings.enabled or (env is not None and not env.engine_audit):
        return NullObserver()
    return PartitionObserver(settings, workspace, partition=partition, about=about, env=env)
