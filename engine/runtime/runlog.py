"""What a run says in the logs (``engine.run``): its start, each component's end, its end.

Once per run and per component, never per batch or record. The CLI's text summary says the
same, so `engine run` shows these records only in JSON mode or at ``debug``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from contextlib import AbstractContextManager

from engine.logs import log_context
from engine.runtime.observer import RunInfo, RunSummary, StageInfo, StageStats

__all__ = ["bound_to", "component_done", "read_rate", "run_done", "run_started"]

log = logging.getLogger("engine.run")


def bound_to(what: RunInfo | StageInfo) -> AbstractContextManager[None]:
    """Every record logged inside names the run (its id and pipeline), or the component."""
    if isinstance(what, RunInfo):
        return log_context(run_id=what.run_id, pipeline=what.pipeline)
    return log_context(component=what.component)


def run_started(run_id: str, pipeline: str, components: int) -> None:
    log.info(f"run {run_id} of {pipeline} started ({components} components)")


def component_done(info: StageInfo, stats: StageStats) -> None:
    counts = {
        "records_in": stats.records_in,
        "records_out": stats.records_out,
        "rejected": stats.rejected,
        "batches": stats.batches,
        "retries": stats.retries,
    }
    done = {"source": "read", "transform": "passed on", "sink": "wrote"}.get(info.role, "out")
    log.info(
        f"{info.role} done: {done} {stats.records_out} records, {stats.rejected} rejected",
        extra={"role": info.role, **counts},
    )


def read_rate(summary: RunSummary, roles: Mapping[str, str]) -> tuple[int, float]:
    """Records the sources read (rejected ones included), and how many per second."""
    stages = summary.stages.items()
    read = sum(s.records_out + s.rejected for cid, s in stages if roles.get(cid) == "source")
    return read, (round(read / summary.duration_s, 1) if summary.duration_s > 0 else 0.0)


def run_done(summary: RunSummary, roles: Mapping[str, str]) -> None:
    read, rate = read_rate(summary, roles)
    level = logging.INFO if summary.ok or summary.interrupted else logging.ERROR
    log.log(
        level,
        f"run {summary.outcome} in {summary.duration_s:.2f}s: {read} records read "
        f"({rate:,.0f} records/s)" + (f"; error: {summary.error}" if summary.error else ""),
        extra={
            "outcome": summary.outcome,
            "duration_s": round(summary.duration_s, 3),
            "records_read": read,
            "records_per_s": rate,
            "dead_letters": summary.dead_letters,
        },
    )
