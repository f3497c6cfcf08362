"""Decoding streams: a 1M-row CSV pipeline runs in flat memory (peak RSS under 150 MB)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from generate import generate  # noqa: E402

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


@pytest.mark.slow
def test_million_rows_in_flat_memory(tmp_path: Path) -> None:
    generate(1_000_000, tmp_path / "in.csv")
    (tmp_path / "p.toml").write_text(PIPELINE)
    engine = str(Path(sys.executable).with_name("engine"))
    proc = subprocess.Popen(
        [engine, "run", "-q", str(tmp_path / "p.toml")],
        env={**os.environ, "ENGINE_HOME": str(tmp_path / ".engine")},
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(proc.pid, 0)
    assert proc.stderr is not None
    with proc.stderr:
        stderr = proc.stderr.read().decode()
    proc.returncode = status
    assert status == 0, stderr[-2000:]
    peak_mb = usage.ru_maxrss / 1024
    assert peak_mb < 150, f"peak RSS {peak_mb:.0f} MB"
    with (tmp_path / "out.jsonl").open("rb") as f:
        assert sum(1 for _ in f) == 1_000_000
