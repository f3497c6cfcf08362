"""Library entry points: load and compile a pipeline file, run it, dry-run it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import engine.audit  # noqa: F401  (the audit sink's chain opener; loads no store)
from engine.codecs import codec_for_path
from engine.components.base import ComponentContext, Source
from engine.config.compile import compile_path
from engine.errors import PermanentError
from engine.records import Batch, Chunk
from engine.registry import Registry
from engine.runtime.history import RunRecorder, state_of
from engine.runtime.observer import NullObserver, ObserverGroup, RunObserver, RunSummary
from engine.runtime.plan import Node, Plan
from engine.runtime.runner import Runner, RunOptions, SourceFactory
from engine.settings import EngineSettings
from engine.workspace import workspace_for

__all__ = ["DryRunResult", "SampleSource", "compile_file", "dry_run", "make_observer", "run"]


def compile_file(
    path: str | Path, *, registry: Registry | None = None, env: Mapping[str, str] | None = None
) -> Plan:
    """Parse, interpolate, validate and compile; raises ConfigError with every problem found."""
    return compile_path(path, registry=registry, env=env)


def make_observer(plan: Plan, workspace: Path, env: EngineSettings) -> RunObserver:
    """The audit observer for a run, or a null one when auditing is off (``[audit] enabled``
    or ENGINE_AUDIT)."""
    settings = plan.spec.audit
    if not settings.enabled or not env.engine_audit:
        return NullObserver()
    from engine.audit.observer import create_observer

    return create_observer(settings, workspace, env=env)


async def run(
    plan: Plan,
    *,
    workspace: Path | None = None,
    observer: RunObserver | None = None,
    runner_hook: Any = None,
    settings: EngineSettings | None = None,
    **options: Any,
) -> RunSummary:
    """Run a compiled pipeline to the end and return its summary; its record is kept in the
    pipeline's state store. ``settings`` default to the process environment's."""
    env = settings if settings is not None else EngineSettings.load()
    ws = workspace or workspace_for(plan.spec.file, env)
    obs = observer if observer is not None else make_observer(plan, ws, env)
    store = state_of(plan, ws)
    roles = {cid: node.role.value for cid, node in plan.nodes.items()}
    watchers = ObserverGroup(obs, RunRecorder(store, roles))
    try:
        runner = Runner(
            plan, RunOptions(workspace=ws, observer=watchers, settings=env, state=store, **options)
        )
        if runner_hook is not None:
            runner_hook(runner)
        return await runner.run()
    finally:
        store.close()
        close = getattr(obs, "close", None)
        if close is not None:
            close()


class DryRunResult:
    def __init__(self, summary: RunSummary, captured: dict[str, Batch], dead: list[dict[str, Any]]):
        self.summary = summary
        self.sinks = captured
        self.rejected = dead


class SampleSource(Source[Any]):
    """Feeds a sample file in place of a source, decoded by the source's codec or the extension."""

    def __init__(self, config: Any, context: ComponentContext, sample: Path) -> None:
        super().__init__(config, context)
        self.sample = sample

    def resource(self) -> str | None:
        return str(self.sample)

    async def read(self) -> AsyncIterator[Chunk]:
        codec = getattr(self.config, "codec", None) or codec_for_path(self.sample)
        if codec is None:
            raise PermanentError(f"cannot tell the codec of {self.sample} from its extension")
        with self.sample.open("rb") as stream:
            for chunk in codec.decode(
                stream, source=str(self.sample), batch_size=self.config.batch.size
            ):
                yield chunk


def _sample_factory(sample: Path) -> SourceFactory:
    def factory(node: Node, ctx: ComponentContext) -> Source[Any]:
        return SampleSource(node.config, ctx, sample)

    return factory


async def dry_run(
    plan: Plan,
    *,
    samples: Mapping[str, Path] | None = None,
    limit: int | None = None,
    settings: EngineSettings | None = None,
) -> DryRunResult:
    """Run sources (or samples) through the transforms; no sink is opened, nothing written.
    ``settings`` default to the process environment's."""
    env = settings if settings is not None else EngineSettings.load()
    overrides: dict[str, SourceFactory] = {}
    for key, sample in (samples or {}).items():
        overrides[key] = _sample_factory(sample)
    options = RunOptions(
        workspace=workspace_for(plan.spec.file, env),
        dry_run=True,
        limit=limit,
        observer=NullObserver(),
        source_overrides=overrides,
        settings=env,
    )
    runner = Runner(plan, options)
    summary = await runner.run()
    return DryRunResult(summary, runner.captured, runner.dead_letters.kept)
