"""Typed values through the ``sql`` sink (upserts) and back through the ``sql`` source.

Against the machine's PostgreSQL and MariaDB: ISO timestamps with offsets, exact decimals,
booleans, NULLs and unicode; bad values are record-level errors routed by ``on_error``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest

from engine.components.base import ComponentContext
from engine.components.sources.sql import SqlSource, SqlSourceConfig
from engine.errors import PartialWriteError, PermanentError
from engine.pipeline import compile_file, run
from engine.records import Batch
from engine.runtime.observer import NullObserver
from tests.support.data import MARIADB_URL, POSTGRES_URL, require_service, sql, write

DDL = {
    "postgresql": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, ts TIMESTAMPTZ, "
    "ts_utc TIMESTAMP(6), amount NUMERIC(30,10), flag BOOLEAN, note VARCHAR(40), d DATE)",
    "mariadb": "CREATE TABLE {t} (id INTEGER PRIMARY KEY, ts DATETIME(6), "
    "ts_utc DATETIME(6), amount DECIMAL(30,10), flag BOOLEAN, note VARCHAR(40), d DATE) "
    "CHARACTER SET utf8mb4",
}

FIRST: Batch = [
    {
        "id": 1,
        "ts": "2026-03-01T10:00:00.123456+05:30",
        "ts_utc": "2026-03-01T10:00:00.123456+05:30",
        "amount": "-0.0000000001",
        "flag": True,
        "note": "ünïcödé 日本 🚀 \u2028",
        "d": "2026-03-01",
    },
    {
        "id": 2,
        "ts": "2026-03-01T04:30:00Z",
        "ts_utc": "2026-03-01T04:30:00Z",
        "amount": 12.5,
        "flag": False,
        "note": "x' OR '1'='1",
        "d": None,
    },
    {"id": 3, "ts": None, "ts_utc": None, "amount": None, "flag": None, "note": None, "d": None},
]
#: the upsert's second batch: record 2 changes, record 4 is new
SECOND: Batch = [
    {**FIRST[1], "amount": "12345678901234567890.1234567890", "flag": "true", "note": "ß"},
    {
        "id": 4,
        "ts": "2026-12-31T23:59:59.999999-08:00",
        "ts_utc": "2026-12-31T23:59:59.999999-08:00",
        "amount": "0",
        "flag": 0,
        "note": "",
        "d": "2027-01-01",
    },
]


@pytest.fixture(params=["postgresql", "mariadb"])
def typed_table(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, str]]:
    """(dialect, url, table): a table of typed columns, dropped afterwards."""
    dialect = request.param
    url = POSTGRES_URL if dialect == "postgresql" else MARIADB_URL
    require_service("postgres" if dialect == "postgresql" else "mariadb", url)
    name = f"typed_{uuid.uuid4().hex[:10]}"
    sql(url, DDL[dialect].format(t=name))
    yield dialect, url, name
    sql(url, f"DROP TABLE IF EXISTS {name}")


def context(tmp_path: Path) -> ComponentContext:
    return ComponentContext(component_id="db", pipeline="p", base_dir=tmp_path, workspace=tmp_path)


def read_back(url: str, tmp_path: Path, table: str) -> dict[int, dict[str, Any]]:
    source = SqlSource(SqlSourceConfig(url=url, table=table, cursor="id"), context(tmp_path))

    async def main() -> list[dict[str, Any]]:
        await source.open()
        try:
            return [r async for chunk in source.read() for r in chunk.records]
        finally:
            await source.close()

    return {r["id"]: r for r in anyio.run(main)}


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_values_round_trip_exactly_through_upserts_and_the_sql_source(
    typed_table: tuple[str, str, str], tmp_path: Path
) -> None:
    dialect, url, table = typed_table
    write(url, tmp_path, [FIRST, SECOND], table=table, mode="upsert", key=["id"])
    rows = read_back(url, tmp_path, table)
    assert sorted(rows) == [1, 2, 3, 4]
    expected = {1: FIRST[0], 2: SECOND[0], 3: FIRST[2], 4: SECOND[1]}
    for key, record in expected.items():
        row = rows[key]
        assert row["note"] == record["note"]
        for column in ("ts", "ts_utc"):
            if record[column] is None:
                assert row[column] is None
                continue
            want = instant(record[column])
            if dialect == "postgresql" and column == "ts":
                assert row[column] == want  # timestamptz: the same instant
            else:
                # a column without a zone holds the instant in UTC
                assert row[column] == want.astimezone(UTC).replace(tzinfo=None)
        if record["amount"] is None:
            assert row["amount"] is None
        else:
            assert isinstance(row["amount"], Decimal)
            assert row["amount"] == Decimal(str(record["amount"]))
        if record["d"] is None:
            assert row["d"] is None
        else:
            assert row["d"] == date.fromisoformat(record["d"])
    # booleans: PostgreSQL has them; MariaDB's BOOLEAN is TINYINT(1) and reads back 0/1
    flags = [rows[k]["flag"] for k in (1, 2, 3, 4)]
    assert flags == [True, True, None, False]
    if dialect == "postgresql":
        assert [type(f) for f in flags if f is not None] == [bool, bool, bool]
    else:
        assert [f for f in flags if f is not None] == [1, 1, 0]


def test_a_value_the_column_cannot_hold_is_a_record_error(
    typed_table: tuple[str, str, str], tmp_path: Path
) -> None:
    _, url, table = typed_table
    batch: Batch = [
        {"id": 10, "ts": "2026-03-01T10:00:00+05:30", "amount": "1.5"},
        {"id": 11, "ts": "yesterday", "amount": "1"},
        {"id": 12, "ts": None, "amount": "lots"},
        {"id": 13, "ts": None, "amount": "2"},
    ]
    with pytest.raises(PartialWriteError) as caught:
        write(url, tmp_path, [batch], table=table, on_error="dead_letter")
    refused = caught.value.rejected
    assert [r.record["id"] for r in refused] == [11, 12]
    assert "ts" in refused[0].reason and "'yesterday' is not an ISO-8601 timestamp" in (
        refused[0].reason
    )
    assert refused[0].location == "record 2 of the batch"
    assert "'lots' is not a number" in refused[1].reason
    assert sql(url, f"SELECT id FROM {table} ORDER BY id") == [(10,), (13,)]

    # PostgreSQL would take 'yesterday' or 'now' for a timestamp: the sink refuses them
    with pytest.raises(PartialWriteError, match="'now' is not an ISO-8601 timestamp"):
        write(url, tmp_path, [[{"id": 14, "ts": "now"}]], table=table, on_error="skip")

    # on_error = "fail": the batch is refused whole, nothing of it written
    with pytest.raises(PermanentError, match="record 2 of the batch"):
        write(url, tmp_path, [[{"id": 20, "flag": 1}, {"id": 21, "flag": "maybe"}]], table=table)
    assert sql(url, f"SELECT id FROM {table} WHERE id >= 20") == []


def test_values_the_database_refuses_are_routed_per_record_and_never_retried(
    typed_table: tuple[str, str, str], tmp_path: Path
) -> None:
    _, url, table = typed_table
    data = tmp_path / "in.jsonl"
    records = [
        {"id": 1, "note": "fits", "amount": None},
        {"id": 2, "note": "x" * 100, "amount": None},  # longer than VARCHAR(40)
        {"id": 3, "note": "also fits", "amount": "99999999999999999999.5"},
        {"id": 4, "note": None, "amount": "1" * 25},  # more digits than NUMERIC(30,10) holds
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    file = tmp_path / "p.toml"
    file.write_text(
        f"""
[pipeline]
name = "typed"

[dead_letter]
path = "{tmp_path / "dead.jsonl"}"

[sources.in]
type = "file"
path = "{data}"

[sinks.db]
type = "sql"
inputs = ["in"]
url = "{url}"
table = "{table}"
mode = "upsert"
key = ["id"]
on_error = "dead_letter"
"""
    )
    summary = anyio.run(lambda: run(compile_file(file), observer=NullObserver()))
    assert summary.ok, summary.error
    stats = summary.stages["db"]
    assert (stats.records_out, stats.rejected, stats.retries) == (2, 2, 0)
    assert sql(url, f"SELECT id FROM {table} ORDER BY id") == [(1,), (3,)]
    dead = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert sorted(d["record"]["id"] for d in dead) == [2, 4]
    assert "x" * 100 not in json.dumps([d.get("reason") for d in dead])


def test_constraint_violations_are_routed_per_record_on_every_backend(
    db_url: str, table_name: str, tmp_path: Path
) -> None:
    sql(db_url, f"CREATE TABLE {table_name} (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL)")
    batch: Batch = [
        {"id": 1, "name": "a"},
        {"id": 2, "name": None},  # NOT NULL
        {"id": 3, "name": "c"},
        {"id": 1, "name": "again"},  # duplicate key in an insert
    ]
    with pytest.raises(PartialWriteError) as caught:
        write(db_url, tmp_path, [batch], table=table_name, on_error="skip")
    assert [(r.record["id"], r.location) for r in caught.value.rejected] == [
        (2, "record 2 of the batch"),
        (1, "record 4 of the batch"),
    ]
    assert sql(db_url, f"SELECT id, name FROM {table_name} ORDER BY id") == [(1, "a"), (3, "c")]
