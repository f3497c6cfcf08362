"""`engine serve` holds its pipeline's run lease: one run per pipeline per state store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from serve_process import DEADLINE, ServeProcess, sql_pipeline

from engine.state import Lease, StateStore


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


def test_the_lease_is_released_on_a_clean_stop(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pipeline = sql_pipeline(tmp_path)
    first = ServeProcess(pipeline, home).ready()
    try:
        first.signal(signal.SIGTERM)
        assert first.wait() == 0, first.stderr
    finally:
        first.stop()
    assert holder(home) is None
    second = ServeProcess(pipeline, home).ready()
    try:
        lease = holder(home)
        assert lease is not None and lease.pid == second.proc.pid
    finally:
        second.stop()


def test_a_killed_holder_does_not_block_the_next_serve(tmp_path: Path) -> None:
    home = tmp_path / "home"
    pipeline = sql_pipeline(tmp_path)
    first = ServeProcess(pipeline, home).ready()
    try:
        first.signal(signal.SIGKILL)
        assert first.wait() == -signal.SIGKILL
    finally:
        first.stop()
    killed = holder(home)
    assert killed is not None and killed.pid == first.proc.pid  # left behind by the kill
    second = ServeProcess(pipeline, home).ready()
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
