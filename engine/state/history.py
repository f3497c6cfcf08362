"""What the state store remembers of runs: one record per run (written when it starts and
when it ends), dead letters as rows (``[state] dead_letters = "store"``), and schedule
claims (each fire time of a pipeline run once, whichever scheduler claims it first)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any

from engine.ledger.sqlite import limit_sql
from engine.state.database import Session, StateDatabase, StateError, now_iso

__all__ = ["DeadLetterRow", "RunHistory", "RunRecord", "columns_sql", "fire_key"]

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
        q = self.quote
        values = _run_values(record)
        sets = ", ".join(f"{q(c)} = :{c}" for c in _RUN[1:])
        update = f"UPDATE {self.table('runs')} SET {sets} WHERE {q('run_id')} = :run_id"
        with self.session() as session:
            if not session.run(update, values):
                session.insert_new(self.insert_sql("runs", _RUN), values, q("run_id"))

    def _run_query(self, where: str, tail: str) -> str:
        q = self.quote
        sql = f"SELECT {columns_sql(q, _RUN)} FROM {self.table('runs')}"
        return f"{sql} WHERE {where} {tail}" if where else f"{sql} {tail}"

    def runs(self, pipeline: str | None = None, *, limit: int | None = 20) -> list[RunRecord]:
        """The newest runs first (of one pipeline, or of all)."""
        q = self.quote
        order = f"ORDER BY {q('started')} DESC, {q('run_id')}{limit_sql(limit)}"
        sql = self._run_query(f"{q('pipeline')} = :pipeline" if pipeline is not None else "", order)
        return self.reading(
            lambda session: [_run_record(r) for r in session.rows(sql, {"pipeline": pipeline})],
            [],
        )

    def run(self, run_id: str) -> RunRecord | None:
        """One run by its id, or by a prefix of it that names one run."""
        sql = self._run_query(f"{self.quote('run_id')} LIKE :pattern ESCAPE '/'", "LIMIT 2")
        escaped = run_id.replace("/", "//").replace("%", "/%").replace("_", "/_")
        found: list[RunRecord] = self.reading(
            lambda session: [_run_record(r) for r in session.rows(sql, {"pattern": escaped + "%"})],
            [],
        )
        exact = [r for r in found if r.run_id == run_id]
        return exact[0] if exact else (found[0] if len(found) == 1 else None)

    # -- dead letters -----------------------------------------------------------------------
    def add_dead_letters(self, rows: Iterable[DeadLetterRow]) -> None:
        values = [
            {**asdict(row), "record": json.dumps(row.record, default=str, sort_keys=True)}
            for row in rows
        ]
        if values:
            with self.session() as session:
                session.many(self.insert_sql("dead_letters", _DEAD_LETTER), values)

    def dead_letters(self, run_id: str, *, limit: int | None = None) -> list[DeadLetterRow]:
        q = self.quote
        sql = (
            f"SELECT {columns_sql(q, _DEAD_LETTER)} FROM {self.table('dead_letters')} "
            f"WHERE {q('run_id')} = :run_id ORDER BY {q('id')}{limit_sql(limit)}"
        )

        def work(session: Session) -> list[DeadLetterRow]:
            return [
                DeadLetterRow(*(*row[:-1], json.loads(row[-1])))
                for row in session.rows(sql, {"run_id": run_id})
            ]

        return self.reading(work, [])

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
        with self.session() as session:
            return session.insert_new(
                self.insert_sql("claims", tuple(row)), row, self.quote("pipeline")
            )

    def _claims_sql(self, what: str, *, before: bool = False) -> str:
        q = self.quote
        sql = f"{what} FROM {self.table('claims')} WHERE {q('pipeline')} = :pipeline"
        return f"{sql} AND {q('fire_time')} < :before" if before else sql

    def last_fire(self, pipeline: str) -> datetime | None:
        """The newest fire time of ``pipeline`` anyone claimed."""
        sql = self._claims_sql(f"SELECT max({self.quote('fire_time')})")
        found: list[tuple[Any, ...]] = self.reading(
            lambda session: session.rows(sql, {"pipeline": pipeline}), []
        )
        newest = found[0][0] if found else None
        return datetime.fromisoformat(newest) if newest else None

    def fire_claims(self, pipeline: str) -> dict[str, str]:
        """Fire time -> holder, of the claims made for ``pipeline``."""
        sql = self._claims_sql(f"SELECT {columns_sql(self.quote, ('fire_time', 'holder'))}")
        return self.reading(lambda session: dict(session.rows(sql, {"pipeline": pipeline})), {})

    def forget_fires(self, pipeline: str, before: datetime) -> int:
        """Remove the claims of fire times before ``before``; returns how many."""
        sql = self._claims_sql("DELETE", before=True)
        with self.session() as session:
            return session.run(sql, {"pipeline": pipeline, "before": fire_key(before)})


#: the columns of a run record (RunRecord's fields) and of a dead letter, in their order
_RUN = tuple(f.name for f in fields(RunRecord))
_DEAD_LETTER = tuple(f.name for f in fields(DeadLetterRow))


def columns_sql(quote: Callable[[str], str], columns: Sequence[str]) -> str:
    return ", ".join(quote(c) for c in columns)


def _run_values(record: RunRecord) -> dict[str, Any]:
    values = asdict(record)
    values["details"] = json.dumps(record.details, default=str, sort_keys=True)
    return values


def _run_record(row: Sequence[Any]) -> RunRecord:
    values = dict(zip(_RUN, row, strict=True))
    values["details"] = json.loads(values["details"]) if values.get("details") else {}
    return RunRecord(**values)
