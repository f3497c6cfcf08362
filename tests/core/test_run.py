"""The runtime end to end: real files in, real files out, on_error, retries, fan-in/out, stop."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar, Literal

import anyio
import pytest

from engine.components.base import Sink, SinkConfig, Source, SourceConfig
from engine.errors import PartialWriteError, PermanentError, TransientError
from engine.pipeline import compile_file, dry_run, run
from engine.records import Batch, Chunk, Rejected
from engine.registry import Registry, default_registry
from engine.runtime.observer import NullObserver
from engine.runtime.runner import Runner

CSV = (
    "sku,name,quantity,previous_quantity,price,category\n"
    'A1,"Bolt, ""hex""",10,4,2.50,Hardware\n'
    "A2,Hose,0,3,10,\n"
    "A3,Knife,7,7,12.00,Kitchen\n"
)

PIPELINE = """\
[pipeline]
name = "inv"

[sources.warehouse]
type = "file"
path = "in.csv"
codec = "csv"
{source_extra}

[transforms.to_product]
type = "map"
inputs = ["warehouse"]
[transforms.to_product.fields]
product_id = "join('', ['PROD_', sku])"
name = "name"
quantity = {{ expr = "to_number(quantity)", required = true }}
delta = "subtract(to_number(quantity), to_number(previous_quantity))"
product_type = {{ expr = "category", default = "General" }}

[transforms.in_stock]
type = "filter"
inputs = ["to_product"]
condition = "quantity > `0`"

[sinks.out]
type = "file"
inputs = ["in_stock"]
path = "out/products.jsonl"
"""


def setup(tmp_path: Path, csv: str = CSV, source_extra: str = "") -> Path:
    (tmp_path / "in.csv").write_text(csv)
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(source_extra=source_extra))
    return path


def run_file(path: Path, registry: Registry | None = None) -> Any:
    plan = compile_file(path, registry=registry, env={})
    return anyio.run(lambda: run(plan, observer=NullObserver()))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_csv_map_filter_jsonl_record_by_record(tmp_path: Path) -> None:
    summary = run_file(setup(tmp_path))
    assert summary.ok, summary.error
    assert read_jsonl(tmp_path / "out" / "products.jsonl") == [
        {
            "product_id": "PROD_A1",
            "name": 'Bolt, "hex"',
            "quantity": 10,
            "delta": 6,
            "product_type": "Hardware",
        },
        {
            "product_id": "PROD_A3",
            "name": "Knife",
            "quantity": 7,
            "delta": 0,
            "product_type": "Kitchen",
        },
    ]
    stages = summary.stages
    assert (stages["warehouse"].records_out, stages["in_stock"].records_out) == (3, 2)
    assert stages["out"].records_in == 2
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_malformed_row_fails_the_run_naming_file_and_line(tmp_path: Path) -> None:
    path = setup(tmp_path, CSV + "A4,Broken,1\nA5,Late,1,1,1,x\n")
    summary = run_file(path)
    assert not summary.ok
    assert summary.error is not None
    assert "warehouse" in summary.error and "in.csv:5" in summary.error
    # nothing half-written under the final name
    assert not (tmp_path / "out" / "products.jsonl").exists()
    assert list((tmp_path / "out").iterdir()) == []


def test_dead_letter_keeps_the_run_going(tmp_path: Path) -> None:
    path = setup(tmp_path, CSV + "A4,Broken,1\nA5,Late,1,1,1,x\n", 'on_error = "dead_letter"')
    summary = run_file(path)
    assert summary.ok, summary.error
    assert summary.dead_letters == 1
    out = read_jsonl(tmp_path / "out" / "products.jsonl")
    assert [r["product_id"] for r in out] == ["PROD_A1", "PROD_A3", "PROD_A5"]
    [dead_file] = list((tmp_path / ".engine-home" / "dead_letter" / "inv").glob("*.jsonl"))
    [entry] = read_jsonl(dead_file)
    assert entry["component"] == "warehouse" and entry["stage"] == "source"
    assert entry["location"].endswith("in.csv:5")
    assert entry["time"] and entry["reason"]


def test_required_field_null_is_rejected_per_on_error(tmp_path: Path) -> None:
    csv = CSV + "A6,Nothing,many,1,1,x\n"
    path = setup(tmp_path, csv)
    text = path.read_text().replace(
        'inputs = ["warehouse"]\n', 'inputs = ["warehouse"]\non_error = "skip"\n', 1
    )
    path.write_text(text)
    summary = run_file(path)
    assert summary.ok
    assert summary.stages["to_product"].rejected == 1
    assert summary.stages["to_product"].records_out == 3


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    path = setup(tmp_path)
    plan = compile_file(path, env={})
    result = anyio.run(lambda: dry_run(plan, limit=2))
    assert [r["product_id"] for r in result.sinks["out"]] == ["PROD_A1"]
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / ".engine-home").exists()


def test_dry_run_with_a_sample(tmp_path: Path) -> None:
    path = setup(tmp_path)
    sample = tmp_path / "sample.csv"
    sample.write_text("sku,name,quantity,previous_quantity,price,category\nZ9,Zed,5,1,1,\n")
    plan = compile_file(path, env={})
    result = anyio.run(lambda: dry_run(plan, samples={"*": sample}))
    assert result.sinks["out"] == [
        {
            "product_id": "PROD_Z9",
            "name": "Zed",
            "quantity": 5,
            "delta": 4,
            "product_type": "General",
        }
    ]


# -- components defined by a test, through a forked registry -------------------------


class FlakyConfig(SinkConfig):
    type: Literal["flaky"] = "flaky"
    failures: int = 2
    permanent: bool = False
    refuse_field: str | None = None


class FlakySink(Sink[FlakyConfig]):
    written: list[Batch] = []
    calls = 0

    async def write(self, batch: Batch) -> None:
        type(self).calls += 1
        if self.config.permanent:
            raise PermanentError("the endpoint refused the batch")
        if self.config.refuse_field:
            bad = [r for r in batch if self.config.refuse_field in r]
            type(self).written.append([r for r in batch if r not in bad])
            if bad:
                raise PartialWriteError(
                    "some refused", [Rejected(r, "422 unprocessable") for r in bad]
                )
            return
        if type(self).calls <= self.config.failures:
            raise TransientError("503 from the endpoint", retry_after=0)
        type(self).written.append(batch)


class EndlessConfig(SourceConfig):
    type: Literal["endless"] = "endless"


class EndlessSource(Source[EndlessConfig]):
    commits = 0

    async def commit(self) -> None:
        type(self).commits += 1

    async def read(self) -> AsyncIterator[Chunk]:
        n = 0
        while True:
            yield Chunk([{"n": n}])
            n += 1
            await anyio.sleep(0.001)


def registry() -> Registry:
    reg = default_registry().fork()
    reg.register(FlakyConfig, FlakySink)
    reg.register(EndlessConfig, EndlessSource)
    FlakySink.written = []
    FlakySink.calls = 0
    return reg


def flaky_pipeline(tmp_path: Path, sink: str) -> Path:
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n{"a": 2}\n')
    path = tmp_path / "f.toml"
    path.write_text(
        '[pipeline]\nname = "f"\n[sources.src]\ntype = "file"\npath = "in.jsonl"\n'
        f'[sinks.out]\ntype = "flaky"\ninputs = ["src"]\n{sink}\n'
    )
    return path


def test_transient_sink_errors_are_retried(tmp_path: Path) -> None:
    path = flaky_pipeline(tmp_path, "retry = { attempts = 4, backoff = 0 }")
    summary = run_file(path, registry())
    assert summary.ok, summary.error
    assert summary.stages["out"].retries == 2
    assert FlakySink.written == [[{"a": 1}, {"a": 2}]]


def test_retries_run_out(tmp_path: Path) -> None:
    path = flaky_pipeline(tmp_path, "failures = 5\nretry = { attempts = 2, backoff = 0 }")
    summary = run_file(path, registry())
    assert not summary.ok
    assert summary.error == "out: 503 from the endpoint"


def test_permanent_sink_error_goes_to_dead_letter(tmp_path: Path) -> None:
    allowed = '\n[dead_letter]\nmax_rejected = "100%"'
    path = flaky_pipeline(tmp_path, f'permanent = true\non_error = "dead_letter"{allowed}')
    summary = run_file(path, registry())
    assert summary.ok
    assert summary.dead_letters == 2
    assert FlakySink.calls == 1  # permanent: not retried


def test_a_run_that_dead_letters_every_record_fails_by_default(tmp_path: Path) -> None:
    path = flaky_pipeline(tmp_path, 'permanent = true\non_error = "dead_letter"')
    summary = run_file(path, registry())
    assert not summary.ok
    assert summary.error is not None and "all 2 records read were rejected" in summary.error
    assert summary.dead_letters == 2
    assert summary.dead_letter_path is not None
    lines = Path(summary.dead_letter_path).read_text().splitlines()
    assert [json.loads(line)["location"] for line in lines] == [
        "in.jsonl record 1",
        "in.jsonl record 2",
    ]


def test_fan_in_and_fan_out(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_text('{"k": "a", "v": 1}\n')
    (tmp_path / "b.jsonl").write_text('{"k": "b", "v": 2}\n{"k": "b", "v": 3}\n')
    path = tmp_path / "fan.toml"
    path.write_text(
        '[pipeline]\nname = "fan"\n'
        '[sources.a]\ntype = "file"\npath = "a.jsonl"\n'
        '[sources.b]\ntype = "file"\npath = "b.jsonl"\n'
        '[transforms.r]\ntype = "route"\ninputs = ["a", "b"]\nroutes = { big = "v > `1`" }\n'
        '[sinks.big]\ntype = "file"\ninputs = ["r.big"]\npath = "big.jsonl"\n'
        '[sinks.small]\ntype = "file"\ninputs = ["r._unmatched"]\npath = "small.jsonl"\n'
        '[sinks.all]\ntype = "file"\ninputs = ["a", "b"]\npath = "parts/{k}.jsonl"\n'
    )
    summary = run_file(path)
    assert summary.ok, summary.error
    assert sorted(r["v"] for r in read_jsonl(tmp_path / "big.jsonl")) == [2, 3]
    assert read_jsonl(tmp_path / "small.jsonl") == [{"k": "a", "v": 1}]
    assert read_jsonl(tmp_path / "parts" / "a.jsonl") == [{"k": "a", "v": 1}]
    assert len(read_jsonl(tmp_path / "parts" / "b.jsonl")) == 2


def stop_after(plan: Any, seconds: float) -> tuple[Any, Runner]:
    box: list[Runner] = []

    async def main() -> Any:
        async with anyio.create_task_group() as tg:

            async def stop_soon() -> None:
                await anyio.sleep(seconds)
                box[0].stop()

            tg.start_soon(stop_soon)
            return await run(plan, observer=NullObserver(), runner_hook=box.append)

    return anyio.run(main), box[0]


def test_interrupted_run_is_interrupted_and_keeps_the_previous_output(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        '[pipeline]\nname = "s"\n[sources.src]\ntype = "endless"\n'
        '[sinks.out]\ntype = "file"\ninputs = ["src"]\npath = "out.jsonl"\n'
    )
    (tmp_path / "out.jsonl").write_text('{"complete": true}\n')
    summary, runner = stop_after(compile_file(path, registry=registry(), env={}), 0.2)
    assert runner.interrupted and summary.interrupted
    assert not summary.ok and summary.outcome == "interrupted" and summary.error is None
    assert summary.stages["out"].records_out == summary.stages["src"].records_out > 0
    assert (tmp_path / "out.jsonl").read_text() == '{"complete": true}\n'
    # no temp file (the workspace, .engine-home, holds the run's record)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".engine-home", "out.jsonl", "s.toml"]


@pytest.mark.parametrize(
    ("sink", "commits"),
    [('type = "flaky"\nfailures = 0', 1), ('type = "file"\npath = "out.jsonl"', 0)],
)
def test_a_stopped_run_commits_its_sources_only_if_every_sink_published(
    tmp_path: Path, sink: str, commits: int
) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        '[pipeline]\nname = "s"\n[sources.src]\ntype = "endless"\n'
        f'[sinks.out]\ninputs = ["src"]\n{sink}\n'
    )
    EndlessSource.commits = 0
    summary, _ = stop_after(compile_file(path, registry=registry(), env={}), 0.2)
    assert summary.outcome == "interrupted"
    # a sink that delivers as it goes has everything read; one publishing at the end has not
    assert EndlessSource.commits == commits


class QueueConfig(SourceConfig):
    type: Literal["queue"] = "queue"


class QueueSource(Source[QueueConfig]):
    """An endless queue: every chunk carries a token to acknowledge, and a window of 3."""

    acknowledges = True
    acked: ClassVar[list[int]] = []
    window = 3

    def __init__(self, config: QueueConfig, context: Any) -> None:
        super().__init__(config, context)
        self.unacked: set[int] = set()

    async def read(self) -> AsyncIterator[Chunk]:
        n = 0
        while True:
            while self.awaits_ack():
                await anyio.sleep(0.001)
            self.unacked.add(n)
            yield Chunk([{"n": n}], token=n)
            n += 1

    def awaits_ack(self) -> bool:
        return len(self.unacked) >= self.window

    async def ack(self, token: object) -> None:
        assert isinstance(token, int)
        self.unacked.discard(token)
        QueueSource.acked.append(token)


def test_acknowledging_source_gets_rolling_segments_and_acks_only_published(
    tmp_path: Path,
) -> None:
    reg = registry()
    reg.register(QueueConfig, QueueSource)
    QueueSource.acked = []
    path = tmp_path / "q.toml"
    path.write_text(
        '[pipeline]\nname = "q"\n[sources.src]\ntype = "queue"\n'
        '[sinks.out]\ntype = "file"\ninputs = ["src"]\npath = "out/q.jsonl"\n'
        "segment = { max_records = 1000, max_age = 60 }\n"
    )
    plan = compile_file(path, registry=reg, env={})
    summary, _ = stop_after(plan, 0.3)
    assert summary.outcome == "interrupted"
    segments = sorted((tmp_path / "out").iterdir())
    assert len(segments) > 2  # published whenever the source's window of 3 was full
    assert all(re.fullmatch(rf"q-{summary.run_id}-\d{{6}}\.jsonl", p.name) for p in segments)
    published = [r["n"] for p in segments for r in read_jsonl(p)]
    # drained on stop: every record read was published, and acked only once published
    assert published == list(range(summary.stages["src"].records_out))
    assert sorted(QueueSource.acked) == published


def test_source_error_fails_with_component_name(tmp_path: Path) -> None:
    path = setup(tmp_path)
    (tmp_path / "in.csv").unlink()
    summary = run_file(path)
    assert not summary.ok
    assert summary.error is not None and summary.error.startswith("warehouse: ")


@pytest.mark.parametrize("fmt", ["toml", "yaml"])
def test_yaml_and_toml_run_the_same(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n')
    if fmt == "yaml":
        text = (
            "pipeline: {name: y}\nsources:\n  src: {type: file, path: in.jsonl}\n"
            "sinks:\n  out: {type: file, inputs: [src], path: out.json}\n"
        )
    else:
        text = (
            '[pipeline]\nname = "y"\n[sources.src]\ntype = "file"\npath = "in.jsonl"\n'
            '[sinks.out]\ntype = "file"\ninputs = ["src"]\npath = "out.json"\n'
        )
    path = tmp_path / f"p.{fmt}"
    path.write_text(text)
    assert run_file(path).ok
    assert json.loads((tmp_path / "out.json").read_text()) == [{"a": 1}]


class AckingConfig(SourceConfig):
    type: Literal["acking"] = "acking"
    chunks: int = 3


class AckingSource(Source[AckingConfig]):
    acked: list[object] = []
    nacked: list[tuple[object, bool]] = []
    written_when_acked: list[int] = []
    watch: Path | None = None  # a sink's output, to see whether it was published at the ack
    published_when_acked: list[bool] = []

    async def read(self) -> AsyncIterator[Chunk]:
        for i in range(self.config.chunks):
            yield Chunk([{"i": i, "even": i % 2 == 0}], token=f"t{i}")

    async def ack(self, token: object) -> None:
        type(self).acked.append(token)
        type(self).written_when_acked.append(len(FlakySink.written))
        watch = type(self).watch
        type(self).published_when_acked.append(watch is not None and watch.exists())

    async def nack(self, token: object, *, permanent: bool) -> None:
        type(self).nacked.append((token, permanent))


def test_ack_only_after_every_sink_downstream_delivered(tmp_path: Path) -> None:
    reg = registry()
    reg.register(AckingConfig, AckingSource)
    AckingSource.acked, AckingSource.written_when_acked = [], []
    AckingSource.watch, AckingSource.published_when_acked = tmp_path / "e.jsonl", []
    path = tmp_path / "a.toml"
    path.write_text(
        '[pipeline]\nname = "a"\n[sources.q]\ntype = "acking"\n'
        '[transforms.even]\ntype = "filter"\ninputs = ["q"]\ncondition = "even"\n'
        '[sinks.all]\ntype = "flaky"\nfailures = 0\ninputs = ["q"]\n'
        '[sinks.evens]\ntype = "file"\ninputs = ["even"]\npath = "e.jsonl"\n'
    )
    summary = run_file(path, reg)
    assert summary.ok, summary.error
    # t1 went to the flaky sink only (durable on write); t0 and t2 also to the file sink,
    # which publishes once, at the end of this run: they are released only then
    assert AckingSource.acked == ["t1", "t0", "t2"]
    assert AckingSource.written_when_acked == [2, 3, 3]
    assert AckingSource.published_when_acked == [False, True, True]


def test_no_ack_when_the_sink_fails(tmp_path: Path) -> None:
    reg = registry()
    reg.register(AckingConfig, AckingSource)
    AckingSource.acked, AckingSource.nacked = [], []
    path = tmp_path / "a.toml"
    path.write_text(
        '[pipeline]\nname = "a"\n[sources.q]\ntype = "acking"\n'
        '[sinks.all]\ntype = "flaky"\npermanent = true\ninputs = ["q"]\n'
    )
    summary = run_file(path, reg)
    assert not summary.ok
    assert AckingSource.acked == []
    assert AckingSource.nacked == [("t0", True)]


def test_partial_write_rejects_only_the_refused_records(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"a": 1}\n{"a": 2, "bad": true}\n{"a": 3}\n')
    path = tmp_path / "f.toml"
    path.write_text(
        '[pipeline]\nname = "f"\n[sources.src]\ntype = "file"\npath = "in.jsonl"\n'
        '[sinks.out]\ntype = "flaky"\ninputs = ["src"]\nrefuse_field = "bad"\n'
        'on_error = "dead_letter"\n'
    )
    summary = run_file(path, registry())
    assert summary.ok, summary.error
    assert (summary.stages["out"].records_out, summary.stages["out"].rejected) == (2, 1)
    assert summary.dead_letters == 1
    assert FlakySink.written == [[{"a": 1}, {"a": 3}]]


def test_records_without_a_value_for_a_path_field_are_counted_at_run_end(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A misspelt `{field}` sends every record to `_`: the run says how many, once."""
    path = setup(tmp_path)
    path.write_text(path.read_text().replace("out/products.jsonl", "out/{categry}.jsonl"))
    with caplog.at_level("WARNING", logger="engine"):
        summary = run_file(path)
    assert summary.ok
    assert len(read_jsonl(tmp_path / "out" / "_.jsonl")) == 2  # the two in stock
    warnings = [r.getMessage() for r in caplog.records if "path field" in r.getMessage()]
    assert warnings == [
        "sink out: 2 record(s) had no value for path field {categry} and went to '_' in "
        "out/{categry}.jsonl"
    ]
