"""`engine serve` holds its pipeline's run lease: one run per pipeline per state store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from engine.state import Lease, StateStore
from tests.support.serve_process import DEADLINE, ServeProcess, sql_pipeline, wait_for


def holder(home: Path, pipeline: str = "served") -> Lease | None:
    store = StateStore(home / "state.db")
    try:
        return store.lease(pipeline)
    finally:
        store.close()


def engine_run(pipeline: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", "run", "-q", str(pipeline)],
        env={**os.environ, "ENGINE_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )


def test_a_second_serve_or_run_of_a_served_pipeline_is_refused_naming_the_holder(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    pipeline = sql_pipeline(tmp_path)
    first = ServeProcess(pipeline, home).ready()
    second = ServeProcess(pipeline, home)
    try:
        lease = holder(home)
        assert lease is not None and lease.pid == first.proc.pid
        assert second.wait() == 1
        assert "already running" in second.stderr
        assert f"pid {first.proc.pid}" in second.stderr and lease.run_id in second.stderr
        assert "Traceback" not in second.stderr
        run = engine_run(pipeline, home)
        assert run.returncode == 1, run.stderr
        assert f"pid {first.proc.pid}" in run.stderr
        assert first.proc.poll() is None  # the holder serves on
        assert first.metric("engine_pipeline_up") == 1
    finally:
        first.stop()
        second.stop()


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, 0), (signal.SIGKILL, -signal.SIGKILL)],
    ids=["SIGTERM", "SIGKILL"],
)
def test_the_next_serve_takes_the_lease_after_a_stop_or_a_kill(
    tmp_path: Path, signum: int, code: int
) -> None:
    home = tmp_path / "home"
    pipeline = sql_pipeline(tmp_path)
    first = ServeProcess(pipeline, home).ready()
    try:
        first.signal(signum)
        assert first.wait() == code, first.stderr
    finally:
        first.stop()
    left = holder(home)
    if signum == signal.SIGTERM:
        assert left is None  # given back on a clean stop
    else:
        assert left is not None and left.pid == first.proc.pid  # left behind by the kill
    second = ServeProcess(pipeline, home).ready()  # a killed holder blocks nobody
    try:
        lease = holder(home)
        assert lease is not None and lease.pid == second.proc.pid
    finally:
        second.stop()


def test_other_pipelines_of_the_workspace_serve_side_by_side(tmp_path: Path) -> None:
    home = tmp_path / "home"
    servers: list[ServeProcess] = []
    try:
        for name in ("served-a", "served-b"):
            folder = tmp_path / name
            folder.mkdir()
            servers.append(ServeProcess(sql_pipeline(folder, name=name), home).ready())
        leases = [holder(home, name) for name in ("served-a", "served-b")]
        assert [lease.pid if lease else None for lease in leases] == [
            server.proc.pid for server in servers
        ]
    finally:
        for server in servers:
            server.stop()


def test_wait_serves_once_the_holder_stops_and_a_signal_ends_the_wait(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pipeline = sql_pipeline(tmp_path)
    first = ServeProcess(pipeline, home).ready()
    waiter = ServeProcess(pipeline, home, "--wait")
    quitter = ServeProcess(pipeline, home, "--wait")
    try:
        for server in (waiter, quitter):
            wait_for(lambda s=server: f"pid {first.proc.pid}" in s.stderr, "a waiting server")
            assert "waiting for run" in server.stderr
        quitter.signal(signal.SIGTERM)
        assert quitter.wait() == 0, quitter.stderr
        assert "stopped before the lease was free" in quitter.stderr
        assert waiter.proc.poll() is None
        first.signal(signal.SIGTERM)
        assert first.wait() == 0, first.stderr
        waiter.ready()
        lease = holder(home)
        assert lease is not None and lease.pid == waiter.proc.pid
    finally:
        for server in (first, waiter, quitter):
            server.stop()
