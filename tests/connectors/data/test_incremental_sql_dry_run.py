"""`engine dry-run` of an incremental `sql` source reads from the saved cursor, saves nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio

from engine.pipeline import compile_file, run
from engine.runtime.observer import NullObserver
from tests.support.data import sql

PIPELINE = """\
[pipeline]
name = "sqldry"

[sources.db]
type = "sql"
url = "{url}"
table = "{table}"
cursor = "id"
# exact runs, whatever other clients of the shared server hold open
cursor_snapshot = false

[sinks.out]
type = "file"
inputs = ["db"]
path = "out.jsonl"
"""


def dry_run(file: Path, workspace: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "engine", "dry-run", str(file), "--format", "json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "ENGINE_HOME": str(workspace)},
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_dry_run_reads_from_the_saved_sql_cursor_and_changes_nothing(
    db_url: str, table_name: str, tmp_path: Path
) -> None:
    sql(db_url, f"CREATE TABLE {table_name} (id INTEGER PRIMARY KEY, name VARCHAR(20))")
    sql(db_url, f"INSERT INTO {table_name} VALUES (1, 'a'), (2, 'b'), (3, 'c')")
    file = tmp_path / "p.toml"
    file.write_text(PIPELINE.format(url=db_url, table=table_name))
    workspace = tmp_path / "ws"

    assert [r["id"] for r in dry_run(file, workspace)["sinks"]["out"]] == [1, 2, 3]
    assert not workspace.exists() or not (workspace / "state.db").exists()

    plan = compile_file(file)
    summary = anyio.run(lambda: run(plan, observer=NullObserver(), workspace=workspace))
    assert summary.ok, summary.error
    state = workspace / "state.db"
    before = state.read_bytes()
    listing = sorted(p.name for p in workspace.iterdir())

    sql(db_url, f"INSERT INTO {table_name} VALUES (4, 'd')")
    assert [r["id"] for r in dry_run(file, workspace)["sinks"]["out"]] == [4]
    assert state.read_bytes() == before
    assert sorted(p.name for p in workspace.iterdir()) == listing

    summary = anyio.run(lambda: run(plan, observer=NullObserver(), workspace=workspace))
    assert summary.ok, summary.error
    out = [json.loads(line)["id"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert out == [4]  # the dry run moved nothing: the real run reads 4 as well
