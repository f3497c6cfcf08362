"""Pipeline files in a test's folder, run without the audit trail, and their JSONL outputs."""

from __future__ import annotations

import json
from pathlib import Path

from engine.pipeline import compile_file, run
from engine.runtime.observer import NullObserver, RunSummary


def write_pipeline(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipeline.toml"
    path.write_text(text, encoding="utf-8")
    return path


async def run_file(path: Path, **options: object) -> RunSummary:
    """Compile and run a pipeline file without the audit trail."""
    plan = compile_file(path)
    return await run(plan, observer=NullObserver(), **options)  # type: ignore[arg-type]


def read_jsonl(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
