"""``engine run --workers N``: a run's partitions in N local processes, no broker.

The parent process holds the run's lease, writes ``run_started``, plans the partitions and
hands them out one at a time to N worker processes (:class:`WorkerPool`: forked from the
parent before it takes its lease, or from a ``forkserver`` that imported the engine once),
each of which calls :func:`~engine.partitions.worker.run_partition` and writes its own
events to the pipeline's chain. The pieces of file outputs are joined as the partitions
finish (:class:`~engine.partitions.publish.Outputs`). When every partition succeeded, the
parent checks the run's rejections, publishes the outputs, commits the sources' cursors
once and writes ``run_finished``; otherwise it discards what they handed over and commits
nothing.

SIGTERM or SIGINT to the parent stops handing out partitions and sends SIGTERM to the
workers, which stop reading and drain; a second signal kills them. Workers ignore SIGINT
(a terminal's Ctrl-C reaches the parent, which tells them) and end with the parent.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib
import multiprocessing
import multiprocessing.context
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any, cast

import anyio

from engine.columnar import available, limit_threads
from engine.components.base import Role
from engine.errors import EngineError, RunError
from engine.partitions.plan import plan_partitions
from engine.partitions.publish import Outputs, discard_outputs, merge_dead_letters
from engine.partitions.spec import PartitionResult, PartitionSpec, RunContext
from engine.partitions.worker import SIGTERMS, run_partition
from engine.pipeline import compile_file, make_observer
from engine.runtime.deadletter import letters_path, rejection_breach
from engine.runtime.envelope import as_run_error
from engine.runtime.observer import NullObserver, RunObserver, RunSummary, StageStats
from engine.runtime.plan import Plan
from engine.runtime.runner import Runner, RunOptions
from engine.settings import EngineSettings

__all__ = ["WorkerPool", "run_workers", "start_workers"]

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


def _exit_with_parent(parent: int | None) -> None:
    """Linux: SIGTERM this process when its parent dies (no orphan goes on alone).
    ``parent``: the pid it was forked from, when known: a parent gone already ends it."""
    if not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if parent is not None and os.getppid() != parent:
        os._exit(1)  # it died before the request above: no signal will come


def _serve(
    conn: Connection,
    pipeline_file: str,
    plan: Plan | None,
    environ: dict[str, str],
    parent: int | None,
    inherited: list[Connection],
) -> None:
    """A worker process: run the partitions it is sent until it is sent None.

    ``plan``: the pipeline compiled already (a forked worker has the parent's); ``parent``:
    the pid of the run's process when it forked this one; ``inherited``: the parent's ends
    of the pipes to other workers, which a forked worker closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # SIGTERM stays blocked (it was while forking) but in the thread that takes it; one
    # between partitions (the run stops, or its process died): start no other
    SIGTERMS.start()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _exit_with_parent(parent)
    for other in inherited:
        other.close()

    def orphaned() -> bool:
        return parent is not None and os.getppid() != parent

    if plan is None:
        try:
            plan = compile_file(pipeline_file, env=environ)
        except EngineError:
            plan = None  # run_partition reports it
    _warm(environ)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        spec, context = message
        if SIGTERMS.count or orphaned():
            part = PartitionSpec.from_json(spec)
            result = PartitionResult(part.id, part.index, "interrupted", "the run was stopped")
        else:
            result = run_partition(
                pipeline_file, spec, context, plan=plan, environ=environ, stop_on_sigterm=True
            )
        if orphaned():  # no process is left to publish what it handed over
            discard_outputs([result])
            return
        try:
            conn.send(result.to_json())
        except OSError:
            return


_STOPS = {signal.SIGINT, signal.SIGTERM}


def _warm(environ: Mapping[str, str]) -> None:
    """Load polars while the run plans, where the columnar path may run: a worker is
    forked before polars is loaded (its threads would not be copied), and loading it
    takes a tenth of a second the first partition would wait for."""
    try:
        if available(EngineSettings.load(environ).engine_columnar):
            importlib.import_module("polars")
    except Exception:  # the partition will say what is wrong
        return


def _can_fork() -> bool:
    """Whether worker processes may be forked from this one: on Linux, with no other
    thread (a lease renewal, a store's pool) that could hold a lock in the copy, and before
    polars has started its threads."""
    return (
        sys.platform.startswith("linux")
        and threading.active_count() == 1
        and "polars" not in sys.modules
    )


class WorkerPool:
    """N worker processes for one run, each handed the next partition when it is done
    with one.

    Started by :func:`start_workers` before the run takes its lease and plans, so that
    they are ready when the partitions are: forked from this process while it has no
    other thread (the engine and the compiled pipeline are in memory already), or, where
    it cannot fork, from a server process that imports the engine once."""

    def __init__(
        self, workers: int, pipeline_file: str, environ: dict[str, str], plan: Plan | None
    ) -> None:
        self.workers = workers
        self.environ = environ  # with --env-file's variables: for this machine's workers only
        self.pipeline_file = pipeline_file
        self.forked = False
        self.stopping = False
        self._plan = plan
        self._procs: dict[Connection, BaseProcess] = {}
        self._busy: dict[Connection, PartitionSpec | None] = {}
        self._specs: Sequence[PartitionSpec] = ()
        self._handed = 0  # partitions handed out so far
        #: why a partition could not be planned (the run fails)
        self.planning_error: str | None = None
        self._context: dict[str, Any] = {}
        self._on_result: Callable[[PartitionResult], None] | None = None

    def start(self) -> None:
        limit_threads(self.workers)  # polars' threads: cores / workers each (docs/columnar.md)
        self.forked = _can_fork()
        spawn: multiprocessing.context.BaseContext
        if self.forked:
            spawn = multiprocessing.get_context("fork")
        else:
            spawn = multiprocessing.get_context("forkserver")
            spawn.set_forkserver_preload([__name__])
        parent = os.getpid() if self.forked else None
        # a signal is held until the worker has set its own handlers
        before = signal.pthread_sigmask(signal.SIG_BLOCK, _STOPS)
        try:
            for _ in range(self.workers):
                conn, child = spawn.Pipe()
                inherited = [*self._procs, conn] if self.forked else []
                proc = spawn.Process(
                    target=_serve,
                    args=(
                        child,
                        self.pipeline_file,
                        self._plan if self.forked else None,
                        self.environ,
                        parent,
                        inherited,
                    ),
                    name="engine-partition",
                )
                proc.start()
                child.close()
                self._procs[conn] = proc
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, before)

    def run(
        self,
        specs: Sequence[PartitionSpec],
        context: RunContext,
        signals: _Signals,
        on_result: Callable[[PartitionResult], None] | None = None,
    ) -> list[PartitionResult]:
        """Run ``specs`` to their ends (or until the run is stopped); their results.
        ``on_result``: called with each as it comes in, once its worker has the next.
        Each partition is asked of ``specs`` when a worker is to run it, the next one as
        soon as that one is handed out (a source that finds its parts as it goes finds
        them while the workers read)."""
        self._context = context.to_json()
        self._on_result = on_result
        self._specs = specs
        results: dict[int, PartitionResult] = {}
        killed = False
        self._busy = dict.fromkeys(self._procs)
        for conn in list(self._busy):
            self._next(conn, ahead=False)  # every worker has one before the next is found
        self._partition(self._handed)
        while self._busy:
            if signals.count and not self.stopping:
                self._stop()
            if signals.count > 1 and not killed:
                killed = True
                for conn in self._busy:
                    self._procs[conn].kill()
            for ready in wait(list(self._busy), timeout=POLL):
                self._receive(cast(Connection, ready), results)
        if not self.stopping:  # no worker was left to run the rest
            why = "its worker processes ended before it ran"
            for index in range(self._handed, len(specs)):
                results[index] = PartitionResult(f"{index:04d}", index, "failure", why)
        return [results[i] for i in sorted(results)]

    def close(self) -> None:
        """End the workers (those still running a partition are killed) and reap them."""
        atexit.unregister(self.close)
        for conn, proc in self._procs.items():
            if self._busy.get(conn) is not None:
                proc.kill()
            with contextlib.suppress(OSError):
                conn.send(None)
        for conn, proc in self._procs.items():
            proc.join(JOIN_DEADLINE)
            if proc.is_alive():
                proc.kill()
                proc.join()
            conn.close()
        self._procs.clear()
        self._busy.clear()

    def _receive(self, conn: Connection, results: dict[int, PartitionResult]) -> None:
        spec = self._busy[conn]
        try:
            data = conn.recv()
        except (EOFError, OSError):
            del self._busy[conn]
            proc = self._procs[conn]
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
        if self._on_result is not None:
            self._on_result(result)

    def _next(self, conn: Connection, *, ahead: bool = True) -> None:
        """Hand ``conn``'s worker the next partition (None: it is done), and find the one
        after it while the workers read (``ahead``)."""
        spec = self._partition(self._handed) if not self.stopping else None
        if spec is not None:
            self._handed += 1
        self._busy[conn] = spec
        with contextlib.suppress(OSError):  # it died: the next wait reads its end
            conn.send(None if spec is None else (spec.to_json(), self._context))
        if spec is not None and ahead:
            self._partition(self._handed)

    def _partition(self, index: int) -> PartitionSpec | None:
        """The partition ``index`` (None past the last, or when it cannot be planned:
        then the run stops)."""
        if index >= len(self._specs):
            return None
        try:
            return self._specs[index]
        except Exception as exc:  # the run fails as a failing source fails it
            self.planning_error = str(as_run_error("planning partitions", exc))
            self._stop()
            return None

    def _stop(self) -> None:
        """Hand out nothing more; workers stop reading and drain what they hold."""
        if self.stopping:
            return
        self.stopping = True
        for conn, spec in self._busy.items():
            pid = self._procs[conn].pid
            if spec is not None and pid is not None:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGTERM)


def start_workers(
    plan: Plan, workers: int, *, environ: Mapping[str, str] | None = None
) -> WorkerPool:
    """Start the ``workers`` processes of a run of ``plan``, for :func:`run_workers`.
    Best called before the run takes its lease (whose renewal is a thread) and before
    polars is loaded: the workers are then forked, ready at once. ``environ``: the
    variables the plan was compiled with (default: the process environment)."""
    environ = dict(environ if environ is not None else os.environ)
    pool = WorkerPool(workers, str(plan.spec.file), environ, plan)
    atexit.register(pool.close)  # a process that exits before the run still ends them
    try:
        pool.start()
    except BaseException:
        pool.close()
        raise
    return pool


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
    runner: Runner, results: list[PartitionResult], specs: Sequence[PartitionSpec]
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
    pool: WorkerPool | None = None,
) -> tuple[RunSummary, RunObserver]:
    """Run ``plan``'s partitions in ``workers`` local processes; the summary of the whole
    run and its observer (closed). ``environ``: the variables the plan was compiled with
    (default: the process environment), for the workers to compile it alike. ``pool``:
    the workers, started by :func:`start_workers` (closed here); without it the run
    starts its own."""
    if pool is None:
        pool = start_workers(plan, workers, environ=environ)
    try:
        observer = make_observer(plan, workspace, settings) if audit else NullObserver()
        try:
            found = _run(plan, pool, workspace, run_id, settings, audit, notify, observer)
            return found, observer
        finally:
            close = getattr(observer, "close", None)
            if close is not None:
                close()
    finally:
        pool.close()


def _run(
    plan: Plan,
    pool: WorkerPool,
    workspace: Path,
    run_id: str,
    settings: EngineSettings,
    audit: bool,
    notify: Callable[[str], None] | None,
    observer: RunObserver,
) -> RunSummary:
    started = time.perf_counter()
    workers = pool.workers
    options = RunOptions(workspace=workspace, run_id=run_id, observer=observer, settings=settings)
    runner = Runner(plan, options)
    observer.run_started(runner.info, {**plan.started_details(), "workers": workers})
    errors: list[str] = []
    results: list[PartitionResult] = []
    specs: Sequence[PartitionSpec] = ()
    context = RunContext(
        run_id, str(workspace), audit, True, plan.spec.sha256, publisher=os.getpid()
    )
    outputs = Outputs()  # joined as the partitions finish
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
            results = pool.run(specs, context, signals, on_result=outputs.add)
            if pool.planning_error is not None:
                errors.append(pool.planning_error)
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
            outputs.publish()
            anyio.run(_commit, runner, results, specs)
    except Exception as exc:
        errors.append(str(exc))
        done = False
    finally:
        outputs.discard()  # what is left: nothing once published
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
