"""The runtime's side of the state store: opening it from the pipeline's ``[state]`` table,
and the run records written at the start and the end of every run (an observer)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from engine.model.state import StateSettings
from engine.runtime.observer import NullObserver, RunInfo, RunSummary
from engine.runtime.plan import Plan
from engine.state import RunRecord, StateStore
from engine.workspace import base_dir_of

__all__ = ["RunRecorder", "open_state", "state_of"]

#: the state database's file name in the workspace
STATE_FILE = "state.db"


def open_state(
    settings: StateSettings,
    workspace: Path,
    *,
    pipeline_file: Path | None = None,
    read_only: bool = False,
) -> StateStore:
    """The state store that ``[state]`` names: default SQLite ``state.db`` in the workspace."""
    if settings.store is None:
        target: Path | str = workspace / STATE_FILE
    else:
        from engine.connectors.sql.urls import resolve_sqlite  # no async SQLAlchemy

        base = base_dir_of(pipeline_file)
        target = resolve_sqlite(settings.store.get_secret_value(), lambda p: base / p)
    return StateStore(
        target, read_only=read_only, schema=settings.schema_name, prefix=settings.table_prefix
    )


def state_of(plan: Plan, workspace: Path, *, read_only: bool = False) -> StateStore:
    """The state store of ``plan``'s pipeline."""
    return open_state(plan.spec.state, workspace, pipeline_file=plan.spec.file, read_only=read_only)


class RunRecorder(NullObserver):
    """Writes the run's record when it starts (outcome ``running``) and when it ends."""

    def __init__(
        self,
        store: StateStore,
        roles: Mapping[str, str],
        *,
        attempt: int = 1,
        started: str | None = None,
    ) -> None:
        self.store = store
        self.roles = dict(roles)  # component id -> source | transform | sink
        self.attempt = attempt
        #: when the run started, where another process started it (a distributed run)
        self.started = started

    def _record(self, run: RunInfo) -> RunRecord:
        return RunRecord(
            run_id=run.run_id,
            pipeline=run.pipeline,
            started=self.started or _iso(run.started_at),
            host=run.host,
            attempt=self.attempt,
            details={"pipeline_file": run.pipeline_file, "user": run.user},
        )

    def run_started(self, run: RunInfo, details: Mapping[str, object]) -> None:
        self.store.record_run(self._record(run))

    def run_finished(self, run: RunInfo, summary: RunSummary) -> None:
        stages = summary.stages
        role = self.roles.get
        read = sum(s.records_out + s.rejected for c, s in stages.items() if role(c) == "source")
        record = replace(
            self._record(run),
            ended=_iso(datetime.now(UTC)),
            outcome=summary.outcome,
            records_in=read,
            records_out=sum(s.records_out for c, s in stages.items() if role(c) == "sink"),
            rejected=sum(s.rejected for s in stages.values()),
            dead_letters=summary.dead_letters,
            duration_s=round(summary.duration_s, 3),
            error=summary.error,
        )
        record.details.update(
            dead_letter_path=summary.dead_letter_path,
            components={
                cid: {
                    "role": role(cid),
                    "records_in": s.records_in,
                    "records_out": s.records_out,
                    "rejected": s.rejected,
                    "retries": s.retries,
                    "errors": s.errors,
                }
                for cid, s in stages.items()
            },
        )
        self.store.record_run(record)


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
