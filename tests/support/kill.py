"""Real `engine run` processes, killed at random points, and what survives them: the outputs,
the queue and the audit trail (the workspace's SQLite store)."""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

DEADLINE = 120.0  # generous: only a hang reaches it

#: a CSV file (``source``) read in batches of 500 and shaped; a sink follows
READ = """\
[pipeline]
name = "{name}"
[sources.src]
type = "file"
path = "{source}"
batch = {{ size = 500 }}
[transforms.shape]
type = "map"
inputs = ["src"]
[transforms.shape.fields]
id = "to_number(id)"
name = "name"
"""


def seeded() -> random.Random:
    """Random kill points; ENGINE_KILL_SEED replays a failing sequence (the seed is printed)."""
    seed = int(os.environ.get("ENGINE_KILL_SEED", str(random.randrange(1 << 30))))
    print(f"kill points: ENGINE_KILL_SEED={seed}")
    return random.Random(seed)


def start(pipeline: Path, home: Path, *args: str) -> subprocess.Popen[bytes]:
    engine = str(Path(sys.executable).with_name("engine"))
    log = (pipeline.parent / f"{pipeline.stem}.log").open("ab")
    proc = subprocess.Popen(
        [engine, "run", "-q", "--format", "json", *args, str(pipeline)],
        env={**os.environ, "ENGINE_HOME": str(home)},
        stdout=subprocess.PIPE,
        stderr=log,
    )
    log.close()
    return proc


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, dict[str, object] | None]:
    out, _ = proc.communicate(timeout=DEADLINE)
    text = out.decode().strip()
    return proc.returncode, json.loads(text) if text else None


def run(pipeline: Path, home: Path) -> tuple[int, dict[str, object] | None]:
    return finish(start(pipeline, home))


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[bytes] | None = None) -> bool:
    """Poll until the condition holds (True) or the process ended first (False)."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc is not None and proc.poll() is not None:
            return False
        time.sleep(0.02)
    raise AssertionError("condition not reached before the deadline")


def kill_later(proc: subprocess.Popen[bytes], rng: random.Random, most: float) -> bool:
    """SIGKILL after a random delay of up to `most` seconds; False if it ended before."""
    deadline = time.monotonic() + rng.uniform(0, most)
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.005)
    if proc.poll() is not None:
        proc.communicate(timeout=DEADLINE)
        return False
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=DEADLINE)
    return True


def kill_when(proc: subprocess.Popen[bytes], ready: Callable[[], bool]) -> bool:
    """SIGKILL as soon as `ready()` holds, a point in the run's progress rather than in
    time; False if the process ended first."""
    while proc.poll() is None:
        if ready():
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=DEADLINE)
            return True
        time.sleep(0.002)
    proc.communicate(timeout=DEADLINE)
    return False


@dataclass
class Counts:
    """What a scenario measured: records lost, duplicated, delivered without a trail event."""

    sent: int
    delivered: int
    lost: int
    duplicated: int
    untrailed: int = 0
    kills: int = 0

    def line(self, scenario: str) -> str:
        return (
            f"{scenario}: sent={self.sent} delivered={self.delivered} lost={self.lost} "
            f"duplicated={self.duplicated} without_batch_written={self.untrailed} "
            f"kills={self.kills}"
        )


def count(sent: Iterable[object], delivered: Iterable[object]) -> tuple[int, int]:
    """(lost, duplicated) of what was sent against what arrived (with repeats)."""
    seen = Counter(delivered)
    lost = sum(1 for item in set(sent) if seen[item] == 0)
    return lost, sum(n - 1 for n in seen.values() if n > 1)


def written_per_run(home: Path, stage: str) -> dict[str, int]:
    """Records each run's `batch_written` events of a sink stage describe, from the trail."""
    db = home / "audit.db"
    if not db.exists():
        return {}
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT run_id, body FROM audit_events WHERE action = 'batch_written' AND stage = ?",
            (stage,),
        ).fetchall()
    totals: Counter[str] = Counter()
    for run_id, body in rows:
        totals[run_id] += int(json.loads(body)["record_count"])
    return dict(totals)


def started_runs(home: Path) -> list[str]:
    """Run ids in the order their runs started, from the trail."""
    with sqlite3.connect(home / "audit.db") as conn:
        rows = conn.execute(
            "SELECT run_id FROM audit_events WHERE action = 'run_started' ORDER BY seq"
        ).fetchall()
    return [r[0] for r in rows]


def feed_fifo(fifo: Path, data: bytes) -> None:
    """Write to the named pipe once a reader has it open."""
    fd = -1

    def opened() -> bool:
        nonlocal fd
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            return False
        return True

    wait_for(opened)
    os.set_blocking(fd, True)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
