"""Runs a Plan: one task per component, bounded channels between them, shielded cleanup.

The stage wrappers here own the cross-cutting work (audit, statistics, delivery) and apply
each component's envelope: ``batch`` through :mod:`engine.runtime.rebatch`, ``timeout``,
``retry`` and ``on_error`` through :mod:`engine.runtime.envelope`. Components only read,
transform or write.
"""

from __future__ import annotations

import getpass
import socket
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, cast

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from engine.columnar import as_taken, available, takes_columns
from engine.components.base import (
    ComponentContext,
    OnError,
    Role,
    Sink,
    Source,
    Transform,
)
from engine.errors import EngineError, FatalError, PartialWriteError, PermanentError, RunError
from engine.records import Batch, Chunk, Rejected
from engine.records.digest import Digester
from engine.redact import ValueMask, masked_logs
from engine.runtime import checkpoint, runlog
from engine.runtime.capture import CaptureSink
from engine.runtime.deadletter import DeadLetters, locate, rejection_breach
from engine.runtime.delivery import Delivery, Held
from engine.runtime.envelope import Enforcer, apply_on_error, as_run_error
from engine.runtime.heap import gc_tuned
from engine.runtime.history import state_of
from engine.runtime.observer import (
    BatchAction,
    NullObserver,
    RunInfo,
    RunObserver,
    RunSummary,
    StageInfo,
    StageStats,
)
from engine.runtime.plan import Node, Plan
from engine.runtime.rebatch import Message, Rebatcher
from engine.runtime.telemetry import NULL_TELEMETRY, RunTelemetry, Watch
from engine.runtime.telemetry import Stage as TelemetryStage
from engine.settings import EngineSettings
from engine.state import FreshCursors, StateStore
from engine.workspace import base_dir_of

__all__ = ["RunOptions", "Runner"]

#: batches that may wait between two stages: with one, each stage works while the next
#: has one in hand; more only hold memory (a column batch is a MiB or two). Measured
#: (docs/columnar.md): no faster with 4, and the 5M-row run's peak up to 10 MB higher.
CHANNEL_BUFFER = 1
CLEANUP_DEADLINE = 30.0

SourceFactory = Callable[[Node, ComponentContext], Source[Any]]


@dataclass
class RunOptions:
    workspace: Path
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    dry_run: bool = False
    limit: int | None = None  # dry runs: records per source
    observer: RunObserver = field(default_factory=NullObserver)
    #: replaces a source by another (dry-run samples); keyed by source id, "*" for all
    source_overrides: dict[str, SourceFactory] = field(default_factory=dict)
    on_progress: Callable[[dict[str, StageStats]], None] | None = None
    #: discard the checkpoint of an interrupted run instead of resuming from it
    restart: bool = False
    #: told, in one line, whether the run resumes an interrupted one or keeps a checkpoint
    notify: Callable[[str], None] | None = None
    #: the environment's settings, read by the entry point (default: none set)
    settings: EngineSettings = field(default_factory=EngineSettings.defaults)
    #: the pipeline's state store (default: the one its [state] table names, opened here)
    state: StateStore | None = None
    #: ignore the saved cursors; a successful run replaces them
    full_refresh: bool = False
    #: this run is one partition of a larger run (engine.partitions): its id. The larger
    #: run checks rejections, commits cursors and keeps dead letters for all partitions.
    partition: str | None = None
    #: file sinks leave their finished outputs for the larger run to publish: the pid of
    #: its process, which their temp names carry (None: they publish them themselves)
    hand_over: int | None = None
    #: what started the run, recorded in ``run_started`` (a schedule's fire time)
    trigger: dict[str, str] | None = None
    #: metrics and traces (default: none)
    telemetry: RunTelemetry = NULL_TELEMETRY


async def _release(deliveries: tuple[Delivery, ...]) -> None:
    for delivery in deliveries:
        await delivery.release()


@dataclass
class _Stage:
    node: Node
    info: StageInfo
    stats: StageStats
    component: Any
    enforcer: Enforcer  # the component's timeout and retry policy
    outputs: dict[str | None, list[MemoryObjectSendStream[Message]]] = field(default_factory=dict)
    inbox: Rebatcher | None = None  # transforms and sinks: their input, re-batched
    held: Held | None = None  # sinks: what is written and not yet published


class Runner:
    def __init__(self, plan: Plan, options: RunOptions) -> None:
        self.plan = plan
        self.options = options
        self.observer = options.observer
        self.telemetry = options.telemetry
        self._watch = Watch(self.observer, self.telemetry)
        # Digests of the bytes sources read and sinks write, for observers that record
        # them (the audit trail).
        self._digester = Digester() if getattr(self.observer, "wants_content", False) else None
        self.captured: dict[str, Batch] = {}  # dry runs: what each sink would receive
        self._stages: dict[str, _Stage] = {}
        self._errors: list[BaseException] = []
        self._source_scopes: set[anyio.CancelScope] = set()
        self._state = options.state or state_of(plan, options.workspace, read_only=options.dry_run)
        self._cursors = (
            FreshCursors(self._state, plan.name) if options.full_refresh else self._state
        )
        self.interrupted = False  # stop() was called
        self._cut_short = False  # a source stopped before its input ran out
        spec = plan.spec
        self.dead_letters = DeadLetters.of_run(
            plan,
            options.workspace,
            options.run_id,
            store=self._state,
            dry_run=options.dry_run,
            partition=options.partition,
        )
        self.info = RunInfo(
            run_id=options.run_id,
            pipeline=plan.name,
            pipeline_file=str(spec.file) if spec.file else None,
            pipeline_sha256=spec.sha256,
            started_at=datetime.now(UTC),
            user=_user(),
            host=socket.gethostname(),
            dry_run=options.dry_run,
            tags=tuple(spec.meta.tags),
            mask=ValueMask(spec.secrets),
        )

    # -- set-up ---------------------------------------------------------------------------
    def _context(self, node: Node) -> ComponentContext:
        spec = self.plan.spec
        base = base_dir_of(spec.file)
        # dry runs read the saved cursors (the preview starts where a run would) and keep
        # nothing: their store is read-only
        return ComponentContext(
            component_id=node.id,
            pipeline=self.plan.name,
            base_dir=base,
            workspace=self.options.workspace,
            run_id=self.options.run_id,
            state=self._cursors,
            dry_run=self.options.dry_run,
            audit=self.plan.spec.audit,
            digester=self._digester,
            settings=self.options.settings,
            timeout=node.config.timeout,
            expressions=self.plan.expressions_of(node.id),
            partition=self.options.partition,
            hand_over=self.options.hand_over,
        )

    def component(self, cid: str) -> Any:
        """One component built with its run context, outside a run (planning partitions)."""
        node = self.plan.nodes[cid]
        return node.entry.spec.implementation(node.config, self._context(node))

    def close_state(self) -> None:
        """Close the state store :meth:`component` opened."""
        if self._state is not None:
            self._state.close()

    def _build(self) -> None:
        overrides = self.options.source_overrides
        for cid in self.plan.order:
            node = self.plan.nodes[cid]
            ctx = self._context(node)
            component: Any
            if node.role is Role.SOURCE and (cid in overrides or "*" in overrides):
                component = (overrides.get(cid) or overrides["*"])(node, ctx)
            elif node.role is Role.SINK and self.options.dry_run:
                component = CaptureSink(node.config, ctx, self.captured.setdefault(cid, []))
            else:
                component = node.entry.spec.implementation(node.config, ctx)
            resource = component.resource()
            resource = self.info.mask.text(resource) if resource else resource
            info = StageInfo(cid, node.role.value, node.entry.spec.type, resource)
            stats = StageStats()
            enforcer = Enforcer.of(
                node.config,
                info,
                stats,
                self.observer,
                default_retries=self.options.settings.integration_retry_count,
            )
            stage = _Stage(node, info, stats, component, enforcer)
            self._stages[cid] = stage
            ctx.caller = enforcer.call
            ctx.emitter = partial(self._component_event, stage)
            ctx.meter = self.telemetry.meter(info)
        # wire channels: one bounded channel into every non-source stage
        sends: dict[str, MemoryObjectSendStream[Message]] = {}
        for cid, stage in self._stages.items():
            if stage.node.role is not Role.SOURCE:
                send, receive = anyio.create_memory_object_stream[Message](CHANNEL_BUFFER)
                sends[cid] = send
                stage.inbox = Rebatcher(receive, stage.node.config.batch)
        for stage in self._stages.values():
            for output, downstream in stage.node.consumers.items():
                stage.outputs[output] = [sends[d].clone() for d in downstream]
        for send in sends.values():
            send.close()  # the clones keep each channel open until every producer is done
        for cid, stage in self._stages.items():
            if stage.node.role is Role.SINK:
                sources = tuple(
                    self._stages[s].component
                    for s in self._upstream_sources(cid)
                    if self._stages[s].component.acknowledges
                )
                stage.component.context.acknowledged = bool(sources)
                stage.held = Held(stage.component, sources)
            elif stage.node.role is Role.SOURCE:  # column batches only for those that take them
                ds = [self._stages[d].component for ds in stage.node.consumers.values() for d in ds]
                wanted = bool(ds) and all(map(takes_columns, ds))
                columnar = available(self.options.settings.engine_columnar)
                stage.component.context.columnar = wanted and columnar

    def _upstream_sources(self, cid: str) -> set[str]:
        found: set[str] = set()
        todo = [cid]
        while todo:
            node = self.plan.nodes[todo.pop()]
            if node.role is Role.SOURCE:
                found.add(node.id)
            todo.extend(upstream for upstream, _ in node.inputs)
        return found

    # -- running --------------------------------------------------------------------------
    async def run(self) -> RunSummary:
        with gc_tuned(), masked_logs(self.info.mask), runlog.bound_to(self.info):
            return await self._run()

    async def _run(self) -> RunSummary:
        started = time.perf_counter()
        self._build()
        details = self.plan.started_details()
        if self.options.trigger:
            details["trigger"] = dict(self.options.trigger)
        resumed = self._take_checkpoint()
        if resumed is not None:
            details["resumes"] = resumed.details()
        self.observer.run_started(self.info, details)
        runlog.run_started(self.options.run_id, self.plan.name, len(self._stages))
        self.telemetry.run_started(
            self.info, {cid: TelemetryStage(s.info, s.stats) for cid, s in self._stages.items()}
        )
        ok = False
        try:
            async with anyio.create_task_group() as outer:
                if self.options.on_progress is not None:
                    outer.start_soon(self._progress_loop)
                async with anyio.create_task_group() as tg:
                    for stage in self._stages.values():
                        tg.start_soon(self._guard, stage, tg.cancel_scope)
                outer.cancel_scope.cancel()
            self._check_rejected()
            ok = not self._errors and not self._cut_short
            await self._close_all(success=ok)
            if ok and isinstance(self._cursors, FreshCursors):
                self._cursors.finish()
        except BaseException:
            await self._close_all(success=False)
            raise
        finally:
            self.dead_letters.close()
            if self.options.state is None:
                self._state.close()
        summary = RunSummary(
            run_id=self.options.run_id,
            pipeline=self.plan.name,
            ok=ok and not self._errors,
            duration_s=time.perf_counter() - started,
            stages={cid: s.stats for cid, s in self._stages.items()},
            error=self.info.mask.text(str(self._errors[0])) if self._errors else None,
            dead_letters=self.dead_letters.count,
            interrupted=self._cut_short and not self._errors,
            dead_letter_path=str(written) if (written := self.dead_letters.written) else None,
        )
        self.observer.run_finished(self.info, summary)
        runlog.run_done(summary, {cid: s.info.role for cid, s in self._stages.items()})
        self.telemetry.run_finished(self.info, summary)
        return summary

    def components(self, role: Role) -> dict[str, Any]:
        """The run's components of one role, by id (built when the run starts)."""
        return {cid: s.component for cid, s in self._stages.items() if s.node.role is role}

    def _take_checkpoint(self) -> checkpoint.Resumed | None:
        """Resume an interrupted run of this pipeline where that is still sound."""
        options = self.options
        if options.dry_run or options.source_overrides or options.partition or not self._state:
            return None
        if not self._state.exists():
            return None  # no state kept yet, and none made here
        resumed, said = checkpoint.take(
            self._state,
            self.plan.name,
            pipeline_sha256=self.plan.spec.sha256,
            sources=self.components(Role.SOURCE),
            sinks=self.components(Role.SINK),
            restart=self.options.restart or self.options.full_refresh,
        )
        if said is not None and self.options.notify is not None:
            self.options.notify(said)
        return resumed

    def _keep_checkpoint(self) -> None:
        """After a drained interruption: keep where the sources stopped and what the sinks
        staged, for the next run to go on from."""
        options = self.options
        if options.dry_run or options.source_overrides or options.partition or not self._state:
            return
        kept = checkpoint.save(
            self._state,
            self.plan.name,
            run_id=self.options.run_id,
            pipeline_sha256=self.plan.spec.sha256,
            sources=self.components(Role.SOURCE),
            sinks=self.components(Role.SINK),
        )
        if kept and self.options.notify is not None:
            self.options.notify("checkpoint kept: the next run resumes from where this one stopped")

    def _check_rejected(self) -> None:
        """Fail the run, before anything is published, when it rejected too many records.

        Dry runs and `engine test` cases list their rejections instead."""
        if self._errors or self.interrupted or self.options.dry_run or self.options.partition:
            return
        stages = self._stages.values()
        breach = rejection_breach(
            self.plan.spec.dead_letter,
            read=sum(
                s.stats.records_out + s.stats.rejected for s in stages if s.node.role is Role.SOURCE
            ),
            rejected=sum(s.stats.rejected for s in stages),
            file=self.dead_letters.written,
        )
        if breach is not None:
            self._errors.append(RunError(self.plan.name, breach))

    def stop(self) -> None:
        """Graceful stop: sources stop reading, in-flight batches drain, sinks flush."""
        self.interrupted = True
        for scope in self._source_scopes:
            scope.cancel()

    async def _progress_loop(self) -> None:
        assert self.options.on_progress is not None
        while True:
            for stage in self._stages.values():
                if stage.node.role is Role.SOURCE and (done := stage.component.progress()):
                    stage.stats.bytes_read, stage.stats.bytes_total = done
            self.options.on_progress({cid: s.stats for cid, s in self._stages.items()})
            await anyio.sleep(0.25)

    async def _guard(self, stage: _Stage, group: anyio.CancelScope) -> None:
        try:
            async with AsyncExitStack() as stack:
                stack.enter_context(runlog.bound_to(stage.info))
                for sends in stage.outputs.values():
                    for send in sends:
                        stack.enter_context(send)
                if stage.node.role is Role.SOURCE:
                    await self._run_source(stage)
                elif stage.node.role is Role.TRANSFORM:
                    await self._run_transform(stage)
                else:
                    await self._run_sink(stage)
                runlog.component_done(stage.info, stage.stats)
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:
            stage.stats.errors += 1
            self._errors.append(as_run_error(stage.node.id, exc))
            group.cancel()

    async def _emit(
        self, stage: _Stage, output: str | None, records: Batch, deliveries: tuple[Delivery, ...]
    ) -> None:
        for send in stage.outputs.get(output, ()):
            for delivery in deliveries:
                delivery.pending += 1
            await send.send((records, deliveries))

    async def _run_source(self, stage: _Stage) -> None:
        source: Source[Any] = stage.component
        await stage.enforcer.call(source.open)
        limit = self.options.limit
        reader = cast(AsyncGenerator[Chunk, None], source.read())
        try:
            while True:
                if self.interrupted:
                    self._cut_short = True
                    break
                # only waiting for input is cancelled by stop(): a chunk in hand is delivered
                with anyio.CancelScope() as scope:
                    self._source_scopes.add(scope)
                    began = time.time_ns()
                    try:
                        chunk = await reader.__anext__()
                    except StopAsyncIteration:
                        break
                    finally:
                        self._source_scopes.discard(scope)
                if scope.cancelled_caught:
                    self._cut_short = True
                    break
                if limit is not None:
                    remaining = limit - stage.stats.records_out - stage.stats.rejected
                    records = chunk.records[:remaining]
                    rejected = chunk.rejected[: max(remaining - len(records), 0)]
                    chunk = Chunk(records, rejected, chunk.token)
                await self._accept_chunk(stage, chunk, began)
                if limit is not None and stage.stats.records_out + stage.stats.rejected >= limit:
                    break
        finally:
            with anyio.CancelScope(shield=True):
                await reader.aclose()

    async def _accept_chunk(self, stage: _Stage, chunk: Chunk, began: int) -> None:
        # dry runs never acknowledge: a queue keeps its messages for the real run
        acked = chunk.token is not None and not self.options.dry_run
        deliveries = (Delivery(stage.component, chunk.token),) if acked else ()
        if chunk.rejected:
            self._reject(stage, chunk.rejected)
        if chunk.records:
            stage.stats.records_out += len(chunk.records)
            stage.stats.batches += 1
            self._watch.batch(stage.info, BatchAction.READ, chunk.records, began, chunk.content)
            for output in stage.outputs:
                await self._emit(stage, output, chunk.records, deliveries)
        await _release(deliveries)

    async def _run_transform(self, stage: _Stage) -> None:
        transform: Transform[Any] = stage.component
        inbox = stage.inbox
        assert inbox is not None
        async with inbox:
            async for batch, deliveries in inbox:
                stage.stats.records_in += len(batch)
                stage.stats.batches += 1
                batch = as_taken(transform, batch)
                began = time.time_ns()
                result = await stage.enforcer.process(transform, batch)
                ended = time.time_ns()
                if result.rejected:
                    self._reject(stage, self._locate(stage, batch, result.rejected))
                produced: Batch = []
                for output, records in result.outputs.items():
                    stage.stats.records_out += len(records)
                    if records:
                        await self._emit(stage, output, records, deliveries)
                        produced = records if not produced else [*produced, *records]
                self._watch.batch(stage.info, BatchAction.TRANSFORMED, produced, began, ended=ended)
                await _release(deliveries)

    async def _run_sink(self, stage: _Stage) -> None:
        sink: Sink[Any] = stage.component
        held = stage.held
        inbox = stage.inbox
        assert inbox is not None and held is not None
        async with inbox:
            await stage.enforcer.call(sink.open)
            while True:
                wait = held.wait()
                try:
                    if wait is None:
                        batch, deliveries = await inbox.receive()
                    else:
                        # the oldest staged record may wait `wait` seconds more, no longer
                        with anyio.move_on_after(wait) as timer:
                            batch, deliveries = await inbox.receive()
                        if timer.cancelled_caught:
                            await self._publish(stage, held)
                            continue
                except anyio.EndOfStream:
                    break
                await self._write(stage, sink, as_taken(sink, batch), deliveries)
                held.staged = True
                held.deliveries.extend(deliveries)
                if held.due_now():
                    await self._publish(stage, held)

    async def _publish(self, stage: _Stage, held: Held) -> None:
        try:
            await held.publish(self.observer)
        except EngineError as exc:
            self.observer.connector_error(stage.info, exc, attempt=1, will_retry=False)
            raise

    async def _write(
        self, stage: _Stage, sink: Sink[Any], batch: Batch, deliveries: tuple[Delivery, ...]
    ) -> None:
        stage.stats.records_in += len(batch)
        stage.stats.batches += 1
        began = time.time_ns()
        try:
            await stage.enforcer.call(lambda b=batch: sink.write(b))  # type: ignore[misc]
        except FatalError:
            raise  # never routed: it stops the run whatever on_error says
        except PartialWriteError as exc:
            if stage.node.config.on_error is OnError.FAIL:
                raise
            refused = {id(r.record) for r in exc.rejected}
            delivered = [r for r in batch if id(r) not in refused]
            self._reject(stage, self._locate(stage, batch, exc.rejected))
            stage.stats.records_out += len(delivered)
            content = sink.take_content()  # the bytes this write produced
            if delivered:
                self._watch.batch(stage.info, BatchAction.WRITTEN, delivered, began, content)
        except EngineError as exc:
            # a FatalError stops the run whatever on_error says: never dead-lettered or skipped
            if stage.node.config.on_error is OnError.FAIL or isinstance(exc, FatalError):
                # once per chunk, however many of its pieces the batch holds
                for delivery in {id(d): d for d in deliveries}.values():
                    await delivery.fail(permanent=isinstance(exc, PermanentError))
                raise
            self._reject(stage, self._locate(stage, batch, [Rejected(r, str(exc)) for r in batch]))
        else:
            stage.stats.records_out += len(batch)
            content = sink.take_content()
            self._watch.batch(stage.info, BatchAction.WRITTEN, batch, began, content)

    def _component_event(
        self, stage: _Stage, action: str, level: str, details: Mapping[str, object]
    ) -> None:
        self.observer.component_event(stage.info, action, level, details)
        self.telemetry.component_event(stage.info, action, details)

    def _locate(self, stage: _Stage, batch: Batch, rejected: list[Rejected]) -> list[Rejected]:
        """Number rejected records among those this stage received, or among those its
        source read when the stage reads one source directly."""
        ups = stage.node.inputs
        origin = f"{stage.node.id} input"
        if len(ups) == 1 and (source := self._stages[ups[0][0]]).node.role is Role.SOURCE:
            origin = f"{source.info.resource or source.node.id} record"
        first = stage.stats.records_in - len(batch)
        return locate(rejected, batch, first=first, origin=origin)

    def _reject(self, stage: _Stage, rejected: Sequence[Rejected]) -> None:
        node = stage.node
        stage.stats.rejected += apply_on_error(
            node.config.on_error,
            rejected,
            report=partial(self.observer.rejected, stage.info),
            dead_letter=partial(self._dead_letter, stage),
        )

    def _dead_letter(self, stage: _Stage, rejected: list[Rejected]) -> None:
        self.dead_letters.write(stage.node.id, stage.node.role.value, rejected)
        self.telemetry.dead_lettered(stage.info, len(rejected))

    @staticmethod
    def _publishes_as_it_goes(stage: _Stage) -> bool:
        """A sink that publishes before the end of a run (segments, a commit per batch):
        a stopped run publishes what it drained into it."""
        sink: Sink[Any] = stage.component
        return sink.context.acknowledged or sink.publish_due() is not None

    async def _close_all(self, *, success: bool) -> None:
        """Sinks publish first (the trail made durable before), then their input is released,
        then sources commit. A failed run publishes nothing more. An interrupted one publishes
        in the sinks that publish as they go, never in one that publishes once at the end (a
        partial output never replaces a complete one), and then its sources do not commit."""
        sinks = [s for s in self._stages.values() if s.node.role is Role.SINK]
        sources = [s for s in self._stages.values() if s.node.role is Role.SOURCE]
        drained = self._cut_short and not self._errors  # stopped, everything in flight written
        with anyio.move_on_after(CLEANUP_DEADLINE, shield=True):
            try:
                if success or drained:
                    self.observer.flush()
            except Exception as exc:
                success = drained = False
                self._errors.append(RunError("audit trail", str(exc), exc))
            commit = success
            if drained:  # sources commit if every sink could publish what it was given
                commit = all(self._publishes_as_it_goes(stage) for stage in sinks)
                if not commit:
                    try:
                        self._keep_checkpoint()
                    except Exception as exc:
                        self._errors.append(RunError("checkpoint", str(exc), exc))
            for stage in sinks:
                held = stage.held
                try:
                    if drained and held is not None and self._publishes_as_it_goes(stage):
                        await held.publish(self.observer)
                    await stage.component.close(success=success)
                    if success and held is not None:
                        held.staged = False
                        await held.publish(self.observer)  # releases what close published
                except Exception as exc:
                    success = drained = commit = False
                    self._errors.append(as_run_error(stage.node.id, exc))
            for stage in sources:
                try:
                    if commit and self.options.partition is None:
                        await stage.component.commit()
                except Exception as exc:
                    commit = False
                    self._errors.append(as_run_error(stage.node.id, exc))
                finally:
                    try:
                        await stage.component.close()
                    except Exception as exc:
                        self._errors.append(as_run_error(stage.node.id, exc))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
