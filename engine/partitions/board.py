"""The partitions of a distributed run, in the state store every worker shares.

The planner inserts one row per partition (``queued``). A worker marks its partition
``running`` (counting the attempt), then ``done`` with its result, or ``failed`` (to be
retried) or ``dead`` (retries exhausted). Whoever marks the last partition ``done`` also
moves the run record from ``running`` to ``finishing`` in the same transaction: that
update succeeds for exactly one of them, which then commits the cursor and writes the run's
``run_finished``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Connection

from engine.partitions.spec import PartitionSpec
from engine.state import StateStore
from engine.state.database import StateError, now_iso

__all__ = ["DEAD", "DONE", "FAILED", "FINISHING", "QUEUED", "RUNNING", "Board", "PartitionRow"]

QUEUED, RUNNING, DONE, FAILED, DEAD = "queued", "running", "done", "failed", "dead"
#: a run record's outcome while its last partition's worker commits it
FINISHING = "finishing"


@dataclass(frozen=True)
class PartitionRow:
    run_id: str
    index: int
    spec: PartitionSpec
    state: str
    attempts: int
    worker: str | None
    redelivered: bool
    error: str | None
    result: dict[str, Any] | None


class Board:
    """The partition rows of distributed runs, in ``store``."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.table = store.tables.partitions

    def plan(self, run_id: str, specs: list[PartitionSpec]) -> None:
        with self.store._tx() as conn:
            conn.execute(
                insert(self.table),
                [
                    {
                        "run_id": run_id,
                        "idx": spec.index,
                        "spec": json.dumps(spec.to_json()),
                        "state": QUEUED,
                        "attempts": 0,
                        "redelivered": 0,
                        "updated_at": now_iso(),
                    }
                    for spec in specs
                ],
            )

    def start(self, run_id: str, index: int, worker: str, *, redelivered: bool) -> PartitionRow:
        """Count an attempt at the partition; its row as it was before (``done``: nothing to
        do but finishing)."""
        t = self.table
        with self.store._tx() as conn:
            before = self._row(conn, run_id, index)
            if before.state != DONE:
                conn.execute(
                    update(t)
                    .where(t.c.run_id == run_id, t.c.idx == index)
                    .values(
                        state=RUNNING,
                        attempts=t.c.attempts + 1,
                        worker=worker,
                        redelivered=1 if redelivered else t.c.redelivered,
                        updated_at=now_iso(),
                    )
                )
        return before

    def settle(
        self,
        run_id: str,
        index: int,
        state: str,
        *,
        result: dict[str, Any] | None,
        error: str | None,
    ) -> bool:
        """Record how the partition went; True when this made every partition ``done`` and
        moved the run to ``finishing``: the caller finishes the run."""
        t, runs = self.table, self.store.tables.runs
        with self.store._tx() as conn:
            conn.execute(
                update(t)
                .where(t.c.run_id == run_id, t.c.idx == index)
                .values(
                    state=state,
                    error=error,
                    result=json.dumps(result) if result is not None else None,
                    updated_at=now_iso(),
                )
            )
            if state != DONE:
                return False
            left = conn.execute(
                select(func.count()).where(t.c.run_id == run_id, t.c.state != DONE)
            ).scalar_one()
            if left:
                return False
            moved = conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id, runs.c.outcome == "running")
                .values(outcome=FINISHING)
            ).rowcount
            return bool(moved == 1)

    def fail_run(self, run_id: str) -> bool:
        """Move a running run to ``finishing`` for its failure; True for the one caller that
        did (it writes the run's end)."""
        runs = self.store.tables.runs
        with self.store._tx() as conn:
            moved = conn.execute(
                update(runs)
                .where(runs.c.run_id == run_id, runs.c.outcome == "running")
                .values(outcome=FINISHING)
            ).rowcount
            return bool(moved == 1)

    def rows(self, run_id: str) -> list[PartitionRow]:
        t = self.table
        query = select(t).where(t.c.run_id == run_id).order_by(t.c.idx)

        def work(conn: Connection) -> list[PartitionRow]:
            return [_row(r._mapping) for r in conn.execute(query)]

        return self.store._read(work, [])

    def _row(self, conn: Connection, run_id: str, index: int) -> PartitionRow:
        t = self.table
        found = conn.execute(select(t).where(t.c.run_id == run_id, t.c.idx == index)).first()
        if found is None:
            raise StateError(f"run {run_id} has no partition {index} in {self.store.where}")
        return _row(found._mapping)


def _row(m: Any) -> PartitionRow:
    return PartitionRow(
        m["run_id"],
        int(m["idx"]),
        PartitionSpec.from_json(json.loads(m["spec"])),
        m["state"],
        int(m["attempts"]),
        m["worker"],
        bool(m["redelivered"]),
        m["error"],
        json.loads(m["result"]) if m["result"] else None,
    )
