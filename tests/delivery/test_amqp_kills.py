"""amqp -> file: a failing record, `kill -9` of the engine, and a crash of the broker itself.
Nothing is acknowledged before the segment holding it is published: lost = 0."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aio_pika
import anyio
import pytest

from tests.support.data import AMQP_URL, require_service
from tests.support.kill import (
    Counts,
    count,
    finish,
    kill_later,
    run,
    seeded,
    start,
    wait_for,
    written_per_run,
)
from tests.support.rabbit_node import RabbitNode

PIPELINE = """\
[pipeline]
name = "kill-mq"
[sources.mq]
type = "amqp"
url = "{url}"
queue = "{queue}"
idle_timeout = {idle}
prefetch = 300
batch = {{ size = 100, timeout = 0.2 }}
[transforms.check]
type = "map"
inputs = ["mq"]
[transforms.check.fields]
id = {{ expr = "id", required = true }}
[sinks.out]
type = "file"
inputs = ["check"]
path = "out/mq.jsonl"
segment = {{ max_records = 1000 }}
"""


async def _channel_call(url: str, fn: Any) -> Any:
    connection = await aio_pika.connect(url)
    async with connection:
        return await fn(await connection.channel())


def declare(url: str, queue: str) -> None:
    anyio.run(_channel_call, url, lambda ch: ch.declare_queue(queue, durable=True))


def delete(url: str, queue: str) -> None:
    anyio.run(_channel_call, url, lambda ch: ch.queue_delete(queue))


def publish(url: str, queue: str, bodies: list[dict[str, int]]) -> None:
    """Persistent messages, each confirmed by the broker (so a broker crash keeps them)."""

    async def fn(ch: Any) -> None:
        for body in bodies:
            message = aio_pika.Message(
                json.dumps(body).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
            )
            await ch.default_exchange.publish(message, routing_key=queue)

    anyio.run(_channel_call, url, fn)


def drain(url: str, queue: str) -> list[dict[str, int]]:
    async def fn(ch: Any) -> list[dict[str, int]]:
        q = await ch.declare_queue(queue, passive=True)
        got = []
        while (message := await q.get(fail=False, no_ack=True)) is not None:
            got.append(json.loads(message.body))
        return got

    return list(anyio.run(_channel_call, url, fn))


def segments(folder: Path) -> list[Path]:
    return sorted((folder / "out").glob("mq-*.jsonl"))


def published(folder: Path) -> list[int]:
    lines = [line for path in segments(folder) for line in path.read_text().splitlines()]
    return [json.loads(line)["id"] for line in lines]


def untrailed(folder: Path, home: Path) -> int:
    """Records in published segments beyond what their run's `batch_written` events describe."""
    per_run: dict[str, int] = {}
    for path in segments(folder):
        run_id = path.stem.split("-")[1]
        per_run[run_id] = per_run.get(run_id, 0) + len(path.read_text().splitlines())
    written = written_per_run(home, "out")
    return sum(max(n - written.get(run_id, 0), 0) for run_id, n in per_run.items())


def pipeline(folder: Path, url: str, queue: str, idle: float) -> Path:
    path = folder / f"p-{idle}.toml"
    path.write_text(PIPELINE.format(url=url, queue=queue, idle=idle))
    return path


@pytest.fixture
def amqp_url() -> str:
    require_service("rabbitmq", AMQP_URL)
    return AMQP_URL


@pytest.fixture
def rabbit_node(tmp_path: Path) -> Iterator[RabbitNode]:
    """A RabbitMQ node of this test's own, on free ports; stopped by its process group."""
    node = RabbitNode(tmp_path / "rabbit")
    try:
        node.start()
        yield node
    finally:
        node.stop()


@pytest.fixture
def queue(amqp_url: str) -> Iterator[str]:
    name = f"engine-delivery-{uuid.uuid4().hex[:8]}"
    declare(amqp_url, name)
    yield name
    delete(amqp_url, name)


@pytest.mark.services
def test_a_failing_record_leaves_every_unpublished_message_in_the_queue(
    tmp_path: Path, amqp_url: str, queue: str
) -> None:
    bodies = [{"id": i} for i in range(2000)]
    bodies[1499] = {"no_id": 1499}  # message #1500 fails the `required` id
    publish(amqp_url, queue, bodies)
    home = tmp_path / ".engine"
    code, summary = run(pipeline(tmp_path, amqp_url, queue, 1.0), home)
    assert code == 1 and summary is not None and summary["outcome"] == "failure"
    out = published(tmp_path)
    left = drain(amqp_url, queue)
    assert {"no_id": 1499} in left
    lost, duplicated = count(range(2000), [*out, *(b.get("id", b.get("no_id")) for b in left)])
    counts = Counts(2000, len(out), lost, duplicated, untrailed(tmp_path, home))
    print(counts.line("amqp->file, one failing record"))
    assert counts.lost == 0 and counts.duplicated == 0 and counts.untrailed == 0
    assert not list((tmp_path / "out").glob(".*.tmp"))  # the failed segment was discarded


@pytest.mark.slow
@pytest.mark.services
def test_kill_9_of_amqp_to_file_loses_nothing(tmp_path: Path, amqp_url: str, queue: str) -> None:
    rng = seeded()
    sent = 3000
    publish(amqp_url, queue, [{"id": i} for i in range(sent)])
    home = tmp_path / ".engine"
    kills = 0
    for _ in range(4):
        proc = start(pipeline(tmp_path, amqp_url, queue, 1.0), home)
        before = len(segments(tmp_path))
        if wait_for(lambda b=before: len(segments(tmp_path)) > b, proc):
            kills += kill_later(proc, rng, 1.0)
        else:
            finish(proc)
    code, _ = run(pipeline(tmp_path, amqp_url, queue, 1.0), home)
    assert code == 0
    assert drain(amqp_url, queue) == []
    out = published(tmp_path)
    lost, duplicated = count(range(sent), out)
    counts = Counts(sent, len(out), lost, duplicated, untrailed(tmp_path, home), kills)
    # at-least-once: a segment published just before a kill is delivered again
    print(counts.line("amqp->file, kill -9"))
    assert kills > 0
    assert counts.lost == 0 and counts.untrailed == 0
    assert not list((tmp_path / "out").glob(".*.tmp"))  # orphans cleaned by the last run


@pytest.mark.slow
def test_a_broker_crash_mid_run_loses_nothing(tmp_path: Path, rabbit_node: RabbitNode) -> None:
    url, queue, sent = rabbit_node.url, "orders", 2000
    declare(url, queue)
    publish(url, queue, [{"id": i} for i in range(sent)])
    home = tmp_path / ".engine"
    proc = start(pipeline(tmp_path, url, queue, 5.0), home)
    wait_for(lambda: len(segments(tmp_path)) > 0, proc)
    rabbit_node.kill()  # kill -9 of the broker, with messages in flight and unacked
    rabbit_node.start()  # the same node, data folder and port
    finish(proc)  # it reconnects and goes on, or fails: either way nothing acked is lost
    # `-q`: no library traceback, and one warning for the episode rather than one per attempt
    said = (tmp_path / "p-5.0.log").read_text().splitlines()
    assert not [line for line in said if "Traceback" in line or "aio_pika" in line]
    assert len([line for line in said if "reconnecting" in line]) <= 1, said
    code, _ = run(pipeline(tmp_path, url, queue, 2.0), home)
    assert code == 0
    assert drain(url, queue) == []
    out = published(tmp_path)
    lost, duplicated = count(range(sent), out)
    counts = Counts(sent, len(out), lost, duplicated, untrailed(tmp_path, home), kills=1)
    print(counts.line("amqp->file, broker kill -9 and restart"))
    assert counts.lost == 0 and counts.untrailed == 0
