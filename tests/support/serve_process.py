"""`engine serve` as a real subprocess, and clients that keep posting to it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import httpx

from engine.pipeline import compile_file
from engine.runtime.observer import NullObserver
from engine.serve.app import EngineServer
from tests.support.http_server import free_port

DEADLINE = 60.0

SQL_PIPELINE = """
[pipeline]
name = "{name}"

[sources.orders]
type = "webhook"
path = "/hooks/orders"
{source_extra}

[sinks.db]
type = "sql"
inputs = ["orders"]
url = "sqlite:///{db}"
table = "orders"
"""


def sql_pipeline(tmp_path: Path, name: str = "served", source_extra: str = "") -> Path:
    """A webhook -> SQLite pipeline (each batch one committed transaction) and its table."""
    db = tmp_path / "out.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER NOT NULL, note TEXT)")
    path = tmp_path / "pipeline.toml"
    path.write_text(
        SQL_PIPELINE.format(name=name, db=db.as_posix(), source_extra=source_extra),
        encoding="utf-8",
    )
    return path


def stored_ids(tmp_path: Path) -> list[int]:
    with sqlite3.connect(tmp_path / "out.db") as conn:
        return [row[0] for row in conn.execute("SELECT id FROM orders")]


def wait_for(condition: Callable[[], bool], what: str, deadline: float = DEADLINE) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after a generous deadline."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


async def serve_in_process(
    pipeline: Path,
    home: Path,
    client: Callable[[httpx.AsyncClient], Awaitable[None]],
    **options: Any,
) -> EngineServer:
    """Serve ``pipeline`` in this process while ``client`` talks to it; then stop and drain."""
    server = EngineServer(
        compile_file(pipeline), workspace=home, observer=NullObserver(), **options
    )
    port = free_port()
    async with anyio.create_task_group() as tg:
        tg.start_soon(server.serve, "127.0.0.1", port)
        with anyio.fail_after(30):
            await server.started.wait()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
            try:
                await client(http)
            finally:
                server.stop()
    return server


class ServeProcess:
    """``python -m engine serve FILE`` on a free port, with its own ENGINE_HOME."""

    def __init__(
        self,
        pipeline: Path,
        home: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {**os.environ, "ENGINE_HOME": str(home), **(env or {})}
        self.stderr_path = home.parent / f"serve-{self.port}.stderr"
        home.mkdir(parents=True, exist_ok=True)
        with self.stderr_path.open("wb") as stderr:
            command = [sys.executable, "-m", "engine", "serve", str(pipeline)]
            self.proc = subprocess.Popen(
                [*command, "--port", str(self.port), *args],
                env=environ,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )

    def ready(self) -> ServeProcess:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"engine serve exited {self.proc.returncode}: {self.stderr}")
            try:
                return httpx.get(self.url + "/metrics", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_for(up, "engine serve to listen")
        wait_for(lambda: self.metric("engine_pipeline_up") == 1, "the pipeline to run")
        return self

    def metric(self, name: str) -> float:
        text = httpx.get(self.url + "/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith(name + "{")
        )

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        os.kill(self.proc.pid, signum)

    def wait(self) -> int:
        try:
            return self.proc.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"engine serve did not exit: {self.stderr}") from None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Posters:
    """Threads posting ``{"id": n}`` bodies until stopped; ``accepted`` holds the 200-ed ids."""

    def __init__(self, url: str, threads: int = 4, start: int = 0) -> None:
        self.url = url
        self.accepted: list[int] = []
        self.statuses: list[int | str] = []
        self._next = start
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._post, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def _post(self) -> None:
        with httpx.Client(base_url=self.url, timeout=DEADLINE) as client:
            while not self._stop.is_set():
                with self._lock:
                    ident = self._next
                    self._next += 1
                body = json.dumps({"id": ident}).encode()
                try:
                    answer = client.post("/hooks/orders", content=body)
                except httpx.TransportError as exc:
                    with self._lock:
                        self.statuses.append(type(exc).__name__)
                    time.sleep(0.01)
                    continue
                with self._lock:
                    self.statuses.append(answer.status_code)
                    if answer.status_code == 200:
                        self.accepted.append(ident)

    def count(self) -> int:
        with self._lock:
            return len(self.accepted)

    def stop(self) -> list[int]:
        self._stop.set()
        for thread in self._threads:
            thread.join(DEADLINE)
        return list(self.accepted)
