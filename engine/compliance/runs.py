"""Runs the trail shows started and never finished: abandoned (killed), or still running.

A run has ``run_started`` and, unless it was killed, ``run_finished`` on its pipeline's
chain. One without ``run_finished`` is *running* while it holds its pipeline's lease in
the workspace's state database (see :mod:`engine.runtime.lease`), else *abandoned*. Only
leases in the workspace at hand can be seen: a run in progress from another workspace
on a shared store counts as abandoned until it finishes.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from engine.ledger.schema import EventFilter
from engine.ledger.store import AuditStore

__all__ = ["OpenRun", "open_runs", "running_run_ids"]


@dataclass(frozen=True)
class OpenRun:
    """A run with ``run_started`` and no ``run_finished`` on its chain."""

    producer: str
    pipeline: str | None
    run_id: str
    started_at: str
    host: str | None
    event_id: str  # of its run_started event
    running: bool  # holds its pipeline's lease in this workspace now

    def describe(self) -> str:
        where = f" on {self.host}" if self.host else ""
        return (
            f"{self.pipeline or self.producer} run {self.run_id} started {self.started_at}{where}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "producer": self.producer,
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "started_at": self.started_at,
            "host": self.host,
            "event_id": self.event_id,
            "status": "running" if self.running else "abandoned",
        }


def open_runs(store: AuditStore, running: Collection[str] = ()) -> list[OpenRun]:
    """Every run on the store that started and has not finished, oldest first;
    ``running``: the ids of runs known to be in progress."""
    finished = {
        (e.producer, e.run_id) for e in store.iter_query(EventFilter(action="run_finished"))
    }
    found: list[OpenRun] = []
    for event in store.iter_query(EventFilter(action="run_started")):
        if event.run_id is None or (event.producer, event.run_id) in finished:
            continue
        try:
            host = orjson.loads(event.body).get("host")
        except orjson.JSONDecodeError:
            host = None  # verification reports the body
        found.append(
            OpenRun(
                producer=event.producer,
                pipeline=event.pipeline,
                run_id=event.run_id,
                started_at=event.timestamp,
                host=host if isinstance(host, str) else None,
                event_id=event.event_id,
                running=event.run_id in running,
            )
        )
    return sorted(found, key=lambda r: (r.started_at, r.producer))


def running_run_ids(workspace: Path) -> set[str]:
    """Ids of the runs that hold a live lease in the workspace's state database."""
    from engine.runtime.lease import live_leases

    return {lease.run_id for lease in live_leases(workspace / "state.db")}
