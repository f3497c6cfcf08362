"""The state store shared in PostgreSQL: compare-and-set between stores, schedule claims
between processes, and one run per pipeline across machines (another ENGINE_HOME each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from engine.runtime.lease import live_leases
from engine.state import CursorConflictError, StateStore
from tests.support.data import POSTGRES_URL, require_service
from tests.support.kill import feed_fifo, finish, start, wait_for

SYNC_URL = POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://", 1)


@pytest.fixture
def schema() -> Iterator[str]:
    """A schema of its own for the test's state tables, dropped after."""
    require_service("postgres", POSTGRES_URL)
    name = f"state_{uuid.uuid4().hex[:10]}"
    yield name
    engine = create_engine(SYNC_URL)
    try:
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    finally:
        engine.dispose()


def test_a_lost_compare_and_set_between_two_stores(schema: str) -> None:
    one, two = (StateStore(POSTGRES_URL, schema=schema) for _ in range(2))
    try:
        one.get("p", "src", "cursor")
        two.get("p", "src", "cursor")
        one.set("p", "src", "cursor", {"value": 1})
        with pytest.raises(CursorConflictError) as caught:
            two.set("p", "src", "cursor", {"value": 2})
        message = str(caught.value)
        assert f"(schema {schema})" in message and "read at version 0, now version 1" in message
        assert one.read("p", "src", "cursor").value == {"value": 1}  # type: ignore[union-attr]
    finally:
        one.close()
        two.close()


CLAIMER = """
import json, sys
from datetime import UTC, datetime, timedelta
from engine.state import StateStore
store = StateStore(sys.argv[1], schema=sys.argv[2])
sys.stdin.readline()  # both processes start claiming together
base = datetime(2026, 3, 1, tzinfo=UTC)
fires = [base + timedelta(seconds=2 * i) for i in range(40)]
won = [i for i, fire in enumerate(fires) if store.claim_fire("sched", fire, sys.argv[3])]
store.close()
print(json.dumps(won))
"""


def test_two_processes_claim_each_fire_time_exactly_once(schema: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CLAIMER, POSTGRES_URL, schema, holder],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        for holder in ("a", "b")
    ]
    results = [proc.communicate(b"go\n", timeout=120)[0] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0]
    won_a, won_b = (set(json.loads(out)) for out in results)
    assert not won_a & won_b and won_a | won_b == set(range(40))
    store = StateStore(POSTGRES_URL, schema=schema, read_only=True)
    claims = store.fire_claims("sched")
    store.close()
    assert len(claims) == 40
    assert sorted(claims.values()).count("a") == len(won_a)


PIPELINE = """
[pipeline]
name = "shared-orders"

[state]
store = "{url}"
schema = "{schema}"

[sources.orders]
type = "file"
path = "orders.csv"
codec = "csv"

[sinks.out]
type = "file"
inputs = ["orders"]
path = "out.jsonl"
"""


def _machine(tmp_path: Path, name: str, schema: str) -> Path:
    """A folder as another machine would have it: the pipeline file, its input, and its own
    ENGINE_HOME; only the state store is shared."""
    folder = tmp_path / name
    folder.mkdir()
    os.mkfifo(folder / "orders.csv")  # a run holds until the test feeds it
    path = folder / "p.toml"
    path.write_text(PIPELINE.format(url=POSTGRES_URL, schema=schema))
    return path


def test_a_second_run_on_another_machine_sharing_the_store_is_refused(
    schema: str, tmp_path: Path
) -> None:
    first, second = _machine(tmp_path, "a", schema), _machine(tmp_path, "b", schema)
    store = StateStore(POSTGRES_URL, schema=schema, read_only=True)
    holder = start(first, tmp_path / "home-a", "--no-audit")
    try:
        assert wait_for(lambda: bool(live_leases(store)), holder)
        (lease,) = live_leases(store)
        assert lease.pid == holder.pid and lease.pipeline == "shared-orders"

        code, _ = finish(start(second, tmp_path / "home-b", "--no-audit"))
        message = " ".join((second.parent / "p.log").read_text().split())
        assert code == 1
        assert "pipeline 'shared-orders' is already running" in message
        assert f"run {lease.run_id} on host {lease.host}, pid {holder.pid}" in message
        assert f"(schema {schema})" in message and "postgres@" in message
        assert not (tmp_path / "b" / "out.jsonl").exists()

        feed_fifo(first.parent / "orders.csv", b"id,item\n1,a\n2,b\n")
        code, summary = finish(holder)
        assert code == 0 and summary is not None and summary["run_id"] == lease.run_id
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    (record,) = store.runs("shared-orders")
    assert (record.run_id, record.outcome, record.records_out) == (lease.run_id, "success", 2)
    assert live_leases(store) == []
    store.close()
