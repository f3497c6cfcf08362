"""One run per pipeline per state store: the run lease, alone and between real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.audit import audit
from engine.errors import EngineError
from engine.runtime.lease import LeaseHeldError, RunLease, live_leases
from engine.state import Lease, StateStore
from tests.support.kill import feed_fifo

DEADLINE = 60.0


def poll(condition: Callable[[], bool], what: str) -> None:
    """Wait for ``condition`` with a generous deadline (no timing is asserted)."""
    end = time.monotonic() + DEADLINE
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / ".engine" / "state.db"


def _write(state: Path, lease: Lease) -> None:
    store = StateStore(state)
    try:
        assert store.take_lease(lease)
    finally:
        store.close()


def test_a_second_run_is_refused_naming_the_holder(state: Path) -> None:
    with RunLease(state, "orders", "run-a") as first:
        first.acquire()
        second = RunLease(state, "orders", "run-b")
        with pytest.raises(LeaseHeldError) as info:
            second.acquire()
        message = str(info.value)
        assert "pipeline 'orders' is already running" in message
        assert f"run run-a on host {socket.gethostname()}, pid {os.getpid()}, since " in message
        assert "--wait" in message
        # Another pipeline has its own lease.
        with RunLease(state, "invoices", "run-c") as other:
            other.acquire()
        assert [lease.run_id for lease in live_leases(state)] == ["run-a"]
    # Given back: the next run takes it.
    with RunLease(state, "orders", "run-d") as third:
        third.acquire()
        assert [lease.run_id for lease in live_leases(state)] == ["run-d"]
    assert live_leases(state) == []


def test_a_lease_is_renewed_while_the_run_goes_on(state: Path) -> None:
    with RunLease(state, "orders", "run-a", ttl=0.3) as lease:
        lease.acquire()
        first = live_leases(state)[0].expires
        poll(lambda: live_leases(state)[0].expires > first, "a renewal")
        with pytest.raises(LeaseHeldError):
            RunLease(state, "orders", "run-b").acquire()


def test_an_expired_lease_of_another_host_is_taken_over(state: Path) -> None:
    _write(state, Lease("orders", "run-old", "elsewhere", 4242, "2026-01-01T00:00:00Z", 1.0))
    with RunLease(state, "orders", "run-new") as lease:
        lease.acquire()
        assert [x.run_id for x in live_leases(state)] == ["run-new"]


def test_a_live_lease_of_another_host_binds_until_it_expires(state: Path) -> None:
    far = time.time() + 3600
    _write(state, Lease("orders", "run-other", "elsewhere", 4242, "2026-01-01T00:00:00Z", far))
    with pytest.raises(LeaseHeldError, match="run run-other on host elsewhere, pid 4242"):
        RunLease(state, "orders", "run-new").acquire(wait=0.2)


def test_a_dead_holder_on_this_host_is_seen_at_once(state: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    far = time.time() + 3600
    _write(state, Lease("orders", "run-dead", socket.gethostname(), gone.pid, "x", far))
    with RunLease(state, "orders", "run-new") as lease:
        lease.acquire()
        assert [x.run_id for x in live_leases(state)] == ["run-new"]


def test_an_unusable_state_database_is_an_engine_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EngineError, match="cannot take the run lease"):
        RunLease(blocker / "state.db", "orders", "run-a").acquire()


# --- two real `engine run` processes ------------------------------------------------

PIPELINE = """
[pipeline]
name = "fifo-orders"

[sources.orders]
type = "file"
path = "data/orders.csv"
codec = "csv"

[sinks.out]
type = "file"
inputs = ["orders"]
path = "out/orders.jsonl"
"""


@pytest.fixture
def fifo_pipeline(tmp_path: Path) -> Path:
    """A pipeline whose source is a named pipe: a run holds until the test feeds it."""
    (tmp_path / "data").mkdir()
    os.mkfifo(tmp_path / "data" / "orders.csv")
    path = tmp_path / "pipeline.toml"
    path.write_text(PIPELINE)
    return path


def _engine_run(pipeline: Path, *extra: str, stderr: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENGINE_")}
    env["AUDIT_SECRET_KEY"] = "lease-test"
    with stderr.open("wb") as handle:
        return subprocess.Popen(
            [sys.executable, "-m", "engine", "run", "-q", *extra, str(pipeline)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=handle,
        )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_two_engine_runs_one_waits_and_a_killed_holder_blocks_nobody(
    fifo_pipeline: Path, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    state = tmp_path / ".engine" / "state.db"
    holder = _engine_run(fifo_pipeline, stderr=tmp_path / "holder.err")
    processes.append(holder)
    poll(lambda: bool(live_leases(state)), "the first run to take the lease")
    (lease,) = live_leases(state)
    assert lease.pid == holder.pid

    refused = _engine_run(fifo_pipeline, stderr=tmp_path / "refused.err")
    processes.append(refused)
    assert refused.wait(timeout=DEADLINE) == 1
    message = " ".join((tmp_path / "refused.err").read_text().split())
    assert "pipeline 'fifo-orders' is already running" in message
    assert f"run {lease.run_id} on host {lease.host}, pid {holder.pid}, since" in message

    gave_up = _engine_run(fifo_pipeline, "--wait-timeout", "0.5", stderr=tmp_path / "gave_up.err")
    processes.append(gave_up)
    assert gave_up.wait(timeout=DEADLINE) == 1
    assert "(waited 0.5s)" in (tmp_path / "gave_up.err").read_text()

    waiter = _engine_run(fifo_pipeline, "--wait", stderr=tmp_path / "waiter.err")
    processes.append(waiter)
    poll(
        lambda: "waiting for run" in (tmp_path / "waiter.err").read_text(),
        "the waiting run to say so",
    )
    assert waiter.poll() is None
    # The trail knows the holder is running, not abandoned: it holds the lease.
    assert f"running: fifo-orders run {lease.run_id}" in _verify(tmp_path / ".engine")
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    # The killed holder's pid is gone: the waiting run takes over and runs.
    poll(lambda: [x.pid for x in live_leases(state)] == [waiter.pid], "the takeover")
    feed_fifo(fifo_pipeline.parent / "data" / "orders.csv", b"id,total\n1,9.5\n2,3\n")
    assert waiter.wait(timeout=DEADLINE) == 0, (tmp_path / "waiter.err").read_text()
    lines = (tmp_path / "out" / "orders.jsonl").read_text().splitlines()
    assert lines == ['{"id":"1","total":"9.5"}', '{"id":"2","total":"3"}']
    assert live_leases(state) == []  # given back at the end
    report = _verify(tmp_path / ".engine")
    assert "abandoned: 1 run(s) started and never finished" in report
    assert f"fifo-orders run {lease.run_id} started" in report and "running:" not in report


def _verify(workspace: Path) -> str:
    result = CliRunner(env={"AUDIT_SECRET_KEY": "lease-test", "COLUMNS": "200"}).invoke(
        audit, ["verify", "--workspace", str(workspace)]
    )
    assert result.exit_code == 0, result.output
    return result.output
