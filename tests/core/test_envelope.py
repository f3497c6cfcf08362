"""The engine-owned envelope: `batch`, `timeout` and `retry` applied by the runtime for every
role, and keys that mean nothing for a role refused at validate time."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import anyio
import pytest

from engine.components.base import (
    Sink,
    SinkConfig,
    Source,
    SourceConfig,
    Transform,
    TransformConfig,
    TransformResult,
)
from engine.components.envelope import BatchPolicy, Role, envelope_keys, foreign_roles
from engine.errors import ConfigError, TransientError
from engine.pipeline import compile_file, run
from engine.records import Batch, Chunk
from engine.registry import Registry, default_registry
from engine.runtime.delivery import Delivery
from engine.runtime.observer import NullObserver
from engine.runtime.rebatch import Message, Rebatcher

# -- kinds that record what the runtime hands them ----------------------------------------


class CountConfig(TransformConfig):
    type: Literal["count"] = "count"
    #: the first `hangs` batches block this long (seconds), the first `flaky` ones raise
    #: a TransientError
    hangs: int = 0
    hang_for: float = 0.0
    flaky: int = 0


class Count(Transform[CountConfig]):
    sizes: ClassVar[list[int]] = []
    calls: ClassVar[int] = 0
    release: ClassVar[threading.Event] = threading.Event()

    def process(self, batch: Batch) -> TransformResult:
        type(self).calls += 1
        if type(self).calls <= self.config.hangs:
            type(self).release.wait(self.config.hang_for)  # a transform stuck in a call
        if type(self).calls <= self.config.flaky:
            raise TransientError("the lookup table is reloading")
        type(self).sizes.append(len(batch))
        return TransformResult({None: batch})


class TallyConfig(SinkConfig):
    type: Literal["tally"] = "tally"


class Tally(Sink[TallyConfig]):
    sizes: ClassVar[list[int]] = []
    timeouts: ClassVar[list[float | None]] = []

    async def write(self, batch: Batch) -> None:
        type(self).sizes.append(len(batch))
        type(self).timeouts.append(self.context.timeout)


class DripConfig(SourceConfig):
    type: Literal["drip"] = "drip"
    records: int = 3
    pause: float = 0.0


class Drip(Source[DripConfig]):
    """One record per chunk, with a pause between chunks."""

    async def read(self) -> AsyncIterator[Chunk]:
        for n in range(self.config.records):
            if n and self.config.pause:
                await anyio.sleep(self.config.pause)
            yield Chunk([{"n": n}])


def registry() -> Registry:
    reg = default_registry().fork()
    reg.register(CountConfig, Count)
    reg.register(TallyConfig, Tally)
    reg.register(DripConfig, Drip)
    Count.sizes, Count.calls, Tally.sizes, Tally.timeouts = [], 0, [], []
    Count.release = threading.Event()
    return reg


def five_records(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text("".join(f'{{"n": {n}}}\n' for n in range(5)))


def pipeline(tmp_path: Path, transform: str = "", sink: str = "", source: str = "") -> Path:
    path = tmp_path / "p.toml"
    path.write_text(
        '[pipeline]\nname = "env"\n'
        f'[sources.src]\ntype = "file"\npath = "in.jsonl"\n{source}\n'
        f'[transforms.count]\ntype = "count"\ninputs = ["src"]\n{transform}\n'
        f'[sinks.out]\ntype = "tally"\ninputs = ["count"]\ntimeout = 7.5\n{sink}\n'
    )
    return path


def run_file(path: Path, reg: Registry) -> Any:
    plan = compile_file(path, registry=reg, env={})
    return anyio.run(lambda: run(plan, observer=NullObserver()))


# -- batch ------------------------------------------------------------------------------


def test_transform_and_sink_see_batches_of_their_size(tmp_path: Path) -> None:
    five_records(tmp_path)
    reg = registry()
    summary = run_file(pipeline(tmp_path, "batch = { size = 2 }", "batch = { size = 2 }"), reg)
    assert summary.ok, summary.error
    assert Count.sizes == [2, 2, 1]  # the source read one chunk of 5
    assert Tally.sizes == [2, 2, 1]
    assert summary.stages["count"].batches == 3
    assert summary.stages["out"].batches == 3


def test_small_batches_are_merged_up_to_the_size(tmp_path: Path) -> None:
    five_records(tmp_path)
    reg = registry()
    summary = run_file(
        pipeline(tmp_path, "", "batch = { size = 4, timeout = 30 }", "batch = { size = 1 }"),
        reg,
    )
    assert summary.ok, summary.error
    assert Count.sizes == [1, 1, 1, 1, 1]  # unset: batches pass as they arrive
    assert Tally.sizes == [4, 1]  # the channel's end flushes the partial batch at once


def test_a_partial_batch_waits_at_most_its_timeout(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[pipeline]\nname = "env"\n'
        '[sources.src]\ntype = "drip"\nrecords = 3\npause = 0.5\n'
        '[sinks.out]\ntype = "tally"\ninputs = ["src"]\nbatch = { size = 100, timeout = 0.05 }\n'
    )
    summary = run_file(path, registry())
    assert summary.ok, summary.error
    assert Tally.sizes == [1, 1, 1]


def test_engine_run_filter_and_file_sink_batches(tmp_path: Path) -> None:
    """The bar of the issue, through a real `engine run`: a filter and a sink with
    `batch = {size = 2}` see batches of 2 from a source that reads one chunk of 5."""
    five_records(tmp_path)
    path = tmp_path / "p.toml"
    path.write_text(
        '[pipeline]\nname = "env"\n'
        '[sources.src]\ntype = "file"\npath = "in.jsonl"\n'
        '[transforms.keep]\ntype = "filter"\ninputs = ["src"]\ncondition = "n >= `0`"\n'
        "batch = { size = 2 }\n"
        '[sinks.out]\ntype = "file"\ninputs = ["keep"]\npath = "out.jsonl"\n'
        "batch = { size = 2 }\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "engine", "run", str(path), "--format", "json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stages = json.loads(done.stdout)["components"]
    assert stages["src"]["batches"] == 1
    assert (stages["keep"]["batches"], stages["keep"]["records_in"]) == (3, 5)
    assert (stages["out"]["batches"], stages["out"]["records_in"]) == (3, 5)
    written = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert written == [{"n": n} for n in range(5)]


# -- timeout and retry ------------------------------------------------------------------


def test_a_transform_raising_a_transient_error_is_retried(tmp_path: Path) -> None:
    five_records(tmp_path)
    summary = run_file(
        pipeline(tmp_path, "flaky = 2\nretry = { attempts = 3, backoff = 0 }"), registry()
    )
    assert summary.ok, summary.error
    assert summary.stages["count"].retries == 2
    assert Tally.sizes == [5]


def test_a_transform_whose_retries_run_out_fails_the_run(tmp_path: Path) -> None:
    five_records(tmp_path)
    summary = run_file(
        pipeline(tmp_path, "flaky = 5\nretry = { attempts = 2, backoff = 0 }"), registry()
    )
    assert not summary.ok
    assert summary.error == "count: the lookup table is reloading"
    assert Tally.sizes == []


def test_a_hanging_transform_times_out_and_is_retried(tmp_path: Path) -> None:
    five_records(tmp_path)
    reg = registry()
    try:
        summary = run_file(
            pipeline(
                tmp_path,
                "hangs = 1\nhang_for = 30\ntimeout = 0.2\nretry = { attempts = 2, backoff = 0 }",
            ),
            reg,
        )
    finally:
        Count.release.set()  # let the abandoned worker thread finish
    assert summary.ok, summary.error
    assert summary.stages["count"].retries == 1
    assert summary.duration_s < 10
    assert Tally.sizes == [5]


def test_a_hanging_transform_without_retries_fails_the_run(tmp_path: Path) -> None:
    five_records(tmp_path)
    reg = registry()
    try:
        summary = run_file(
            pipeline(tmp_path, "hangs = 1\nhang_for = 30\ntimeout = 0.2\nretry = { attempts = 1 }"),
            reg,
        )
    finally:
        Count.release.set()
    assert not summary.ok
    assert summary.error == "count: timed out after 0.2s processing a batch"
    assert summary.duration_s < 10


def test_the_connector_gets_the_timeout_through_the_context(tmp_path: Path) -> None:
    five_records(tmp_path)
    summary = run_file(pipeline(tmp_path), registry())
    assert summary.ok, summary.error
    assert Tally.timeouts == [7.5]


# -- keys per role ----------------------------------------------------------------------


def test_envelope_keys_come_from_the_role_models() -> None:
    assert "inputs" not in envelope_keys(Role.SOURCE)
    assert {"type", "on_error", "retry", "timeout", "batch"} <= envelope_keys(Role.SOURCE)
    assert envelope_keys(Role.TRANSFORM) == envelope_keys(Role.SINK)
    assert envelope_keys(Role.SOURCE) | {"inputs"} == envelope_keys(Role.SINK)
    assert foreign_roles(Role.SOURCE, "inputs") == (Role.TRANSFORM, Role.SINK)
    assert foreign_roles(Role.SINK, "inputs") == ()
    assert foreign_roles(Role.SOURCE, "path") == ()
    for spec in default_registry():
        assert envelope_keys(spec.role) <= set(spec.config.model_fields), spec.type


def test_a_key_that_means_nothing_for_the_role_is_a_located_error(tmp_path: Path) -> None:
    five_records(tmp_path)
    path = pipeline(tmp_path, source='inputs = ["count"]')
    with pytest.raises(ConfigError) as caught:
        compile_file(path, registry=registry(), env={})
    (diag,) = [d for d in caught.value.diagnostics if d.code == "E033"]
    assert diag.file == str(path)
    assert diag.line == 6
    assert diag.message == "'inputs' means nothing for a source (sources.src)"
    assert diag.hint == "only a transform or a sink has it; remove it"


# -- re-batching keeps acknowledgements exact ----------------------------------------------


class AckedConfig(SourceConfig):
    type: Literal["acked"] = "acked"


class Acked(Source[AckedConfig]):
    acks: ClassVar[list[object]] = []

    async def read(self) -> AsyncIterator[Chunk]:
        return
        yield

    async def ack(self, token: object) -> None:
        type(self).acks.append(token)


def test_split_and_merged_chunks_are_acknowledged_once_every_piece_is_through(
    tmp_path: Path,
) -> None:
    from engine.components.base import ComponentContext

    source = Acked(AckedConfig(), ComponentContext("q", "p", base_dir=tmp_path, workspace=tmp_path))
    Acked.acks = []

    async def main() -> list[Message]:
        send, receive = anyio.create_memory_object_stream[Message](10)
        a, b = Delivery(source, "a"), Delivery(source, "b")
        async with send:
            await send.send(([{"n": 0}, {"n": 1}, {"n": 2}], (a,)))
            await send.send(([{"n": 3}], (b,)))
        got = []
        async with Rebatcher(receive, BatchPolicy(size=2, timeout=30)) as inbox:
            async for message in inbox:
                got.append(message)
                for delivery in message[1]:
                    await delivery.release()
                    if len(got) == 1:
                        assert Acked.acks == []  # the rest of chunk "a" is still in flight
        return got

    got = anyio.run(main)
    assert [[r["n"] for r in batch] for batch, _ in got] == [[0, 1], [2, 3]]
    assert [[d.token for d in ds] for _, ds in got] == [["a"], ["a", "b"]]
    assert Acked.acks == ["a", "b"]
