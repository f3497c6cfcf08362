"""bench/run.py stays runnable, and `engine run` writes what the plain-Python floor writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_BENCH = ROOT.parent / "shared" / "bench"


def test_quick_benchmark_engine_outputs_equal_the_floors(tmp_path: Path) -> None:
    if not SHARED_BENCH.is_dir():
        pytest.skip(f"the shared benchmark contenders are not at {SHARED_BENCH}")
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "run.py"),
            "--quick",
            "--only",
            "engine,engine-row",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    workloads = json.loads(out.read_text())["workloads"]
    assert sorted(workloads) == ["filter", "inventory", "parquet"]
    for name, workload in workloads.items():
        table = workload["contenders"]
        assert sorted(table) == ["engine", "engine-row", "floor"], name
        for contender in ("engine", "engine-row"):
            expected = "same values" if name == "parquet" else "same bytes"
            assert table[contender]["output"] in ("same bytes", expected), (name, contender)
            assert table[contender]["wall_per_floor"] > 0
    assert "engine / engine-row: median of 1 paired rounds" in result.stdout
