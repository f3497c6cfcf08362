"""The ``amqp`` source and sink against the machine's RabbitMQ."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import anyio
import pytest
from aio_pika.abc import AbstractChannel
from prometheus_client import generate_latest

from engine.components.base import ComponentContext
from engine.components.sinks.amqp import AmqpSink, AmqpSinkConfig
from engine.components.sources.amqp import AmqpSource, AmqpSourceConfig
from engine.errors import PermanentError, TransientError
from engine.pipeline import compile_file, run
from engine.runtime.observer import NullObserver
from engine.telemetry.metrics import EngineMetrics
from tests.support.metrics import sample_value


def context(tmp_path: Path) -> ComponentContext:
    return ComponentContext(
        component_id="mq", pipeline="p", base_dir=tmp_path, workspace=tmp_path, run_id="r1"
    )


def with_channel(url: str, fn: Callable[[AbstractChannel], Awaitable[Any]]) -> Any:
    async def main() -> Any:
        connection = await aio_pika.connect(url)
        async with connection:
            return await fn(await connection.channel())

    return anyio.run(main)


@pytest.fixture
def queue(amqp_url: str) -> Any:
    """A durable queue dead-lettering into its own `<name>.dlq`; both deleted afterwards."""
    name = f"engine-test-{uuid.uuid4().hex[:8]}"

    async def setup(ch: AbstractChannel) -> None:
        dlx = await ch.declare_exchange(f"{name}.dlx", aio_pika.ExchangeType.FANOUT)
        dlq = await ch.declare_queue(f"{name}.dlq", durable=True)
        await dlq.bind(dlx)
        args: dict[str, Any] = {"x-dead-letter-exchange": f"{name}.dlx"}
        await ch.declare_queue(name, durable=True, arguments=args)

    with_channel(amqp_url, setup)
    yield name

    async def teardown(ch: AbstractChannel) -> None:
        await ch.queue_delete(name)
        await ch.queue_delete(f"{name}.dlq")
        await ch.exchange_delete(f"{name}.dlx")

    with_channel(amqp_url, teardown)


def publish(url: str, queue: str, bodies: list[bytes]) -> None:
    async def fn(ch: AbstractChannel) -> None:
        for body in bodies:
            await ch.default_exchange.publish(aio_pika.Message(body), routing_key=queue)

    with_channel(url, fn)


def depth(url: str, queue: str) -> int:
    async def fn(ch: AbstractChannel) -> int:
        declared = await ch.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)

    # the broker counts a requeued message a moment after the nack
    anyio.run(anyio.sleep, 0.2)
    return int(with_channel(url, fn))


def drain(url: str, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    async def fn(ch: AbstractChannel) -> list[Any]:
        q = await ch.declare_queue(queue, passive=True)
        got = []
        while (message := await q.get(fail=False, no_ack=True)) is not None:
            got.append(message)
        return got

    return list(with_channel(url, fn))


PIPELINE = """\
[pipeline]
name = "mq"

[sources.mq]
type = "amqp"
url = "{url}"
queue = "{queue}"
idle_timeout = 0.5
batch = {{ size = 10, timeout = 0.2 }}
{extra}

[transforms.check]
type = "map"
inputs = ["mq"]
[transforms.check.fields]
id = {{ expr = "id", required = true }}

[sinks.out]
type = "file"
inputs = ["check"]
path = "out.jsonl"
"""


def run_pipeline(tmp_path: Path, url: str, queue: str, extra: str = "", **options: Any) -> Any:
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(url=url, queue=queue, extra=extra))
    plan = compile_file(path, env={})
    workspace = tmp_path / "ws"
    return anyio.run(lambda: run(plan, observer=NullObserver(), workspace=workspace, **options))


def published_ids(folder: Path) -> list[int]:
    """The ids in the file sink's rolling segments (`out-<run_id>-<n>.jsonl`), in order."""
    return [
        json.loads(line)["id"]
        for segment in sorted(folder.glob("out-*.jsonl"))
        for line in segment.read_text().splitlines()
    ]


def test_consumes_until_idle_and_acks_everything_delivered(
    amqp_url: str, queue: str, tmp_path: Path
) -> None:
    publish(amqp_url, queue, [json.dumps({"id": i}).encode() for i in range(25)])
    summary = run_pipeline(tmp_path, amqp_url, queue)
    assert summary.ok, summary.error
    assert sorted(published_ids(tmp_path)) == list(range(25))
    assert depth(amqp_url, queue) == 0


def test_queue_depth_is_reported_as_the_source_backlog(
    amqp_url: str, queue: str, tmp_path: Path
) -> None:
    publish(amqp_url, queue, [json.dumps({"id": i}).encode() for i in range(7)])
    metrics = EngineMetrics()
    summary = run_pipeline(tmp_path, amqp_url, queue, telemetry=metrics)
    assert summary.ok, summary.error
    text = generate_latest(metrics.registry).decode()
    mq = {"pipeline": "mq", "component": "mq"}
    # the depth the broker declared when the source opened: all 7 were waiting
    assert sample_value(text, "engine_source_backlog_messages", **mq) == 7
    assert sample_value(text, "engine_records_out_total", role="source", **mq) == 7


def test_failed_run_requeues_undelivered_messages(
    amqp_url: str, queue: str, tmp_path: Path
) -> None:
    bodies = [b'{"id": 1}', b'{"id": 2}', b'{"no_id": 3}']
    publish(amqp_url, queue, bodies)
    summary = run_pipeline(tmp_path, amqp_url, queue)
    assert not summary.ok
    assert depth(amqp_url, queue) == 3
    assert depth(amqp_url, f"{queue}.dlq") == 0


def test_unreadable_body_is_dead_lettered_and_max_messages_stops(
    amqp_url: str, queue: str, tmp_path: Path
) -> None:
    publish(amqp_url, queue, [b"{not json", *[json.dumps({"id": i}).encode() for i in range(6)]])
    summary = run_pipeline(tmp_path, amqp_url, queue, 'on_error = "skip"\nmax_messages = 4')
    assert summary.ok, summary.error
    assert summary.stages["mq"].rejected == 1
    assert published_ids(tmp_path) == [0, 1, 2]
    assert [m.body for m in drain(amqp_url, f"{queue}.dlq")] == [b"{not json"]
    assert depth(amqp_url, queue) == 3


def test_an_unreadable_body_is_named_once_by_queue_and_delivery(
    amqp_url: str, queue: str, tmp_path: Path
) -> None:
    publish(amqp_url, queue, [b"{not json"])
    summary = run_pipeline(tmp_path, amqp_url, queue, 'on_error = "fail"\nmax_messages = 1')
    assert not summary.ok
    assert f"{queue}#1:1:2: malformed JSON" in str(summary.error)
    assert str(summary.error).count(f"{queue}#1") == 1


def test_nack_dead_letters_permanent_and_requeues_transient(
    amqp_url: str, queue: str, tmp_path: Path
) -> None:
    publish(amqp_url, queue, [b'{"id": 1}', b'{"id": 2}'])
    config = AmqpSourceConfig(
        url=amqp_url, queue=queue, idle_timeout=0.3, batch={"size": 1, "timeout": 0.1}
    )
    source = AmqpSource(config, context(tmp_path))

    async def main() -> None:
        await source.open()
        try:
            tokens = [chunk.token async for chunk in source.read()]
            assert len(tokens) == 2
            await source.nack(tokens[0], permanent=True)
            await source.nack(tokens[1], permanent=False)
        finally:
            await source.close()

    anyio.run(main)
    assert [m.body for m in drain(amqp_url, f"{queue}.dlq")] == [b'{"id": 1}']
    assert [m.body for m in drain(amqp_url, queue)] == [b'{"id": 2}']


def test_missing_queue_is_a_permanent_error(amqp_url: str, tmp_path: Path) -> None:
    source = AmqpSource(
        AmqpSourceConfig(url=amqp_url, queue=f"missing-{uuid.uuid4().hex}"), context(tmp_path)
    )
    with pytest.raises(PermanentError, match=r"NOT_FOUND|NotFound"):
        anyio.run(source.open)


def sink_for(url: str, tmp_path: Path, **options: Any) -> AmqpSink:
    return AmqpSink(AmqpSinkConfig(url=url, inputs=["x"], **options), context(tmp_path))


def test_sink_routes_by_template_persistent_and_confirmed(
    amqp_url: str, queue: str, tmp_path: Path
) -> None:
    exchange = f"{queue}.topic"

    async def bind(ch: AbstractChannel) -> None:
        ex = await ch.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC, durable=True)
        q = await ch.get_queue(queue)
        await q.bind(ex, "orders.eu")

    with_channel(amqp_url, bind)
    sink = sink_for(amqp_url, tmp_path, exchange=exchange, routing_key="orders.{region}")
    records = [{"id": i, "region": "eu", "note": "ü'\"<x>"} for i in range(5)]

    async def main() -> None:
        await sink.open()
        try:
            await sink.write(records)
            with pytest.raises(PermanentError, match=r"PublishError|NO_ROUTE"):
                await sink.write([{"id": 9, "region": "us"}])
            with pytest.raises(PermanentError, match="no field 'region'"):
                await sink.write([{"id": 10}])
        finally:
            await sink.close(success=True)

    try:
        anyio.run(main)
        got = drain(amqp_url, queue)
    finally:
        with_channel(amqp_url, lambda ch: ch.exchange_delete(exchange))
    assert [json.loads(m.body) for m in got] == records
    assert all(m.delivery_mode == aio_pika.DeliveryMode.PERSISTENT for m in got)
    assert all(m.content_type == "application/json" for m in got)


def close_named_connections(connection_name: str) -> int:
    """Close, from the broker side, only the connections this test opened under its own name;
    every other client of the shared broker keeps its connection."""
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        pytest.skip("rabbitmqctl not on PATH: cannot close connections from the broker side")
    listed = subprocess.run(
        [ctl, "-q", "list_connections", "--no-table-headers", "pid", "client_properties"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if listed.returncode != 0:
        pytest.skip(f"rabbitmqctl list_connections failed: {listed.stderr[:200]}")
    ours = [
        line.split("\t", 1)[0]
        for line in listed.stdout.splitlines()
        if f'{{"connection_name","{connection_name}"}}' in line
    ]
    for pid in ours:  # the connection's Erlang process id, e.g. <rabbit@host.1.2.0>
        subprocess.run(
            [ctl, "-q", "close_connection", pid, "engine reconnect test"],
            capture_output=True,
            timeout=30,
            check=True,
        )
    return len(ours)


async def retrying(fn: Callable[[], Awaitable[None]]) -> int:
    """What the runtime's retry policy does for a sink: retry transient errors."""
    for attempt in range(40):
        try:
            await fn()
            return attempt
        except TransientError:
            await anyio.sleep(0.25)
    raise AssertionError("never reconnected")


def test_sink_and_source_reconnect_after_the_broker_drops_them(
    amqp_url: str, queue: str, tmp_path: Path
) -> None:
    name = f"engine-reconnect-{uuid.uuid4().hex[:8]}"
    url = f"{amqp_url}?name={name}"
    sink = sink_for(url, tmp_path, routing_key=queue)
    source = AmqpSource(
        AmqpSourceConfig(url=url, queue=queue, idle_timeout=3, batch={"size": 5, "timeout": 0.1}),
        context(tmp_path),
    )
    seen: list[int] = []

    async def main() -> None:
        await sink.open()
        await source.open()
        try:
            await sink.write([{"id": i} for i in range(5)])
            reader = source.read()
            async for chunk in reader:
                seen.extend(r["id"] for r in chunk.records)
                await source.ack(chunk.token)
                if len(seen) >= 5:
                    break
            closed = await anyio.to_thread.run_sync(close_named_connections, name)
            assert closed == 2  # the sink's and the source's, nobody else's
            await retrying(lambda: sink.write([{"id": i} for i in range(5, 10)]))
            async for chunk in source.read():
                seen.extend(r["id"] for r in chunk.records)
                await source.ack(chunk.token)
                if set(seen) >= set(range(10)):
                    break
        finally:
            await source.close()
            await sink.close(success=True)

    anyio.run(main)
    assert set(seen) == set(range(10))
    assert depth(amqp_url, queue) == 0


def test_resource_hides_the_password() -> None:
    cfg = AmqpSinkConfig(url="amqp://app:pw-secret@rabbit/", inputs=["a"], routing_key="k")
    assert "pw-secret" not in (cfg.resource() or "") and "pw-secret" not in repr(cfg)
    assert cfg.resource() == "amqp://app:***@rabbit/(default)"
