"""Every bundled pipeline and example validates, and the quickstart runs offline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anyio
import pytest

from engine.pipeline import compile_file, run

ROOT = Path(__file__).resolve().parents[2]
FILES = sorted(
    p
    for d in ("pipelines", "examples")
    for p in (ROOT / d).glob("*")
    if p.suffix in (".toml", ".yaml", ".yml")
)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_bundled_file_validates(path: Path) -> None:
    plan = compile_file(path, env={})
    assert plan.nodes


def test_quickstart_runs_with_audit(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "examples", tmp_path / "examples", ignore=shutil.ignore_patterns("out", ".engine")
    )
    plan = compile_file(tmp_path / "examples" / "quickstart.toml", env={})
    summary = anyio.run(lambda: run(plan))
    assert summary.ok, summary.error
    lines = (tmp_path / "examples" / "out" / "products.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert len(records) == summary.stages["products"].records_in > 0
    assert all(r["quantity"] > 0 and r["product_id"].startswith("PROD_") for r in records)
