"""`engine test`: a pipeline's own cases: dry runs fed with records in place of sources."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.components.base import ComponentContext, Source
from engine.mapping import Expression, compile_predicate
from engine.model import TestCase, TestExpectation
from engine.pipeline import SampleSource
from engine.records import Chunk, Record, Rejected
from engine.records.digest import ContentDigest
from engine.runtime.observer import BatchAction, NullObserver, StageInfo
from engine.runtime.plan import TESTS, Node, Plan
from engine.runtime.runner import Runner, RunOptions, SourceFactory
from engine.settings import EngineSettings
from engine.workspace import base_dir_of, workspace_for

__all__ = ["CaseResult", "run_case"]


@dataclass
class CaseResult:
    name: str
    failures: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures and self.error is None


class _Collector(NullObserver):
    """Keeps every component's output and rejected count for the expectations."""

    def __init__(self) -> None:
        self.outputs: dict[str, list[Record]] = {}
        self.rejected_counts: dict[str, int] = {}

    def batch(
        self,
        stage: StageInfo,
        action: BatchAction,
        records: Sequence[Record],
        content: ContentDigest | None = None,
    ) -> None:
        self.outputs.setdefault(stage.component, []).extend(records)

    def rejected(self, stage: StageInfo, rejected: Sequence[Rejected], disposition: str) -> None:
        counts = self.rejected_counts
        counts[stage.component] = counts.get(stage.component, 0) + len(rejected)


class _RecordsSource(Source[Any]):
    def __init__(self, config: Any, context: ComponentContext, records: list[Record]) -> None:
        super().__init__(config, context)
        self.records = records

    async def read(self) -> AsyncIterator[Chunk]:
        yield Chunk([dict(r) for r in self.records])


class _NoInput(Source[Any]):
    async def read(self) -> AsyncIterator[Chunk]:
        return
        yield  # pragma: no cover


def _factory(case: TestCase, sid: str, base: Path) -> SourceFactory:
    spec = case.inputs.get(sid)

    def make(node: Node, ctx: ComponentContext) -> Source[Any]:
        if spec is None:
            return _NoInput(node.config, ctx)
        if spec.records is not None:
            return _RecordsSource(node.config, ctx, spec.records)
        assert spec.file is not None
        path = Path(spec.file)
        return SampleSource(node.config, ctx, path if path.is_absolute() else base / path)

    return make


async def run_case(
    plan: Plan, case: TestCase, *, settings: EngineSettings | None = None
) -> CaseResult:
    """Run one ``[[tests]]`` case; ``settings`` default to the process environment's."""
    env = settings if settings is not None else EngineSettings.load()
    base = base_dir_of(plan.spec.file)
    collector = _Collector()
    overrides = {
        node.id: _factory(case, node.id, base)
        for node in plan.nodes.values()
        if node.role.value == "source"
    }
    runner = Runner(
        plan,
        RunOptions(
            workspace=workspace_for(plan.spec.file, env),
            dry_run=True,
            observer=collector,
            source_overrides=overrides,
            settings=env,
        ),
    )
    summary = await runner.run()
    result = CaseResult(case.name, error=summary.error)
    index = plan.spec.tests.index(case) if case in plan.spec.tests else -1
    conditions = plan.expressions_of(TESTS)
    for cid, expect in case.expect.items():
        records = runner.captured.get(cid, collector.outputs.get(cid, []))
        rejected = collector.rejected_counts.get(cid, 0)
        compiled = [
            conditions.get(("tests", index, "expect", cid, "conditions", i), condition)
            for i, condition in enumerate(expect.conditions)
        ]
        result.failures.extend(_check(cid, expect, compiled, records, rejected))
    return result


def _check(
    cid: str,
    expect: TestExpectation,
    conditions: list[Expression],
    records: list[Record],
    rejected: int,
) -> list[str]:
    failures = []
    if expect.records is not None and records != expect.records:
        failures.append(f"{cid}: expected records {expect.records!r}, got {records!r}")
    if expect.count is not None and len(records) != expect.count:
        failures.append(f"{cid}: expected {expect.count} record(s), got {len(records)}")
    for wanted in expect.contains:
        if not any(_matches(wanted, r) for r in records):
            failures.append(f"{cid}: no record contains {wanted!r}")
    for condition in conditions:
        predicate = compile_predicate(condition)
        bad = [r for r in records if not predicate(r)]
        if bad:
            failures.append(
                f"{cid}: {len(bad)} record(s) fail `{condition.source}`, first: {bad[0]!r}"
            )
    if expect.rejected is not None and rejected != expect.rejected:
        failures.append(f"{cid}: expected {expect.rejected} rejected, got {rejected}")
    return failures


def _matches(wanted: Mapping[str, Any], record: Record) -> bool:
    return all(record.get(k) == v for k, v in wanted.items())
