"""Decoding streams: a 1M-row CSV pipeline runs in flat memory (peak RSS under 150 MB)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.generate import generate

PIPELINE = """\
[pipeline]
name = "mem"
[sources.inv]
type = "file"
path = "in.csv"
codec = "csv"
[transforms.m]
type = "map"
inputs = ["inv"]
fields = { id = "sku", q = "to_number(quantity)", kind = "category || 'General'" }
[sinks.out]
type = "file"
inputs = ["m"]
path = "out.jsonl"
"""


PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"
)


@pytest.fixture(scope="module")
def million_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("million") / "in.csv"
    generate(1_000_000, path)
    return path


@pytest.mark.slow
def test_million_rows_in_flat_memory(tmp_path: Path, million_csv: Path) -> None:
    (tmp_path / "in.csv").symlink_to(million_csv)
    (tmp_path / "p.toml").write_text(PIPELINE)
    engine = str(Path(sys.executable).with_name("engine"))
    # Measured from a small wrapper process: a child forked straight from pytest would count
    # pytest's own resident pages in its peak.
    result = subprocess.run(
        [sys.executable, "-c", PEAK_RSS, engine, "run", "-q", str(tmp_path / "p.toml")],
        # The row path: polars alone takes some 57 MB more (docs/columnar.md, Memory).
        env={**os.environ, "ENGINE_HOME": str(tmp_path / ".engine"), "ENGINE_COLUMNAR": "off"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    peak_mb = int(result.stdout.strip()) / 1024
    assert peak_mb < 150, f"peak RSS {peak_mb:.0f} MB"
    with (tmp_path / "out.jsonl").open("rb") as f:
        assert sum(1 for _ in f) == 1_000_000


@pytest.mark.slow
def test_sigterm_drains_and_flushes_a_real_run(tmp_path: Path, million_csv: Path) -> None:
    """SIGTERM mid-run: sources stop, what was read is drained, exit 130, outcome
    interrupted, and the partial output does not replace the previous complete one."""
    (tmp_path / "in.csv").symlink_to(million_csv)
    (tmp_path / "p.toml").write_text(PIPELINE)
    (tmp_path / "out.jsonl").write_bytes(b'{"previous": "complete"}\n')
    engine = str(Path(sys.executable).with_name("engine"))
    proc = subprocess.Popen(
        [engine, "run", "-q", "--format", "json", str(tmp_path / "p.toml")],
        env={**os.environ, "ENGINE_HOME": str(tmp_path / ".engine")},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".out.jsonl.*.tmp")) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-2000:]
    summary = json.loads(out)
    assert summary["ok"] is False and summary["outcome"] == "interrupted"
    written = summary["components"]["out"]["records_out"]
    assert 0 < written < 1_000_000
    assert written == summary["components"]["inv"]["records_out"]
    assert (tmp_path / "out.jsonl").read_bytes() == b'{"previous": "complete"}\n'
    # what was drained is kept under its temp name, for the next run to resume
    (kept,) = tmp_path.glob(".out.jsonl.*")
    assert kept.read_bytes().count(b"\n") == written
