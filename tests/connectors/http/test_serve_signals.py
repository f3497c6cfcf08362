"""`engine serve` as a real process: SIGTERM/SIGINT drain and exit 0; SIGKILL loses no 2xx."""

from __future__ import annotations

import random
import signal
import socket
from pathlib import Path

import pytest
from serve_process import Posters, ServeProcess, sql_pipeline, stored_ids, wait_for


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_under_load_drains_and_exits_0(tmp_path: Path, signum: int) -> None:
    server = ServeProcess(sql_pipeline(tmp_path), tmp_path / "home").ready()
    posters = Posters(server.url)
    try:
        wait_for(lambda: posters.count() >= 40, "40 requests answered 200")
        server.signal(signum)
        code = server.wait()
    finally:
        accepted = posters.stop()
        server.stop()
    assert code == 0, server.stderr
    assert "Aborted" not in server.stderr and "Traceback" not in server.stderr
    stored = set(stored_ids(tmp_path))
    assert len(accepted) >= 40
    missing = sorted(set(accepted) - stored)
    assert missing == [], f"answered 200 but not in the sink: {missing}"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_request_in_flight_at_the_signal_is_finished(tmp_path: Path, signum: int) -> None:
    server = ServeProcess(sql_pipeline(tmp_path), tmp_path / "home").ready()
    body = b'{"id": 4242}'
    try:
        conn = socket.create_connection(("127.0.0.1", server.port), timeout=60)
        with conn:
            head = (
                f"POST /hooks/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            ).encode()
            conn.sendall(head + body[:5])
            wait_for(
                lambda: server.metric("engine_webhook_requests_in_flight") == 1,
                "the request to be in flight",
            )
            server.signal(signum)

            def refused() -> bool:
                try:
                    socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
                except OSError:
                    return True
                return False

            # the server takes no new connections, yet is still busy with this one
            wait_for(refused, "the listener to close")
            assert server.proc.poll() is None
            conn.sendall(body[5:])
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
                part = conn.recv(4096)
                if not part:
                    break
                answer += part
        code = server.wait()
    finally:
        server.stop()
    assert answer.startswith(b"HTTP/1.1 200"), answer
    assert b'{"accepted":1}' in answer
    assert code == 0, server.stderr
    assert stored_ids(tmp_path) == [4242]


def test_sigkill_loses_no_request_answered_2xx(tmp_path: Path) -> None:
    pipeline = sql_pipeline(tmp_path)
    rng = random.Random(12)
    accepted: list[int] = []
    for round_ in range(3):  # kills at random points
        server = ServeProcess(pipeline, tmp_path / "home").ready()
        posters = Posters(server.url, start=round_ * 1_000_000)
        target = rng.randint(10, 80)
        try:
            wait_for(lambda p=posters, t=target: p.count() >= t, f"{target} answered 200")
            server.signal(signal.SIGKILL)
            assert server.wait() == -signal.SIGKILL
        finally:
            accepted += posters.stop()
            server.stop()
    stored = set(stored_ids(tmp_path))
    missing = sorted(set(accepted) - stored)
    assert len(accepted) >= 30
    assert missing == [], f"answered 200 but not in the sink: {missing}"
