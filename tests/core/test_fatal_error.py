"""A FatalError stops the run whatever the component's `on_error` says: it is never
dead-lettered, skipped or retried."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import anyio
import pytest

from engine.components.base import Sink, SinkConfig, Transform, TransformConfig, TransformResult
from engine.errors import EngineError, FatalError, PermanentError
from engine.pipeline import compile_file, run
from engine.records import Batch
from engine.registry import Registry, default_registry
from engine.runtime.observer import NullObserver, RunSummary


class HaltingSinkConfig(SinkConfig):
    type: Literal["halting"] = "halting"
    fatal: bool = True


class HaltingSink(Sink[HaltingSinkConfig]):
    calls = 0

    async def write(self, batch: Batch) -> None:
        type(self).calls += 1
        if self.config.fatal:
            raise FatalError("compliance halt: the trail refused the batch")
        raise PermanentError("the endpoint refused the batch")


class HaltingTransformConfig(TransformConfig):
    type: Literal["halting"] = "halting"


class HaltingTransform(Transform[HaltingTransformConfig]):
    def process(self, batch: Batch) -> TransformResult:
        raise FatalError("the rules file cannot be read")


def registry() -> Registry:
    reg = default_registry().fork()
    reg.register(HaltingSinkConfig, HaltingSink)
    reg.register(HaltingTransformConfig, HaltingTransform)
    HaltingSink.calls = 0
    return reg


def run_pipeline(tmp_path: Path, body: str) -> RunSummary:
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    path = tmp_path / "p.toml"
    path.write_text(
        '[pipeline]\nname = "fatal"\n[sources.src]\ntype = "file"\npath = "in.jsonl"\n'
        '[dead_letter]\nmax_rejected = "100%"\n' + body
    )
    plan = compile_file(path, registry=registry(), env={})
    return anyio.run(lambda: run(plan, observer=NullObserver()))


def test_fatal_error_is_an_engine_error() -> None:
    assert issubclass(FatalError, EngineError)
    assert not issubclass(FatalError, PermanentError)


@pytest.mark.parametrize("on_error", ["dead_letter", "skip"])
def test_a_sink_raising_fatal_error_fails_the_run_whatever_on_error(
    tmp_path: Path, on_error: str
) -> None:
    sink = (
        f'[sinks.out]\ntype = "halting"\ninputs = ["src"]\non_error = "{on_error}"\n'
        "retry = { attempts = 3, backoff = 0 }\n"
    )
    summary = run_pipeline(tmp_path, sink)
    assert not summary.ok
    assert summary.error == "out: compliance halt: the trail refused the batch"
    assert summary.dead_letters == 0 and summary.stages["out"].rejected == 0
    assert HaltingSink.calls == 1  # never retried


@pytest.mark.parametrize("on_error", ["dead_letter", "skip"])
def test_a_permanent_error_is_still_routed(tmp_path: Path, on_error: str) -> None:
    sink = (
        f'[sinks.out]\ntype = "halting"\ninputs = ["src"]\non_error = "{on_error}"\nfatal = false\n'
    )
    summary = run_pipeline(tmp_path, sink)
    assert summary.ok, summary.error
    assert summary.stages["out"].rejected == 2


@pytest.mark.parametrize("on_error", ["dead_letter", "skip"])
def test_a_transform_raising_fatal_error_fails_the_run_whatever_on_error(
    tmp_path: Path, on_error: str
) -> None:
    body = (
        f'[transforms.t]\ntype = "halting"\ninputs = ["src"]\non_error = "{on_error}"\n'
        '[sinks.out]\ntype = "stdout"\ninputs = ["t"]\n'
    )
    summary = run_pipeline(tmp_path, body)
    assert not summary.ok
    assert summary.error == "t: the rules file cannot be read"
    assert summary.dead_letters == 0
