"""`engine serve` as a real process, into a SQL table or rolling file segments: SIGTERM/SIGINT
drain and exit 0; SIGKILL loses no 2xx; every delivered record is on the audit trail."""

from __future__ import annotations

import json
import signal
import socket
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from tests.support.kill import Counts, count, seeded, written_per_run
from tests.support.serve_process import Posters, ServeProcess, sql_pipeline, stored_ids, wait_for

FILE_PIPELINE = """
[pipeline]
name = "served"

[sources.orders]
type = "webhook"
path = "/hooks/orders"

[sinks.out]
type = "file"
inputs = ["orders"]
path = "out/orders.jsonl"
segment = {{ max_records = 25, max_age = 0.1 }}
"""


class SqlTarget:
    """Webhook -> SQLite table: each batch one committed transaction."""

    name, stage = "sql", "db"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pipeline = sql_pipeline(folder)

    def stored(self) -> list[int]:
        return stored_ids(self.folder)

    def untrailed(self, home: Path) -> int:
        """Rows beyond what the `batch_written` events of the trail describe."""
        return max(len(self.stored()) - sum(written_per_run(home, self.stage).values()), 0)

    def temps(self) -> list[Path]:
        return []


class FileTarget:
    """Webhook -> rolling JSONL segments ``out/orders-<run_id>-<sequence>.jsonl``."""

    name, stage = "file", "out"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.pipeline = folder / "pipeline.toml"
        self.pipeline.write_text(FILE_PIPELINE.format(), encoding="utf-8")

    def segments(self) -> list[Path]:
        return sorted((self.folder / "out").glob("orders-*.jsonl"))

    def stored(self) -> list[int]:
        return [
            json.loads(line)["id"]
            for path in self.segments()
            for line in path.read_text(encoding="utf-8").splitlines()
        ]

    def untrailed(self, home: Path) -> int:
        """Records in published segments beyond what their run's `batch_written` events
        describe."""
        per_run: Counter[str] = Counter()
        for path in self.segments():
            run_id = path.stem.split("-")[1]
            per_run[run_id] += len(path.read_text(encoding="utf-8").splitlines())
        written = written_per_run(home, self.stage)
        return sum(max(n - written.get(run_id, 0), 0) for run_id, n in per_run.items())

    def temps(self) -> list[Path]:
        return sorted((self.folder / "out").glob(".*.tmp"))


Target = SqlTarget | FileTarget


@pytest.fixture(params=["sql", "file"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    return SqlTarget(tmp_path) if request.param == "sql" else FileTarget(tmp_path)


def check_delivery(
    target: Target, home: Path, accepted: Iterable[int], scenario: str, kills: int = 0
) -> None:
    """Every id answered 200 is stored once, and every stored record is on the trail."""
    stored = target.stored()
    lost, duplicated = count(accepted, stored)
    counts = Counts(
        len(set(accepted)), len(stored), lost, duplicated, target.untrailed(home), kills
    )
    print(counts.line(f"webhook->{scenario}"))
    missing = sorted(set(accepted) - set(stored))
    assert lost == 0, f"answered 200 but not in the sink: {missing}"
    # each client posts every id once and takes no answer as final: nothing is sent twice
    assert counts.duplicated == 0
    assert counts.untrailed == 0


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_under_load_drains_and_exits_0(tmp_path: Path, target: Target, signum: int) -> None:
    home = tmp_path / "home"
    server = ServeProcess(target.pipeline, home).ready()
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
    assert len(accepted) >= 40
    check_delivery(target, home, accepted, f"{target.name} {signal.Signals(signum).name}")
    assert target.temps() == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_request_in_flight_at_the_signal_is_finished(
    tmp_path: Path, target: Target, signum: int
) -> None:
    server = ServeProcess(target.pipeline, tmp_path / "home").ready()
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
    assert target.stored() == [4242]
    assert target.temps() == []


def test_sigkill_loses_no_request_answered_2xx(tmp_path: Path, target: Target) -> None:
    home = tmp_path / "home"
    rng = seeded()
    accepted: list[int] = []
    orphans: list[Path] = []  # temp files a killed server left
    kills = 0
    for round_ in range(4):  # kills at random points, then a clean stop
        server = ServeProcess(target.pipeline, home).ready()
        posters = Posters(server.url, start=round_ * 1_000_000)
        target_count = rng.randint(10, 80) if round_ < 3 else 1
        try:
            wait_for(
                lambda p=posters, t=target_count: p.count() >= t, f"{target_count} answered 200"
            )
            # the server has published a segment: the killed one's temp files are gone
            left = [path for path in orphans if path.exists()]
            assert left == [], f"temp files of a killed server survived a restart: {left}"
            if round_ < 3:
                server.signal(signal.SIGKILL)
                assert server.wait() == -signal.SIGKILL
                kills += 1
                orphans += target.temps()
            else:
                server.signal(signal.SIGTERM)
                assert server.wait() == 0, server.stderr
        finally:
            accepted += posters.stop()
            server.stop()
    assert len(accepted) >= 31
    print(f"webhook->{target.name} SIGKILL: temp files left by the kills={len(orphans)}")
    check_delivery(target, home, accepted, f"{target.name} SIGKILL", kills)
    assert target.temps() == []
