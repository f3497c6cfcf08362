"""``engine run --workers N``: a run's partitions in N local processes, no broker.

The parent process holds the run's lease, writes ``run_started``, plans the partitions and
hands them out one at a time to N worker processes (forked from a ``forkserver`` that
imported the engine once), each of which
calls :func:`~engine.partitions.worker.run_partition` and writes its own events to the
pipeline's chain. When every partition succeeded, the parent checks the run's rejections,
publishes what the file sinks handed over, commits the sources' cursors once and writes
``run_finished``; otherwise it discards what they handed over and commits nothing.

SIGTERM or SIGINT to the parent stops handing out partitions and sends SIGTERM to the
workers, which stop reading and drain; a second signal kills them. Workers ignore SIGINT
(a terminal's Ctrl-C reaches the parent, which tells them) and end with the parent.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import multiprocessing.context
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import fields
from multiprocessing import forkserver
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any, cast

import anyio

from engine.columnar import limit_threads
from engine.components.base import Role
from engine.errors import EngineError, RunError
from engine.partitions.plan import plan_partitions
from engine.partitions.publish import discard_outputs, merge_dead_letters, publish_outputs
from engine.partitions.spec import PartitionResult, PartitionSpec, RunContext
from engine.partitions.worker import run_partition
from engine.pipeline import compile_file, make_observer
from engine.runtime.deadletter import letters_path, rejection_breach
from engine.runtime.envelope import as_run_error
from engine.runtime.observer import NullObserver, RunObserver, RunSummary, StageStats
from engine.runtime.plan import Plan
from engine.runtime.runner import Runner, RunOptions
from engine.settings import EngineSettings

__all__ = ["run_workers"]

POLL = 0.2  # seconds between looks at the signals received, while waiting for workers
JOIN_DEADLINE = 60.0


class _Signals:
    """Counts SIGTERM and SIGINT while installed (the main thread's handlers)."""

    def __init__(self) -> None:
        self.count = 0
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> _Signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._saved[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._saved.items():
            signal.signal(signum, handler)


def _exit_with_parent() -> None:
    """Linux: SIGTERM this process when its parent dies (no orphan goes on alone)."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _serve(
    conn: Connection, pipeline_file: str, context: dict[str, Any], environ: dict[str, str]
) -> None:
    """A worker process: run the partitions it is sent until it is sent None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # between partitions a SIGTERM has nothing to stop: the parent sends None next
    signal.signal(signal.SIGTERM, lambda *_: None)
    _exit_with_parent()
    try:
        plan: Plan | None = compile_file(pipeline_file, env=environ)
    except EngineError:
        plan = None  # run_partition reports it
    while True:
        try:
            spec = conn.recv()
        except (EOFError, OSError):
            return
        if spec is None:
            return
        result = run_partition(
            pipeline_file, spec, context, plan=plan, environ=environ, stop_on_sigterm=True
        )
        try:
            conn.send(result.to_json())
        except OSError:
            return


def _forkserver() -> multiprocessing.context.ForkServerContext:
    """Workers fork from a server that imported the engine once, with no thread of this
    process (a lease renewal, a store's pool) in it."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    return context


class _Pool:
    """N worker processes, each handed the next partition when it is done with one."""

    def __init__(
        self, workers: int, pipeline_file: str, context: RunContext, environ: dict[str, str]
    ) -> None:
        self.workers = workers
        self.environ = environ  # with --env-file's variables: for this machine's workers only
        self.pipeline_file = pipeline_file
        self.context = context
        self.stopping = False
        self._busy: dict[Connection, tuple[BaseProcess, PartitionSpec | None]] = {}
        self._queue: deque[PartitionSpec] = deque()

    def run(self, specs: list[PartitionSpec], signals: _Signals) -> list[PartitionResult]:
        spawn = _forkserver()
        self._queue.extend(specs)
        results: dict[int, PartitionResult] = {}
        killed = False
        try:
            for _ in range(min(self.workers, len(specs))):
                conn, child = spawn.Pipe()
                proc = spawn.Process(
                    target=_serve,
                    args=(child, self.pipeline_file, self.context.to_json(), self.environ),
                    name="engine-partition",
                )
                proc.start()
                child.close()
                self._busy[conn] = (proc, None)
                self._next(conn)
            while self._busy:
                if signals.count and not self.stopping:
                    self._stop()
                if signals.count > 1 and not killed:
                    killed = True
                    for worker, _ in self._busy.values():
                        worker.kill()
                for ready in wait(list(self._busy), timeout=POLL):
                    self._receive(cast(Connection, ready), results)
        finally:
            for worker, _ in list(self._busy.values()):
                worker.kill()
            for conn in self._busy:
                conn.close()
        return [results[i] for i in sorted(results)]

    def _receive(self, conn: Connection, results: dict[int, PartitionResult]) -> None:
        proc, spec = self._busy[conn]
        try:
            data = conn.recv()
        except (EOFError, OSError):
            del self._busy[conn]
            conn.close()
            proc.join(JOIN_DEADLINE)
            if spec is not None:
                outcome = "interrupted" if self.stopping else "failure"
                why = f"its worker process ended (exit code {proc.exitcode})"
                results[spec.index] = PartitionResult(spec.id, spec.index, outcome, why)
                self._stop()
            return
        result = PartitionResult.from_json(data)
        results[result.index] = result
        if not result.ok:
            self._stop()  # the run fails (or was stopped): the others' work is wasted
        self._next(conn)

    def _next(self, conn: Connection) -> None:
        proc, _ = self._busy[conn]
        spec = self._queue.popleft() if self._queue and not self.stopping else None
        self._busy[conn] = (proc, spec)
        with contextlib.suppress(OSError):  # it died: the next wait reads its end
            conn.send(None if spec is None else spec.to_json())

    def _stop(self) -> None:
        """Hand out nothing more; workers stop reading and drain what they hold."""
        if self.stopping:
            return
        self.stopping = True
        self._queue.clear()
        for proc, spec in self._busy.values():
            if spec is not None and proc.pid is not None:
                with contextlib.suppress(OSError):
                    os.kill(proc.pid, signal.SIGTERM)


def _totals(plan: Plan, results: list[PartitionResult]) -> dict[str, StageStats]:
    stages = {cid: StageStats() for cid in plan.order}
    names = [f.name for f in fields(StageStats)]
    for result in results:
        for cid, counts in result.stages.items():
            stats = stages[cid]
            for name in names:  # bytes_total: None when no partition knew its size
                if (value := counts.get(name)) is not None:
                    setattr(stats, name, (getattr(stats, name) or 0) + value)
    return stages


def rejections_breach(
    plan: Plan, stages: dict[str, StageStats], dead_letters: Path | None
) -> str | None:
    """Why a run whose partitions add up to ``stages`` fails on ``[dead_letter]
    max_rejected`` (None: it need not)."""
    sources = [stages[c] for c in plan.order if plan.nodes[c].role is Role.SOURCE]
    breach = rejection_breach(
        plan.spec.dead_letter,
        read=sum(s.records_out + s.rejected for s in sources),
        rejected=sum(s.rejected for s in stages.values()),
        file=dead_letters,
    )
    return None if breach is None else str(RunError(plan.name, breach))


async def _commit(
    runner: Runner, results: list[PartitionResult], specs: list[PartitionSpec]
) -> None:
    """The sources commit once, from every partition's outcome in partition order."""
    by_source: dict[str, list[dict[str, Any] | None]] = {}
    for spec, result in zip(specs, results, strict=True):
        by_source.setdefault(spec.source, []).append(result.progress)
    for cid, outcomes in by_source.items():
        source = runner.component(cid)
        state = source.context.state
        for outcome in outcomes:
            for write in (outcome or {}).get("state", ()):
                if state is not None:
                    state.set(*write)
        await source.commit_partitions(outcomes)


def run_workers(
    plan: Plan,
    *,
    workers: int,
    workspace: Path,
    run_id: str,
    settings: EngineSettings,
    audit: bool = True,
    notify: Callable[[str], None] | None = None,
    environ: Mapping[str, str] | None = None,
) -> tuple[RunSummary, RunObserver]:
    """Run ``plan``'s partitions in ``workers`` local processes; the summary of the whole
    run and its observer (closed). ``environ``: the variables the plan was compiled with
    (default: the process environment), for the workers to compile it alike."""
    environ = dict(environ if environ is not None else os.environ)
    observer = make_observer(plan, workspace, settings) if audit else NullObserver()
    try:
        found = _run(plan, workers, workspace, run_id, settings, audit, notify, observer, environ)
        return found, observer
    finally:
        close = getattr(observer, "close", None)
        if close is not None:
            close()


def _run(
    plan: Plan,
    workers: int,
    workspace: Path,
    run_id: str,
    settings: EngineSettings,
    audit: bool,
    notify: Callable[[str], None] | None,
    observer: RunObserver,
    environ: dict[str, str],
) -> RunSummary:
    started = time.perf_counter()
    limit_threads(workers)  # polars' threads: cores / workers each (docs/columnar.md)
    _forkserver()
    forkserver.ensure_running()  # it imports the engine while this process plans
    options = RunOptions(workspace=workspace, run_id=run_id, observer=observer, settings=settings)
    runner = Runner(plan, options)
    observer.run_started(runner.info, {**plan.started_details(), "workers": workers})
    errors: list[str] = []
    results: list[PartitionResult] = []
    specs: list[PartitionSpec] = []
    context = RunContext(run_id, str(workspace), audit, True, plan.spec.sha256)
    with _Signals() as signals:
        try:
            specs = anyio.run(lambda: plan_partitions(runner, workers, notify=notify))
        except Exception as exc:  # the run fails as a failing source fails it
            errors.append(str(as_run_error("planning partitions", exc)))
        if specs and not signals.count:
            if notify is not None:
                used = min(workers, len(specs))
                notify(
                    f"{len(specs)} partition{'s' if len(specs) > 1 else ''} in {used} "
                    f"process{'es' if used > 1 else ''}"
                )
            pool = _Pool(workers, str(plan.spec.file), context, environ)
            results = pool.run(specs, signals)
        interrupted = bool(signals.count) or any(r.outcome == "interrupted" for r in results)
    failed = [r for r in results if r.outcome == "failure"]
    errors.extend(f"partition {r.partition}: {r.error}" for r in failed)
    stages = _totals(plan, results)
    done = not errors and not interrupted and len(results) == len(specs)
    merged = merge_dead_letters(results, letters_path(plan, workspace, run_id))
    if done:
        breach = rejections_breach(plan, stages, merged)
        if breach is not None:
            errors.append(breach)
            done = False
    try:
        if done:
            observer.flush()  # the trail before the fact
            publish_outputs(results, run_id)
            anyio.run(_commit, runner, results, specs)
    except Exception as exc:
        errors.append(str(exc))
        done = False
    finally:
        discard_outputs(results)  # what is left: nothing once published
        runner.close_state()
    summary = RunSummary(
        run_id=run_id,
        pipeline=plan.name,
        ok=done,
        duration_s=time.perf_counter() - started,
        stages=stages,
        error=runner.info.mask.text(errors[0]) if errors else None,
        dead_letters=sum(r.dead_letters for r in results),
        interrupted=interrupted and not errors,
        dead_letter_path=str(merged) if merged else None,
    )
    observer.run_finished(runner.info, summary)
    return summary
