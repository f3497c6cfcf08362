"""`engine run --distributed` and `engine worker`: partitions through the machine's RabbitMQ,
state in PostgreSQL, a worker SIGKILLed in the middle of a partition."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.support.audit import store_sql
from tests.support.data import AMQP_URL, POSTGRES_URL, require_service, sql

pytestmark = pytest.mark.services

DEADLINE = 300.0


def wait_for(probe: Callable[[], Any], what: str) -> Any:
    """Poll ``probe`` until it gives something other than None (or False); that value."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        value = probe()
        if value is not None and value is not False:
            return value
        time.sleep(0.05)
    raise AssertionError(f"waited {DEADLINE:g}s for {what}")


ROWS, PARTS = 4500, 9

PIPELINE = """
[pipeline]
name = "{name}"

[state]
store = "{url}"
schema = "{schema}"

[sources.src]
type = "sql"
url = "{url}"
table = "{source}"
cursor = "id"
cursor_snapshot = false
partition_ranges = {parts}

[transforms.shape]
type = "map"
inputs = ["src"]
[transforms.shape.fields]
id = "id"
label = "join('-', [name, 'copied'])"

[sinks.dst]
type = "sql"
inputs = ["shape"]
url = "{url}"
table = "{sink}"
mode = "upsert"
key = ["id"]
"""


class Names:
    def __init__(self) -> None:
        uid = uuid.uuid4().hex[:10]
        self.name = f"dist-{uid}"
        self.queue = f"engine-test-{uid}"
        self.schema = f"dstate_{uid}"
        self.source = f"dsrc_{uid}"
        self.sink = f"ddst_{uid}"


@pytest.fixture
def names() -> Iterator[Names]:
    require_service("postgres", POSTGRES_URL)
    require_service("rabbitmq", AMQP_URL)
    n = Names()
    sql(
        POSTGRES_URL,
        f"CREATE TABLE {n.source} (id integer PRIMARY KEY, name text NOT NULL)",
        f"INSERT INTO {n.source} SELECT g, 'item' || g FROM generate_series(1, {ROWS}) g",
        f"CREATE TABLE {n.sink} (id integer PRIMARY KEY, label text NOT NULL)",
    )
    try:
        yield n
    finally:
        sql(
            POSTGRES_URL,
            f"DROP TABLE IF EXISTS {n.source}",
            f"DROP TABLE IF EXISTS {n.sink}",
            f"DROP SCHEMA IF EXISTS {n.schema} CASCADE",
        )
        _delete_queues(n.queue)


def _channel() -> Any:
    import pika

    connection = pika.BlockingConnection(
        pika.URLParameters(AMQP_URL + "?connection_attempts=3")
        if "?" not in AMQP_URL
        else pika.URLParameters(AMQP_URL)
    )
    return connection, connection.channel()


def _queue_depths(queue: str) -> dict[str, int]:
    connection, channel = _channel()
    try:
        depths = {}
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            ok = channel.queue_declare(queue=name, passive=True)
            depths[name] = ok.method.message_count
        return depths
    finally:
        connection.close()


def _delete_queues(queue: str) -> None:
    import pika.exceptions

    try:
        connection, channel = _channel()
    except pika.exceptions.AMQPError:
        return
    try:
        for name in (queue, f"{queue}.DQ", f"{queue}.XQ"):
            try:
                channel.queue_delete(queue=name)
            except pika.exceptions.ChannelClosedByBroker:
                channel = connection.channel()
    finally:
        connection.close()


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "ENGINE_HOME": str(home), "ENGINE_BROKER_URL": AMQP_URL}


def _partitions(n: Names) -> list[tuple[Any, ...]]:
    try:
        return sql(
            POSTGRES_URL,
            f"SELECT idx, state, attempts, worker, redelivered FROM {n.schema}.engine_partitions "
            "ORDER BY idx",
        )
    except Exception:  # not created yet
        return []


def test_a_worker_killed_mid_partition_loses_and_duplicates_nothing(
    tmp_path: Path, names: Names
) -> None:
    home = tmp_path / "home"
    pipeline = tmp_path / "dist.toml"
    pipeline.write_text(
        PIPELINE.format(
            name=names.name,
            url=POSTGRES_URL,
            schema=names.schema,
            source=names.source,
            sink=names.sink,
            parts=PARTS,
        )
    )
    logs = [(tmp_path / f"worker-{i}.log").open("wb") for i in range(3)]
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "engine", "worker", "--queue", names.queue],
            env=_env(home),
            stdout=log,
            stderr=log,
        )
        for log in logs
    ]
    # the sink's table is locked: every partition taken stays in flight until the gate opens
    gate = psycopg.connect(POSTGRES_URL, application_name=f"{names.queue}-gate")
    gate.execute(f"LOCK TABLE {names.sink} IN EXCLUSIVE MODE")
    try:
        sent = subprocess.run(
            [
                *(sys.executable, "-m", "engine", "run", "--distributed", "--detach"),
                *("--queue", names.queue, str(pipeline)),
            ],
            env=_env(home),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert sent.returncode == 0, sent.stderr
        run_id = sent.stdout.strip().splitlines()[-1]

        # SIGKILL a worker once it has started a partition
        pids = {p.pid: p for p in workers}

        def running() -> tuple[int, int] | None:
            for idx, state, _, worker, _ in _partitions(names):
                pid = int(str(worker).rsplit(":", 1)[-1]) if worker else None
                if state == "running" and pid in pids:
                    return pid, idx
            return None

        victim, victim_partition = wait_for(running, "a worker to start a partition")
        victim_rows = {victim_partition}
        pids[victim].send_signal(signal.SIGKILL)
        pids[victim].wait(timeout=60)
        gate.commit()
        gate.close()

        def ended() -> str | None:
            rows = sql(
                POSTGRES_URL,
                f"SELECT outcome FROM {names.schema}.engine_runs WHERE run_id = :r",
                params={"r": run_id},
            )
            outcome = rows[0][0] if rows else None
            return outcome if outcome not in (None, "running", "finishing") else None

        assert wait_for(ended, "the distributed run to end") == "success"
        wait_for(
            lambda: not any(_queue_depths(names.queue).values()) or None, "the queues to empty"
        )
    finally:
        gate.close()
        for p in workers:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in workers:
            try:
                p.wait(timeout=120)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()

    # exactly the source's rows, each once
    count, distinct = sql(POSTGRES_URL, f"SELECT count(*), count(DISTINCT id) FROM {names.sink}")[0]
    assert (count, distinct) == (ROWS, ROWS)
    rows = _partitions(names)
    assert len(rows) == PARTS and all(state == "done" for _, state, *_ in rows)
    # the killed partition was given to another worker
    redone = [r for r in rows if r[0] in victim_rows]
    assert redone and all(
        r[2] >= 2 and r[4] and not str(r[3]).endswith(f":{victim}") for r in redone
    )
    # the cursor was committed once, at the last row
    ((value, version),) = sql(
        POSTGRES_URL,
        f"SELECT value, version FROM {names.schema}.engine_cursors WHERE pipeline = :p",
        params={"p": names.name},
    )
    assert version == 1 and str(ROWS) in value

    verify = subprocess.run(
        [sys.executable, "-m", "engine", "audit", "verify", "--workspace", str(home)],
        env=_env(home),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # batch_written events cover every committed row
    events = [
        json.loads(body)  # type: ignore[arg-type]
        for (body,) in store_sql(
            home, "select body from audit_events where action = 'batch_written'"
        )
    ]
    written = sum(int(e.get("record_count") or 0) for e in events)
    assert written >= ROWS
    started = [
        json.loads(body)  # type: ignore[arg-type]
        for (body,) in store_sql(
            home, "select body from audit_events where action = 'partition_started'"
        )
    ]
    assert any(e["details"].get("redelivered") for e in started)
