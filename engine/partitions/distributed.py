"""Distributed runs: `engine run --distributed` plans and sends, `engine worker` runs.

The planner takes the pipeline's lease, writes ``run_started`` and the run's record,
plans the partitions, records them in the state store (see :mod:`engine.partitions.board`)
and sends one message per partition; then it gives the lease back: from here the run is
held by its record, ``running`` until the worker that settles its last partition moves it
to ``finishing``, commits the sources' cursors once and writes the run's ``run_finished``.
A new run of the pipeline is refused while one is ``running`` in the store.

Every worker compiles the pipeline file itself (the message names it and carries its
SHA-256, never a secret) and refuses a file that changed, or a message sent by an engine of
another major version.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio

from engine import __version__
from engine.components.base import Role
from engine.errors import EngineError, PermanentError
from engine.partitions.board import DEAD, DONE, FAILED, FINISHING, Board
from engine.partitions.local import _commit, _totals, rejections_breach
from engine.partitions.plan import plan_partitions
from engine.partitions.spec import PartitionResult, PartitionSpec, RunContext
from engine.partitions.worker import run_partition
from engine.pipeline import compile_file, make_observer
from engine.runtime.history import RunRecorder, state_of
from engine.runtime.observer import NullObserver, RunSummary
from engine.runtime.plan import Plan
from engine.runtime.runner import Runner, RunOptions
from engine.settings import EngineSettings
from engine.state import RunRecord, StateStore
from engine.workspace import workspace_for

__all__ = [
    "ENGINE_MAJOR",
    "DistributedError",
    "PartitionFailed",
    "process_partition",
    "send_run",
    "wait_for_run",
]

log = logging.getLogger("engine.worker")

ENGINE_MAJOR = int(__version__.split(".")[0])
#: partitions a source is asked to split into per expected worker (SQL key ranges: two)
PLANNING_WORKERS = 4


class DistributedError(EngineError):
    """A distributed run cannot be planned or sent."""


class PartitionFailed(EngineError):
    """A partition failed in a way a retry may fix; Dramatiq retries it."""


def _roles(plan: Plan) -> dict[str, str]:
    return {cid: n.role.value for cid, n in plan.nodes.items()}


def _check_sinks(plan: Plan) -> None:
    """Every file sink writes one file per partition: workers on other machines cannot hand
    their pieces to one joiner."""
    for cid, node in plan.nodes.items():
        path = getattr(node.config, "path", None)
        if node.role is Role.SINK and isinstance(path, str) and "{partition}" not in path:
            raise DistributedError(
                f"sinks.{cid} writes {path!r}: a distributed run needs {{partition}} in a file "
                "sink's path, so each partition writes (and a redelivered one overwrites) its "
                "own file"
            )


def send_run(
    plan: Plan,
    *,
    broker: Any,
    queue: str,
    workspace: Path,
    run_id: str,
    settings: EngineSettings,
    audit: bool = True,
) -> list[PartitionSpec]:
    """Plan ``plan``'s partitions, record them and send one message each."""
    from dramatiq import Message

    _check_sinks(plan)
    store = state_of(plan, workspace)
    try:
        active = [r for r in store.runs(plan.name, limit=20) if r.outcome in ("running", FINISHING)]
        if active and active[0].details.get("distributed"):
            raise DistributedError(
                f"pipeline {plan.name!r} has a distributed run in progress: {active[0].run_id} "
                f"(in {store.where}); wait for it, or see `engine runs show {active[0].run_id}`"
            )
        observer = make_observer(plan, workspace, settings) if audit else NullObserver()
        runner = Runner(
            plan,
            RunOptions(workspace=workspace, run_id=run_id, observer=observer, settings=settings),
        )
        try:
            # every partition found before the first is sent
            specs = list(anyio.run(lambda: plan_partitions(runner, PLANNING_WORKERS)))
            details = {**plan.started_details(), "distributed": True, "queue": queue}
            details["partitions"] = len(specs)
            observer.run_started(runner.info, details)
            recorder = RunRecorder(store, _roles(plan))
            recorder.run_started(runner.info, details)
            _mark_distributed(store, run_id, queue, len(specs))
            Board(store).plan(run_id, specs)
            observer.flush()
        finally:
            runner.close_state()
            close = getattr(observer, "close", None)
            if close is not None:
                close()
        context = RunContext(run_id, str(workspace), audit, False, plan.spec.sha256)
        for spec in specs:
            broker.enqueue(
                Message(
                    queue_name=queue,
                    actor_name="engine_partition",
                    args=(),
                    kwargs={
                        "file": str(Path(str(plan.spec.file)).resolve()),
                        "spec": spec.to_json(),
                        "context": context.to_json(),
                        "engine_major": ENGINE_MAJOR,
                    },
                    options={},
                )
            )
        return specs
    finally:
        store.close()


def _mark_distributed(store: StateStore, run_id: str, queue: str, count: int) -> None:
    record = store.run(run_id)
    assert record is not None
    details = {**record.details, "distributed": True, "queue": queue, "partitions": count}
    store.record_run(replace(record, details=details))


def wait_for_run(plan: Plan, workspace: Path, run_id: str, *, poll: float = 0.5) -> RunRecord:
    """Wait until the distributed run ``run_id`` ended; its record."""
    while True:
        # opened anew each time: a read-only SQLite store reads the file as it was opened
        store = state_of(plan, workspace, read_only=True)
        try:
            record = store.run(run_id)
        finally:
            store.close()
        if record is not None and record.outcome not in ("running", FINISHING):
            return record
        time.sleep(poll)


# -- the worker's side ----------------------------------------------------------------------


def process_partition(
    file: str,
    spec: dict[str, Any],
    context: dict[str, Any],
    engine_major: int,
    *,
    redelivered: bool,
    retries: int,
    max_retries: int,
    settings: EngineSettings,
    plans: dict[str, Plan] | None = None,
) -> PartitionResult | None:
    """Run one partition message; raises :class:`PartitionFailed` for Dramatiq to retry and
    :class:`PermanentError` for a message no retry can help. None: nothing left to do."""
    if engine_major != ENGINE_MAJOR:
        raise PermanentError(
            f"this worker runs engine {__version__} (major {ENGINE_MAJOR}); the partition was "
            f"planned by engine major {engine_major}: run workers of the planner's version"
        )
    part = PartitionSpec.from_json(spec)
    ctx = RunContext.from_json(context)
    plan = (plans or {}).get(file) or compile_file(file)
    if plans is not None:
        plans[file] = plan
    workspace = workspace_for(plan.spec.file, settings)
    store = state_of(plan, workspace)
    board = Board(store)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        before = board.start(ctx.run_id, part.index, worker, redelivered=redelivered)
        attempt = before.attempts + 1
        log.info(
            "run %s partition %s: attempt %d%s",
            ctx.run_id,
            part.id,
            attempt,
            " (redelivered)" if redelivered else "",
        )
        if before.state == DONE:
            result = PartitionResult.from_json(before.result or {})
            last = board.settle(ctx.run_id, part.index, DONE, result=before.result, error=None)
        else:
            local = replace(ctx, workspace=str(workspace), attempt=attempt, redelivered=redelivered)
            result = run_partition(file, part, local, plan=plan)
            if not result.ok:
                dead = retries >= max_retries
                state = DEAD if dead else FAILED
                board.settle(ctx.run_id, part.index, state, result=None, error=result.error)
                if dead and board.fail_run(ctx.run_id):
                    _finish(plan, store, board, ctx, workspace, settings, failed=result.error)
                raise PartitionFailed(f"partition {result.partition}: {result.error}")
            last = board.settle(ctx.run_id, part.index, DONE, result=result.to_json(), error=None)
        if last:
            _finish(plan, store, board, ctx, workspace, settings, failed=None)
        return result
    finally:
        store.close()


def _finish(
    plan: Plan,
    store: StateStore,
    board: Board,
    ctx: RunContext,
    workspace: Path,
    settings: EngineSettings,
    *,
    failed: str | None,
) -> None:
    """The run's end, written once: cursors committed (when every partition is done), the
    run's record and its ``run_finished``."""
    rows = board.rows(ctx.run_id)
    record = store.run(ctx.run_id)
    done = [r for r in rows if r.state == DONE and r.result is not None]
    results = [PartitionResult.from_json(r.result) for r in done if r.result is not None]
    stages = _totals(plan, results)
    errors = [failed] if failed else []
    observer = make_observer(plan, workspace, settings) if ctx.audit else NullObserver()
    runner = Runner(
        plan,
        RunOptions(workspace=workspace, run_id=ctx.run_id, observer=observer, settings=settings),
    )
    try:
        if not errors:
            breach = rejections_breach(plan, stages, None)
            if breach is not None:
                errors.append(breach)
        if not errors:
            observer.flush()
            anyio.run(_commit, runner, results, [r.spec for r in done])
        started = record.started if record is not None else None
        summary = RunSummary(
            run_id=ctx.run_id,
            pipeline=plan.name,
            ok=not errors,
            duration_s=_since(started),
            stages=stages,
            error=errors[0] if errors else None,
            dead_letters=sum(r.dead_letters for r in results),
        )
        observer.run_finished(runner.info, summary)
        recorder = RunRecorder(store, _roles(plan), started=started)
        recorder.run_finished(runner.info, summary)
        log.info("run %s finished: %s", ctx.run_id, summary.outcome)
    finally:
        runner.close_state()
        close = getattr(observer, "close", None)
        if close is not None:
            close()


def _since(started: str | None) -> float:
    if started is None:
        return 0.0
    from datetime import UTC, datetime

    begun = datetime.strptime(started, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return (datetime.now(UTC) - begun).total_seconds()
