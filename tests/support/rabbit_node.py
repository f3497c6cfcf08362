"""A private RabbitMQ node for fault tests: its own name, ports and data folder; stopped (or
killed) by its own process group, so the machine's shared broker is never touched."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from pathlib import Path

import pytest

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
START_DEADLINE = 120.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RabbitNode:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.name = f"engine-test-{uuid.uuid4().hex[:8]}@localhost"
        self.port = _free_port()
        self.dist_port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        f = self.folder
        return {
            **os.environ,
            "HOME": str(f),  # the Erlang cookie of this node
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(f / "mnesia"),
            "RABBITMQ_LOG_BASE": str(f / "log"),
            "RABBITMQ_PID_FILE": str(f / "node.pid"),
            # no plugins (no management listener) and not the machine's config file
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(f / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(f / "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(f / "advanced.config"),
        }

    def start(self) -> None:
        """Start (or restart, keeping its queues and messages) and wait until it listens."""
        server = SERVER if Path(SERVER).exists() else shutil.which("rabbitmq-server")
        if server is None:
            pytest.skip("rabbitmq-server is not installed: no private broker for this test")
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / "enabled_plugins").write_text("[].\n")
        log = (self.folder / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [server],
            env=self._env(),
            cwd=self.folder,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() signals only this node
        )
        log.close()
        deadline = time.monotonic() + START_DEADLINE
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.folder / "server.log").read_text(errors="replace")[-2000:]
                pytest.fail(f"private RabbitMQ node exited with {self.proc.returncode}: {tail}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        self.stop()
        pytest.fail(f"private RabbitMQ node did not listen within {START_DEADLINE}s")

    def kill(self) -> None:
        """Kill -9 the node's process group (a crash): messages confirmed before survive."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, signum: int) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        # the Erlang VM may outlive the script that started it: wait for the group to go
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGKILL)
