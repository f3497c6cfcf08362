"""The state store on SQLite: compare-and-set cursors, read-only opening, run records,
dead letters as rows, schedule claims, and a full refresh."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from engine.pipeline import compile_file, run
from engine.runtime.observer import NullObserver
from engine.state import CursorConflictError, FreshCursors, StateError, StateStore


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ws" / "state.db"


def test_a_lost_compare_and_set_is_an_error_and_overwrites_nothing(db: Path) -> None:
    first, second = StateStore(db), StateStore(db)
    try:
        assert first.get("p", "src", "cursor:id") is None
        assert second.get("p", "src", "cursor:id") is None
        first.set("p", "src", "cursor:id", 10)
        with pytest.raises(CursorConflictError, match="read at version 0, now version 1"):
            second.set("p", "src", "cursor:id", 7)
        first.set("p", "src", "cursor:id", 20)  # over the version it wrote
        assert second.get("p", "src", "cursor:id") == 20
        second.set("p", "src", "cursor:id", 30)
        with pytest.raises(CursorConflictError, match="read at version 2, now version 3"):
            first.set("p", "src", "cursor:id", 40)
        saved = StateStore(db).read("p", "src", "cursor:id")
        assert saved is not None and (saved.value, saved.version) == (30, 3)
    finally:
        first.close()
        second.close()


def test_a_read_only_store_creates_nothing_and_keeps_nothing(db: Path) -> None:
    store = StateStore(db, read_only=True)
    assert store.get("p", "c", "k", "default") == "default"
    assert store.runs() == [] and store.leases() == []
    store.set("p", "c", "k", 1)
    assert not db.parent.exists()
    with pytest.raises(StateError, match="read-only"):
        store.claim_fire("p", datetime.now(UTC), "me")
    writer = StateStore(db)
    writer.set("p", "c", "k", 1)
    writer.close()
    reader = StateStore(db, read_only=True)
    reader.set("p", "c", "k", 2)
    assert reader.get("p", "c", "k") == 1
    reader.close()


def test_cursors_of_an_older_workspace_are_adopted(db: Path) -> None:
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE state (pipeline TEXT, component TEXT, key TEXT, value TEXT, "
            "updated_at TEXT, PRIMARY KEY (pipeline, component, key))"
        )
        conn.execute("INSERT INTO state VALUES ('p', 'src', 'cursor', '41', 'x')")
    store = StateStore(db)
    assert store.get("p", "src", "cursor") == 41
    store.close()


def test_each_fire_time_is_claimed_by_exactly_one_of_many_threads(db: Path) -> None:
    fire = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    won: list[str] = []
    barrier = threading.Barrier(8)

    def claim(holder: str) -> None:
        store = StateStore(db)
        try:
            barrier.wait()
            if store.claim_fire("nightly", fire, holder):
                won.append(holder)
        finally:
            store.close()

    threads = [threading.Thread(target=claim, args=(f"s{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1
    store = StateStore(db)
    assert store.fire_claims("nightly") == {"2026-01-01T12:00:00.000000+00:00": won[0]}
    assert store.last_fire("nightly") == fire
    assert store.claim_fire("other", fire, "s1")  # per pipeline
    assert store.forget_fires("nightly", datetime(2026, 1, 2, tzinfo=UTC)) == 1
    assert store.fire_claims("nightly") == {}
    store.close()


def test_a_full_refresh_replaces_the_cursors_it_wrote_and_drops_the_rest(db: Path) -> None:
    store = StateStore(db)
    store.set("p", "a", "cursor", 5)
    store.set("p", "b", "cursor", 9)
    store.set("p", "", "checkpoint", {"kept": True})  # the pipeline's own, not a cursor
    fresh = FreshCursors(StateStore(db), "p")
    assert fresh.get("p", "a", "cursor", "initial") == "initial"
    fresh.set("p", "a", "cursor", 3)  # lower than before: replaced all the same
    assert [c.key for c in fresh.finish()] == ["cursor"]
    assert [(c.component, c.value) for c in store.cursors("p")] == [
        ("", {"kept": True}),
        ("a", 3),
    ]
    store.close()
    fresh.store.close()


PIPELINE = """
[pipeline]
name = "history"
[sources.src]
type = "file"
path = "in.jsonl"
[transforms.check]
type = "map"
inputs = ["src"]
on_error = "dead_letter"
[transforms.check.fields]
n = { expr = "n", required = true }
[sinks.out]
type = "file"
inputs = ["check"]
path = "out.jsonl"
"""


def test_run_records_after_a_success_and_a_failure_and_dead_letters_as_rows(
    tmp_path: Path,
) -> None:
    (tmp_path / "in.jsonl").write_text('{"n": 1}\n{"n": null}\n{"n": 3}\n')
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE + '[state]\ndead_letters = "store"\n')
    workspace = tmp_path / "ws"

    def once() -> object:
        plan = compile_file(path, env={})
        return anyio.run(lambda: run(plan, workspace=workspace, observer=NullObserver()))

    ok = once()
    (tmp_path / "in.jsonl").write_text('{"n": null}\n')  # every record rejected: a failure
    failed = once()
    store = StateStore(workspace / "state.db", read_only=True)
    newest, first = store.runs("history")
    assert first.run_id == ok.run_id and newest.run_id == failed.run_id  # type: ignore[attr-defined]
    assert (first.outcome, first.records_in, first.records_out) == ("success", 3, 2)
    assert (first.rejected, first.dead_letters) == (1, 1)
    assert first.ended is not None and first.duration_s is not None and first.attempt == 1
    assert first.details["components"]["out"]["records_out"] == 2
    assert (newest.outcome, newest.records_in, newest.records_out) == ("failure", 1, 0)
    assert "rejected" in (newest.error or "")
    (row,) = store.dead_letters(first.run_id)
    assert (row.component, row.record) == ("check", {"n": None})
    assert "required" in row.reason
    assert not (workspace / "dead_letter").exists()  # no file: rows instead
    store.close()
    assert json.loads((tmp_path / "out.jsonl").read_text().splitlines()[0]) == {"n": 1}


def test_a_state_table_names_a_sqlite_store_beside_the_pipeline_and_a_prefix(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        PIPELINE.replace(
            "[sources.src]",
            '[state]\nstore = "sqlite:///kept/s.db"\ntable_prefix = "etl_"\n[sources.src]',
        )
    )
    (tmp_path / "in.jsonl").write_text('{"n": 1}\n')
    plan = compile_file(path, env={})
    anyio.run(lambda: run(plan, workspace=tmp_path / "ws", observer=NullObserver()))
    with sqlite3.connect(tmp_path / "kept" / "s.db") as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        (outcome,) = conn.execute("SELECT outcome FROM etl_runs").fetchone()
    assert "etl_cursors" in tables and "engine_runs" not in tables and outcome == "success"
    assert not (tmp_path / "ws" / "state.db").exists()
