"""What the state store remembers of runs: one record per run (written when it starts and
when it ends), dead letters as rows (``[state] dead_letters = "store"``), and schedule
claims (each fire time of a pipeline run once, whichever scheduler claims it first)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from engine.state.database import StateDatabase, StateError, now_iso

__all__ = ["DeadLetterRow", "RunHistory", "RunRecord", "fire_key"]

#: the outcome of a run record between its start and its end
RUNNING = "running"


@dataclass(frozen=True)
class RunRecord:
    """One run of a pipeline, as ``engine runs`` shows it."""

    run_id: str
    pipeline: str
    started: str  # ISO 8601 UTC
    host: str
    ended: str | None = None
    outcome: str = RUNNING  # running | success | failure | interrupted
    records_in: int = 0  # read by the sources
    records_out: int = 0  # written by the sinks
    rejected: int = 0
    dead_letters: int = 0
    duration_s: float | None = None
    attempt: int = 1
    error: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DeadLetterRow:
    pipeline: str
    run_id: str
    time: str
    component: str
    stage: str
    reason: str
    location: str | None
    record: Any


def fire_key(fire_time: datetime) -> str:
    """A fire time as sortable text: ISO 8601 in UTC, microseconds always written."""
    if fire_time.tzinfo is None:
        raise StateError(f"fire time {fire_time.isoformat()} has no time zone")
    return fire_time.astimezone(UTC).isoformat(timespec="microseconds")


class RunHistory(StateDatabase):
    # -- run records --------------------------------------------------------------------
    def record_run(self, record: RunRecord) -> None:
        """Write ``record``: inserted at the run's start, replaced at its end."""
        values = _run_values(record)
        runs = self.tables.runs
        with self._tx() as conn:
            changed = conn.execute(
                update(runs).where(runs.c.run_id == record.run_id).values(values)
            ).rowcount
            if not changed:
                self._insert_new(conn, runs, {"run_id": record.run_id, **values})

    def runs(self, pipeline: str | None = None, *, limit: int | None = 20) -> list[RunRecord]:
        """The newest runs first (of one pipeline, or of all)."""
        runs = self.tables.runs
        query = select(runs).order_by(runs.c.started.desc(), runs.c.run_id)
        if pipeline is not None:
            query = query.where(runs.c.pipeline == pipeline)
        if limit is not None:
            query = query.limit(limit)

        def work(conn: Connection) -> list[RunRecord]:
            return [_run_record(row._mapping) for row in conn.execute(query)]

        return self._read(work, [])

    def run(self, run_id: str) -> RunRecord | None:
        """One run by its id, or by a prefix of it that names one run."""
        runs = self.tables.runs
        query = select(runs).where(runs.c.run_id.startswith(run_id, autoescape=True)).limit(2)

        def work(conn: Connection) -> list[RunRecord]:
            return [_run_record(row._mapping) for row in conn.execute(query)]

        found: list[RunRecord] = self._read(work, [])
        exact = [r for r in found if r.run_id == run_id]
        return exact[0] if exact else (found[0] if len(found) == 1 else None)

    # -- dead letters -----------------------------------------------------------------------
    def add_dead_letters(self, rows: Iterable[DeadLetterRow]) -> None:
        values = [
            {**asdict(row), "record": json.dumps(row.record, default=str, sort_keys=True)}
            for row in rows
        ]
        if values:
            with self._tx() as conn:
                conn.execute(self.tables.dead_letters.insert(), values)

    def dead_letters(self, run_id: str, *, limit: int | None = None) -> list[DeadLetterRow]:
        t = self.tables.dead_letters
        query = select(t).where(t.c.run_id == run_id).order_by(t.c.id)
        if limit is not None:
            query = query.limit(limit)

        def work(conn: Connection) -> list[DeadLetterRow]:
            return [
                DeadLetterRow(
                    pipeline=row.pipeline,
                    run_id=row.run_id,
                    time=row.time,
                    component=row.component,
                    stage=row.stage,
                    reason=row.reason,
                    location=row.location,
                    record=json.loads(row.record),
                )
                for row in conn.execute(query)
            ]

        return self._read(work, [])

    # -- schedule claims ----------------------------------------------------------------------
    def claim_fire(self, pipeline: str, fire_time: datetime, holder: str) -> bool:
        """Claim one fire time of ``pipeline``'s schedule for ``holder``: True for exactly one
        of the schedulers that try, however many and wherever they run."""
        row = {
            "pipeline": pipeline,
            "fire_time": fire_key(fire_time),
            "holder": holder,
            "claimed_at": now_iso(),
        }
        with self._tx() as conn:
            return self._insert_new(conn, self.tables.claims, row)

    def last_fire(self, pipeline: str) -> datetime | None:
        """The newest fire time of ``pipeline`` anyone claimed."""
        t = self.tables.claims
        query = select(func.max(t.c.fire_time)).where(t.c.pipeline == pipeline)
        newest = self._read(lambda conn: conn.execute(query).scalar(), None)
        return datetime.fromisoformat(newest) if newest else None

    def fire_claims(self, pipeline: str) -> dict[str, str]:
        """Fire time -> holder, of the claims made for ``pipeline``."""
        t = self.tables.claims
        query = select(t.c.fire_time, t.c.holder).where(t.c.pipeline == pipeline)
        return self._read(lambda conn: {r.fire_time: r.holder for r in conn.execute(query)}, {})

    def forget_fires(self, pipeline: str, before: datetime) -> int:
        """Remove the claims of fire times before ``before``; returns how many."""
        t = self.tables.claims
        with self._tx() as conn:
            return int(
                conn.execute(
                    delete(t).where(t.c.pipeline == pipeline, t.c.fire_time < fire_key(before))
                ).rowcount
            )


def _run_values(record: RunRecord) -> dict[str, Any]:
    values = asdict(record)
    del values["run_id"]
    values["details"] = json.dumps(record.details, default=str, sort_keys=True)
    return values


def _run_record(row: Mapping[Any, Any]) -> RunRecord:
    values = dict(row)
    values["details"] = json.loads(values["details"]) if values.get("details") else {}
    return RunRecord(**values)
