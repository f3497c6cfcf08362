"""Slowloris: connections that trickle their headers or body are closed by the server."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import anyio
import httpx

from tests.support.serve_process import DEADLINE, serve_in_process, sql_pipeline, stored_ids


class Trickler:
    """A raw connection sending ``head``, then ``data`` a byte at a time until it is closed."""

    def __init__(self, port: int, data: bytes, head: bytes = b"") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=DEADLINE)
        self.sock.sendall(head)
        self.data = data
        self.closed = threading.Event()
        self.answer = b""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        sent = 0
        try:
            while True:
                if sent < len(self.data):
                    self.sock.sendall(self.data[sent : sent + 1])
                    sent += 1
                try:
                    part = self.sock.recv(4096)
                except TimeoutError:
                    continue
                if not part:
                    break  # the server closed the connection
                self.answer += part
        except OSError:
            pass  # reset by the server
        finally:
            self.closed.set()
            self.sock.close()


def test_slow_headers_and_slow_bodies_are_cut_off(tmp_path: Path) -> None:
    pipeline = sql_pipeline(tmp_path)
    endless_headers = b"POST /hooks/orders HTTP/1.1\r\nHost: x\r\n" + b"X-Pad: a\r\n" * 10_000
    head = (
        b"POST /hooks/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000\r\n\r\n"
    )
    results: dict[str, object] = {}

    async def client(http: httpx.AsyncClient) -> None:
        port = http.base_url.port
        assert port is not None
        slow = [Trickler(port, endless_headers) for _ in range(4)]
        slow += [Trickler(port, b"[" * 100_000, head) for _ in range(2)]
        # the server keeps serving others meanwhile
        answer = await http.post("/hooks/orders", content=b'{"id": 1}')
        results["normal"] = answer.status_code
        end = time.monotonic() + DEADLINE
        while not all(t.closed.is_set() for t in slow) and time.monotonic() < end:
            await anyio.sleep(0.1)
        results["closed"] = [t.closed.is_set() for t in slow]
        results["answers"] = [t.answer.split(b"\r\n", 1)[0] for t in slow]

    anyio.run(
        lambda: serve_in_process(
            pipeline, tmp_path / "home", client, header_timeout=1.0, body_timeout=1.0
        )
    )
    assert results["normal"] == 200
    assert results["closed"] == [True] * 6
    # headers never finished: closed without an answer; bodies too slow: 408 first
    assert results["answers"] == [b""] * 4 + [b"HTTP/1.1 408 Request Timeout"] * 2
    assert stored_ids(tmp_path) == [1]
