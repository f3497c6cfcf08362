"""Run one partition of a run, in whatever process it is handed to.

:func:`run_partition` is the one entry point: a local worker process of
``engine run --workers N`` calls it, and so can any other process given the pipeline file,
a :class:`PartitionSpec` and the :class:`RunContext` (all plain JSON). It never commits a
cursor or publishes a file output the run publishes: it reports them in its
:class:`PartitionResult`, and the run commits once every partition is done.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from engine.audit.partition import create_partition_observer
from engine.components.base import ComponentContext, Role, Source
from engine.errors import EngineError, PermanentError
from engine.partitions.spec import PartitionResult, PartitionSpec, RunContext
from engine.pipeline import compile_file
from engine.records import Chunk
from engine.runtime.observer import NullObserver, RunObserver, RunSummary
from engine.runtime.plan import Node, Plan
from engine.runtime.runner import Runner, RunOptions, SourceFactory
from engine.settings import EngineSettings
from engine.state import FreshCursors, StateStore

__all__ = ["SIGTERMS", "Sigterms", "run_partition"]


class Sigterms:
    """SIGTERM in a process that runs partitions, taken by a thread of its own
    (``sigwait``) while every other thread blocks it: the process never has a moment where
    SIGTERM's default action ends it, as asyncio's leaves it between two event loops, and
    a signal between partitions is counted (:attr:`count`) for the next to see.

    :meth:`start` once, in the main thread before it starts other threads (they inherit
    its blocked signals); a thread started before still blocks nothing, so the Python
    handler counts what reaches it too."""

    def __init__(self) -> None:
        self.count = 0
        # reentrant: the Python handler runs in the main thread, which may hold it
        self._lock = threading.RLock()
        self._started = False
        self._on: Callable[[], None] | None = None

    def start(self) -> None:
        with self._lock:
            if self._started:
                return
            self._started = True
        signal.signal(signal.SIGTERM, lambda signum, frame: self._take())
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        threading.Thread(target=self._wait, name="engine-sigterm", daemon=True).start()

    def _wait(self) -> None:
        while True:
            signal.sigwait({signal.SIGTERM})
            self._take()

    def _take(self) -> None:
        with self._lock:
            self.count += 1
            on = self._on
        if on is not None:
            on()

    @contextlib.contextmanager
    def calling(self, on: Callable[[], None]) -> Iterator[None]:
        """While in the block, each SIGTERM calls ``on`` (from any thread); one received
        before it, once, on entering."""
        with self._lock:
            self._on, before = on, self.count
        try:
            if before:
                on()
            yield
        finally:
            with self._lock:
                self._on = None


#: the process's SIGTERM, once a partition asked to stop on it
SIGTERMS = Sigterms()


class _Idle(Source[Any]):
    """A source of the pipeline that another partition reads: nothing here."""

    async def read(self) -> AsyncIterator[Chunk]:
        return
        yield  # an async generator that yields nothing


def _idle(node: Node, ctx: ComponentContext) -> Source[Any]:
    return _Idle(node.config, ctx)


def _reader(part: dict[str, Any]) -> SourceFactory:
    def factory(node: Node, ctx: ComponentContext) -> Source[Any]:
        source: Source[Any] = node.entry.spec.implementation(node.config, ctx)
        source.use_partition(part)
        return source

    return factory


class _Recorder(FreshCursors):
    """Reads the pipeline's state; keeps what is written, for the run to write once."""

    def __init__(self, inner: StateStore | FreshCursors) -> None:
        super().__init__(inner if isinstance(inner, StateStore) else inner.store, "")
        self.inner = inner
        self.written: list[list[Any]] = []

    def get(self, pipeline: str, component: str, key: str, default: Any = None) -> Any:
        return self.inner.get(pipeline, component, key, default)

    def set(self, pipeline: str, component: str, key: str, value: Any) -> None:
        self.written.append([pipeline, component, key, value])


async def _outcome(source: Source[Any]) -> dict[str, Any] | None:
    """What the run commits for this partition's source: its own outcome where it splits
    its work; else the state its ``commit`` would write (it read everything here)."""
    outcome = source.partition_outcome()
    if outcome is not None or source.context.state is None:
        return outcome
    recorder = _Recorder(source.context.state)
    source.context.state = recorder
    await source.commit()
    return {"state": recorder.written} if recorder.written else None


def _sigterm_stops(
    runner: Runner, scope: anyio.CancelScope
) -> contextlib.AbstractContextManager[None]:
    """While in it, SIGTERM stops the running partition: the first stops reading and
    drains, a second cancels ``scope``."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if runner.interrupted:
            scope.cancel()
        else:
            runner.stop()

    def call() -> None:  # from any thread
        with contextlib.suppress(RuntimeError):  # the loop has ended: nothing to stop
            loop.call_soon_threadsafe(stop)

    return SIGTERMS.calling(call)


async def _report(
    runner: Runner, summary: RunSummary, spec: PartitionSpec, result: PartitionResult
) -> None:
    result.outcome = summary.outcome
    result.error = summary.error
    result.stages = {cid: asdict(stats) for cid, stats in summary.stages.items()}
    result.dead_letters = summary.dead_letters
    result.dead_letter_path = summary.dead_letter_path
    for cid, sink in runner.components(Role.SINK).items():
        if handed := sink.handed_over():
            result.outputs[cid] = handed
    if summary.ok:
        with anyio.CancelScope(shield=True):
            result.progress = await _outcome(runner.components(Role.SOURCE)[spec.source])


def run_partition(
    pipeline_file: str | Path,
    spec: PartitionSpec | dict[str, Any],
    context: RunContext | dict[str, Any],
    *,
    plan: Plan | None = None,
    environ: Mapping[str, str] | None = None,
    stop_on_sigterm: bool = False,
    on_runner: Callable[[Runner], None] | None = None,
) -> PartitionResult:
    """Run one partition of a run to its end and say how it went (never raises for a
    failure of the run: the result carries it).

    ``plan``: the pipeline file compiled already (a worker running many partitions);
    ``environ``: the variables ``${env:...}`` and the settings read (default: the process
    environment);
    ``stop_on_sigterm``: SIGTERM stops the partition as it stops a run (drain, publish
    nothing), in a process whose main thread this is: from then on the process's SIGTERM
    goes to :data:`SIGTERMS`, which counts those between partitions."""
    if isinstance(spec, dict):
        spec = PartitionSpec.from_json(spec)
    if isinstance(context, dict):
        context = RunContext.from_json(context)
    started = time.perf_counter()
    result = PartitionResult(spec.id, spec.index, "failure")
    try:
        _run(pipeline_file, spec, context, plan, environ, stop_on_sigterm, on_runner, result)
    except EngineError as exc:
        result.outcome, result.error = "failure", str(exc)
    result.duration_s = time.perf_counter() - started
    return result


def _run(
    pipeline_file: str | Path,
    spec: PartitionSpec,
    context: RunContext,
    plan: Plan | None,
    environ: Mapping[str, str] | None,
    stop_on_sigterm: bool,
    on_runner: Callable[[Runner], None] | None,
    result: PartitionResult,
) -> None:
    env = EngineSettings.load(environ)
    if plan is None:
        plan = compile_file(pipeline_file, env=environ)
    if context.pipeline_sha256 is not None and plan.spec.sha256 != context.pipeline_sha256:
        raise PermanentError(
            f"{pipeline_file} changed since the run planned its partitions (sha256 "
            f"{plan.spec.sha256} now, {context.pipeline_sha256} then)"
        )
    workspace = Path(context.workspace)
    observer: RunObserver = NullObserver()
    if context.audit:
        about = {
            "source": spec.source,
            "of": spec.count,
            "part": spec.part,
            "attempt": context.attempt,
            "redelivered": context.redelivered,
        }
        observer = create_partition_observer(
            plan.spec.audit, workspace, partition=spec.id, about=about, env=env
        )
    sources = [cid for cid in plan.order if plan.nodes[cid].role is Role.SOURCE]
    overrides = {cid: _reader(spec.part) if cid == spec.source else _idle for cid in sources}
    options = RunOptions(
        workspace=workspace,
        run_id=context.run_id,
        observer=observer,
        source_overrides=overrides,
        settings=env,
        partition=spec.id,
        hand_over=(context.publisher or os.getppid()) if context.hand_over else None,
    )
    runner = Runner(plan, options)
    if on_runner is not None:
        on_runner(runner)

    async def main() -> None:
        with anyio.CancelScope() as scope:
            with _sigterm_stops(runner, scope) if stop_on_sigterm else contextlib.nullcontext():
                summary = await runner.run()
                # a second SIGTERM still cancels the run here, and leaves no summary
                await _report(runner, summary, spec, result)

    if stop_on_sigterm:
        SIGTERMS.start()
    try:
        anyio.run(main)
        if result.outcome == "failure" and result.error is None:
            result.outcome, result.error = "interrupted", "cancelled by a second SIGTERM"
    finally:
        close = getattr(observer, "close", None)
        if close is not None:
            close()
