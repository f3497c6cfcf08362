"""The ``sql`` source and sink against SQLite, and the machine's PostgreSQL and MariaDB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import ValidationError

from engine.components.sinks.sql import SqlSinkConfig
from engine.components.sources.sql import SqlSource, SqlSourceConfig
from engine.errors import PermanentError, TransientError
from engine.pipeline import compile_file, dry_run, run
from engine.records import Batch
from engine.runtime.observer import NullObserver
from engine.state import StateStore
from tests.support.data import context, sql, write

HOSTILE = [
    "Robert'); DROP TABLE students;--",
    "x' OR '1'='1",
    'double "quotes" and \\ backslash',
    "semi;colon -- comment /* c */",
    "unicode: ü ñ 日本 \u2028",
    "%(name)s %s :name ?",
]


def create_items(url: str, name: str) -> None:
    sql(
        url,
        f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, name VARCHAR(200) NOT NULL, qty INTEGER)",
    )


def read(url: str, tmp_path: Path, state: StateStore | None = None, **options: Any) -> list[Batch]:
    source = SqlSource(SqlSourceConfig(url=url, **options), context(tmp_path, state))

    async def main() -> list[Batch]:
        await source.open()
        try:
            chunks = [chunk.records async for chunk in source.read()]
            await source.commit()
            return chunks
        finally:
            await source.close()

    return anyio.run(main)


def test_insert_binds_hostile_strings_verbatim(
    db_url: str, table_name: str, tmp_path: Path
) -> None:
    create_items(db_url, table_name)
    records = [{"id": i, "name": s, "qty": i} for i, s in enumerate(HOSTILE)]
    write(db_url, tmp_path, [records], table=table_name)
    rows = sql(db_url, f"SELECT id, name, qty FROM {table_name} ORDER BY id")
    assert rows == [(r["id"], r["name"], r["qty"]) for r in records]
    # the source binds them too: a hostile parameter matches only its own row
    got = read(
        db_url,
        tmp_path,
        query=f"SELECT id, name FROM {table_name} WHERE name = :name",
        params={"name": HOSTILE[1]},
    )
    assert got == [[{"id": 1, "name": HOSTILE[1]}]]


def test_upsert_updates_existing_rows_and_inserts_new(
    db_url: str, table_name: str, tmp_path: Path
) -> None:
    create_items(db_url, table_name)
    first = [{"id": i, "name": f"n{i}", "qty": 1} for i in range(5)]
    second = [{"id": i, "name": f"m{i}", "qty": 2} for i in range(3, 8)]
    write(db_url, tmp_path, [first, second], table=table_name, mode="upsert", key=["id"])
    rows = sql(db_url, f"SELECT id, name, qty FROM {table_name} ORDER BY id")
    assert rows == [(i, f"n{i}", 1) for i in range(3)] + [(i, f"m{i}", 2) for i in range(3, 8)]


def test_upsert_of_key_only_columns_does_nothing_on_conflict(
    db_url: str, table_name: str, tmp_path: Path
) -> None:
    sql(db_url, f"CREATE TABLE {table_name} (id INTEGER PRIMARY KEY)")
    batch = [{"id": 1}, {"id": 2}]
    write(db_url, tmp_path, [batch, batch], table=table_name, mode="upsert", key=["id"])
    assert sql(db_url, f"SELECT id FROM {table_name} ORDER BY id") == [(1,), (2,)]


def test_a_failing_batch_rolls_back_whole(db_url: str, table_name: str, tmp_path: Path) -> None:
    create_items(db_url, table_name)
    good = [{"id": 1, "name": "a", "qty": 1}]
    bad = [{"id": 2, "name": "b", "qty": 1}, {"id": 3, "name": None, "qty": 1}]
    with pytest.raises(PermanentError) as info:
        write(db_url, tmp_path, [good, bad], table=table_name)
    assert "INSERT" not in str(info.value)  # no SQL text or parameters in the message
    assert sql(db_url, f"SELECT id FROM {table_name}") == [(1,)]
    with pytest.raises(PermanentError, match=r"(?i)duplicate|unique"):
        write(db_url, tmp_path, [[{"id": 5, "name": "c", "qty": 1}, *good]], table=table_name)
    assert sql(db_url, f"SELECT id FROM {table_name}") == [(1,)]


def test_unknown_fields_fail_or_are_dropped(db_url: str, table_name: str, tmp_path: Path) -> None:
    create_items(db_url, table_name)
    batch = [{"id": 1, "name": "a", "qty": 1, "colour": "red"}]
    with pytest.raises(PermanentError, match="'colour'"):
        write(db_url, tmp_path, [batch], table=table_name)
    write(db_url, tmp_path, [batch], table=table_name, extra_fields="ignore")
    assert sql(db_url, f"SELECT id, name FROM {table_name}") == [(1, "a")]
    with pytest.raises(PermanentError, match="does not exist"):
        write(db_url, tmp_path, [batch], table=f"{table_name}_missing")


def test_table_read_streams_in_chunks_of_batch_size(
    db_url: str, table_name: str, tmp_path: Path
) -> None:
    create_items(db_url, table_name)
    write(
        db_url,
        tmp_path,
        [[{"id": i, "name": f"n{i}", "qty": i} for i in range(2500)]],
        table=table_name,
    )
    chunks = read(db_url, tmp_path, table=table_name, columns=["id", "qty"], batch={"size": 1000})
    assert [len(c) for c in chunks] == [1000, 1000, 500]
    assert sorted(r["id"] for c in chunks for r in c) == list(range(2500))
    assert set(chunks[0][0]) == {"id", "qty"}


def test_incremental_cursor_reads_only_new_rows_and_is_kept_on_commit(
    db_url: str, table_name: str, tmp_path: Path
) -> None:
    create_items(db_url, table_name)
    state = StateStore(tmp_path / "state.db")
    try:
        write(
            db_url,
            tmp_path,
            [[{"id": i, "name": "a", "qty": i} for i in range(1, 6)]],
            table=table_name,
        )
        exact = {"cursor_snapshot": False}  # whatever other clients of the server hold open
        first = read(
            db_url, tmp_path, state, table=table_name, cursor="id", batch={"size": 2}, **exact
        )
        assert [r["id"] for c in first for r in c] == [1, 2, 3, 4, 5]
        assert state.get("p", "db", "cursor:id") == {"type": "json", "value": 5}
        write(
            db_url, tmp_path, [[{"id": i, "name": "b", "qty": i} for i in (6, 7)]], table=table_name
        )
        query = f"SELECT id, name FROM {table_name} WHERE name <> :skip"
        second = read(db_url, tmp_path, state, query=query, params={"skip": "zzz"}, cursor="id")
        assert [r["id"] for c in second for r in c] == [6, 7]
        assert read(db_url, tmp_path, state, table=table_name, cursor="id", **exact) == []
    finally:
        state.close()


def test_cursor_start_and_timestamp_cursor_round_trip(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ts.db'}"
    sql(url, "CREATE TABLE ev (id INTEGER, at TIMESTAMP)")
    sql(url, "INSERT INTO ev VALUES (1, '2024-01-01 10:00:00'), (2, '2024-02-01 10:00:00')")
    state = StateStore(tmp_path / "state.db")
    try:
        got = read(url, tmp_path, state, table="ev", cursor="id", cursor_start=1)
        assert [r["id"] for c in got for r in c] == [2]
        got = read(url, tmp_path, state, query="SELECT id, at FROM ev", cursor="at")
        assert len([r for c in got for r in c]) == 2
        assert state.get("p", "db", "cursor:at")["value"].startswith("2024-02-01")
    finally:
        state.close()


PIPELINE = """\
[pipeline]
name = "sqlsync"

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
path = "out/{{run_id}}.jsonl"
"""


def test_pipeline_run_keeps_cursor_but_dry_run_writes_nothing(
    db_url: str, table_name: str, tmp_path: Path
) -> None:
    create_items(db_url, table_name)
    write(
        db_url,
        tmp_path,
        [[{"id": i, "name": "a", "qty": i} for i in range(1, 4)]],
        table=table_name,
    )
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(url=db_url, table=table_name))
    plan = compile_file(path, env={})
    result = anyio.run(lambda: dry_run(plan))
    assert [r["id"] for r in result.sinks["out"]] == [1, 2, 3]
    assert not (tmp_path / "out").exists()
    summary = anyio.run(lambda: run(plan, observer=NullObserver(), workspace=tmp_path / "ws"))
    assert summary.ok, summary.error
    write(db_url, tmp_path, [[{"id": 9, "name": "z", "qty": 9}]], table=table_name)
    summary = anyio.run(lambda: run(plan, observer=NullObserver(), workspace=tmp_path / "ws"))
    assert summary.ok, summary.error
    outputs = sorted((tmp_path / "out").glob("*.jsonl"), key=lambda p: p.stat().st_mtime)
    assert [[json.loads(x)["id"] for x in p.read_text().splitlines()] for p in outputs] == [
        [1, 2, 3],
        [9],
    ]


def test_sqlite_relative_path_is_relative_to_the_pipeline(tmp_path: Path) -> None:
    sql(
        f"sqlite:///{tmp_path / 'rel.db'}",
        "CREATE TABLE t (id INTEGER)",
        "INSERT INTO t VALUES (7)",
    )
    assert read("sqlite:///rel.db", tmp_path, table="t") == [[{"id": 7}]]


def test_config_rules_and_resource_hides_the_password() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        SqlSourceConfig(url="sqlite://", table="t", query="SELECT 1")
    with pytest.raises(ValidationError, match="needs `key`"):
        SqlSinkConfig(url="sqlite://", inputs=["a"], table="t", mode="upsert")
    cfg = SqlSinkConfig(url="postgresql://app:s3cret@db/erp", inputs=["a"], table="t")
    assert "s3cret" not in (cfg.resource() or "") and "s3cret" not in repr(cfg)
    assert "app:***@db/erp" in (cfg.resource() or "")


def test_unreachable_server_is_transient_and_bad_sql_permanent(tmp_path: Path) -> None:
    with pytest.raises(TransientError):
        read("postgresql://postgres@127.0.0.1:1/test", tmp_path, table="t")
    with pytest.raises(PermanentError, match=r"x\.db does not exist"):
        read(f"sqlite:///{tmp_path / 'x.db'}", tmp_path, table="missing")
    sql(f"sqlite:///{tmp_path / 'x.db'}", "CREATE TABLE other (id INTEGER)")
    with pytest.raises(PermanentError, match="no such table"):
        read(f"sqlite:///{tmp_path / 'x.db'}", tmp_path, table="missing")
    with pytest.raises(PermanentError, match="no async driver"):
        read("oracle://u@h/db", tmp_path, table="t")
