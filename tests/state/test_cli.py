"""`engine runs`, `engine state` and `engine run --full-refresh` as a user calls them, after
incremental runs of a SQL source."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.support.cli import invoke

PIPELINE = """\
[pipeline]
name = "orders-sync"

[sources.orders]
type = "sql"
url = "sqlite:///orders.db"
table = "orders"
cursor = "id"

[sinks.out]
type = "file"
inputs = ["orders"]
path = "out/{run_id}.jsonl"
"""


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    with sqlite3.connect(tmp_path / "orders.db") as conn:
        conn.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)")
        conn.executemany("INSERT INTO orders VALUES (?, ?)", [(i, f"o{i}") for i in (1, 2, 3)])
    path = tmp_path / "orders.toml"
    path.write_text(PIPELINE)
    return path


def _run(pipeline: Path, *extra: str) -> dict[str, object]:
    code, out, err = invoke("run", "-q", "--no-audit", "--format", "json", *extra, str(pipeline))
    assert code == 0, err
    summary: dict[str, object] = json.loads(out)
    return summary


def _read(summary: dict[str, object]) -> int:
    components = summary["components"]
    assert isinstance(components, dict)
    return int(components["orders"]["records_out"])


def _cursor(pipeline: Path) -> object:
    code, out, err = invoke("state", "show", "--format", "json", str(pipeline))
    assert code == 0, err
    values = json.loads(out)["values"]
    return [(v["component"], v["key"], v["value"]["value"]) for v in values]


def test_runs_and_state_after_incremental_runs_a_reset_and_a_full_refresh(
    pipeline: Path, tmp_path: Path
) -> None:
    first = _run(pipeline)
    assert _read(first) == 3
    assert _cursor(pipeline) == [("orders", "cursor:id", 3)]
    with sqlite3.connect(tmp_path / "orders.db") as conn:
        conn.executemany("INSERT INTO orders VALUES (?, ?)", [(4, "o4"), (5, "o5")])
    assert _read(_run(pipeline)) == 2  # only the new rows
    assert _cursor(pipeline) == [("orders", "cursor:id", 5)]

    code, out, err = invoke("state", "reset", str(pipeline))
    assert code == 0 and "removed from" in err and "cursor:id" in out
    assert _cursor(pipeline) == []
    assert _read(_run(pipeline)) == 5  # reads everything again

    refreshed = _run(pipeline, "--full-refresh")
    assert _read(refreshed) == 5
    assert _cursor(pipeline) == [("orders", "cursor:id", 5)]

    code, out, err = invoke(
        "state", "set", str(pipeline), "orders", "cursor:id", '{"type": "json", "value": 4}'
    )
    assert code == 0, err
    assert _read(_run(pipeline)) == 1

    code, out, _ = invoke("runs", "--format", "json", str(pipeline))
    runs = json.loads(out)
    assert [r["outcome"] for r in runs] == ["success"] * 5
    assert [r["records_in"] for r in runs] == [1, 5, 5, 2, 3]  # newest first
    assert runs[-1]["run_id"] == first["run_id"]
    assert all(r["ended"] and r["duration_s"] is not None for r in runs)

    code, out, _ = invoke("runs", str(pipeline), "--limit", "2")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4 and lines[0].split()[:3] == ["run", "started", "(UTC)"]
    assert all(len(line) <= 80 for line in lines)  # a table, not folded: it fits
    assert lines[2].split()[4:7] == ["success", "1", "1"]

    code, out, _ = invoke("runs", "show", str(first["run_id"])[:8], str(pipeline))
    assert code == 0 and f"run_id:       {first['run_id']}" in out
    assert "records_in:   3" in out
    table = out.split("\n\n", 1)[1].splitlines()  # per component
    assert table[0].split() == ["component", "role", "in", "out", "rejected", "retries", "errors"]
    assert all(len(line) <= 80 for line in table)


def test_a_run_that_died_before_its_end_is_listed_as_abandoned(pipeline: Path) -> None:
    from engine.state import RunRecord, StateStore

    _run(pipeline)
    code, out, _ = invoke("runs", "--format", "json", str(pipeline))
    (done,) = json.loads(out)
    store = StateStore(Path(os.environ["ENGINE_HOME"]) / "state.db")
    store.record_run(RunRecord("deadbeef0001", "orders-sync", "2999-01-01T00:00:00Z", "h"))
    store.close()
    code, out, _ = invoke("runs", "--format", "json", str(pipeline))
    assert code == 0
    assert [(r["run_id"], r["outcome"]) for r in json.loads(out)] == [
        ("deadbeef0001", "abandoned"),  # still "running" in the store, and no lease held
        (done["run_id"], "success"),
    ]


def test_state_commands_name_a_component_that_is_not_there(pipeline: Path) -> None:
    code, _, err = invoke("state", "show", str(pipeline), "nope")
    assert code == 2 and "'nope' is not a component" in err and "orders" in err


def test_a_dry_run_and_the_read_commands_create_no_state(
    pipeline: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ENGINE_HOME")
    for args in (("dry-run",), ("state", "show"), ("runs",)):
        code, _, err = invoke(*args, str(pipeline))
        assert code == 0, err
    assert not (tmp_path / ".engine").exists()
    # the workspace rule: --workspace wins over .engine/ beside the file
    code, _, err = invoke(
        "run", "-q", "--no-audit", "--workspace", str(tmp_path / "w"), str(pipeline)
    )
    assert code == 0, err
    assert (tmp_path / "w" / "state.db").is_file() and not (tmp_path / ".engine").exists()
    code, out, _ = invoke("--workspace", str(tmp_path / "w"), "runs", "--format", "json")
    assert [r["pipeline"] for r in json.loads(out)] == ["orders-sync"]


def test_audit_verify_finds_the_trail_of_the_quickstart_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As in the README: the quickstart, then `engine audit verify FILE` from the same folder."""
    root = Path(__file__).resolve().parents[2]
    (tmp_path / "examples" / "data").mkdir(parents=True)
    for name in ("quickstart.toml", "data/inventory.csv"):
        (tmp_path / "examples" / name).write_bytes((root / "examples" / name).read_bytes())
    monkeypatch.delenv("ENGINE_HOME")
    monkeypatch.delenv("AUDIT_SECRET_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke("run", "-q", "examples/quickstart.toml")
    assert code == 0, err
    assert "check it with: engine audit verify examples/quickstart.toml" in err
    code, out, err = invoke("audit", "verify", "examples/quickstart.toml")
    assert code == 0 and out.startswith("intact"), out + err
    code, out, _ = invoke("audit", "verify")  # ./.engine holds no trail
    assert code == 3
