"""SQL cursors and rows committed late: a transaction holds id 400001 open while 400002 commits.

Real transactions on the machine's PostgreSQL and MariaDB. Other clients of the same server
may hold transactions too, so the assertions are about rows never skipped, not about how
far the cursor advances on a given run.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from engine.components.base import ComponentContext
from engine.components.sources.sql import SqlSource, SqlSourceConfig
from engine.connectors.sql.database import create_engine
from engine.errors import PermanentError
from engine.state import StateStore
from tests.support.data import MARIADB_URL, POSTGRES_URL, require_service, sql

HELD, LATER = 400001, 400002


def late_table(url: str, service: str, options: str = "") -> Iterator[str]:
    """A table holding id 400000, dropped afterwards."""
    require_service(service, url)
    name = f"late_{uuid.uuid4().hex[:10]}"
    sql(url, f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, note TEXT) {options}")
    sql(url, f"INSERT INTO {name} VALUES (400000, 'first')")
    yield name
    sql(url, f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def pg_table() -> Iterator[str]:
    yield from late_table(POSTGRES_URL, "postgres")


@pytest.fixture
def maria_table() -> Iterator[str]:
    yield from late_table(MARIADB_URL, "mariadb", "ENGINE=InnoDB")


class Reader:
    """Incremental runs of one ``sql`` source over a state store, as separate runs would."""

    def __init__(self, tmp_path: Path, url: str, table: str, **options: Any) -> None:
        self.state = StateStore(tmp_path / "state.db")
        self.context = ComponentContext(
            component_id="db", pipeline="p", base_dir=tmp_path, workspace=tmp_path, state=self.state
        )
        options.setdefault("cursor", "id")
        self.config = SqlSourceConfig(url=url, table=table, **options)
        self.read_ids: list[int] = []

    async def run(self) -> list[int]:
        source = SqlSource(self.config, self.context)
        await source.open()
        try:
            ids = [r["id"] async for chunk in source.read() for r in chunk.records]
            await source.commit()
        finally:
            await source.close()
        self.read_ids += ids
        return ids

    @property
    def saved(self) -> int | None:
        value = self.state.get("p", "db", "cursor:id")
        return None if value is None else int(value["value"])


async def scenario(url: str, table: str, reader: Reader) -> tuple[list[int], list[int]]:
    """Run, hold 400001 open, commit 400002, run, commit 400001, run: (run 2 ids, run 3 ids)."""
    await reader.run()
    holder = create_engine(url)
    try:
        async with holder.connect() as held:
            await held.begin()
            await held.execute(text(f"INSERT INTO {table} VALUES ({HELD}, 'held')"))
            writer = create_engine(url)
            try:
                async with writer.begin() as conn:
                    await conn.execute(text(f"INSERT INTO {table} VALUES ({LATER}, 'later')"))
            finally:
                await writer.dispose()
            during = await reader.run()
            await held.commit()
    finally:
        await holder.dispose()
    after = await reader.run()
    return during, after


def test_postgresql_snapshot_bound_never_skips_the_late_committed_row(
    tmp_path: Path, pg_table: str
) -> None:
    reader = Reader(tmp_path, POSTGRES_URL, pg_table)
    during, after = anyio.run(scenario, POSTGRES_URL, pg_table, reader)
    assert HELD not in during  # not visible yet
    assert LATER in during  # delivered at once...
    assert HELD in after  # ...and the held row is read once it commits
    saved = reader.saved
    assert saved is None or saved <= LATER

    # later runs converge once no older transaction is in flight anywhere on the server
    deadline = time.monotonic() + 60
    while reader.saved != LATER and time.monotonic() < deadline:
        anyio.run(reader.run)
        time.sleep(0.2)
    if reader.saved == LATER:
        assert anyio.run(reader.run) == []
    else:  # only another client's long transaction may hold the cursor back this long
        others = "SELECT count(*) FROM pg_stat_activity WHERE backend_xid IS NOT NULL"
        assert sql(POSTGRES_URL, others)[0][0] > 0, "the cursor is held back for no reason"
    assert set(reader.read_ids) == {400000, HELD, LATER}
    reader.state.close()


def test_postgresql_without_the_bound_skips_it(tmp_path: Path, pg_table: str) -> None:
    """What the bound prevents: the cursor moves past 400001 while it is in flight."""
    reader = Reader(tmp_path, POSTGRES_URL, pg_table, cursor_snapshot=False)
    during, after = anyio.run(scenario, POSTGRES_URL, pg_table, reader)
    assert LATER in during
    assert reader.saved == LATER
    assert HELD not in after and HELD not in reader.read_ids
    reader.state.close()


def test_mariadb_lookback_window_rereads_the_late_committed_row(
    tmp_path: Path, maria_table: str
) -> None:
    reader = Reader(tmp_path, MARIADB_URL, maria_table, cursor_lookback=10)
    during, after = anyio.run(scenario, MARIADB_URL, maria_table, reader)
    assert HELD not in during and LATER in during
    assert reader.saved == LATER
    assert HELD in after  # within the window below the saved cursor
    assert reader.saved == LATER  # re-reading never moves the cursor back
    assert anyio.run(reader.run) == [400000, HELD, LATER]  # the window is re-read every run
    assert set(reader.read_ids) == {400000, HELD, LATER}
    reader.state.close()


def test_lookback_on_timestamps_and_its_rules(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ev.db'}"
    sql(url, "CREATE TABLE ev (id INTEGER, at TIMESTAMP)")
    sql(url, "INSERT INTO ev VALUES (1, '2024-01-01 10:00:00'), (2, '2024-01-01 10:10:00')")
    reader = Reader(tmp_path, url, "ev", cursor="at", cursor_lookback=300)
    assert anyio.run(reader.run) == [1, 2]
    sql(url, "INSERT INTO ev VALUES (3, '2024-01-01 10:07:00')")  # committed late, 3 min back
    sql(url, "INSERT INTO ev VALUES (4, '2024-01-01 09:00:00')")  # outside the window
    assert anyio.run(reader.run) == [3, 2]
    assert reader.state.get("p", "db", "cursor:at")["value"].startswith("2024-01-01 10:10")
    reader.state.close()
    with pytest.raises(ValidationError, match="cursor_lookback"):
        SqlSourceConfig(url=url, table="ev", cursor_lookback=5)


def test_a_view_read_with_the_snapshot_bound_says_how_to_read_it(
    tmp_path: Path, pg_table: str
) -> None:
    view = f"{pg_table}_v"
    sql(POSTGRES_URL, f"CREATE VIEW {view} AS SELECT * FROM {pg_table}")
    try:
        bound = Reader(tmp_path, POSTGRES_URL, view)
        with pytest.raises(PermanentError, match="set cursor_snapshot = false to read a view"):
            anyio.run(bound.run)
        bound.state.close()
        reader = Reader(tmp_path, POSTGRES_URL, view, cursor_snapshot=False)
        assert anyio.run(reader.run) == [400000]
        reader.state.close()
    finally:
        sql(POSTGRES_URL, f"DROP VIEW IF EXISTS {view}")
