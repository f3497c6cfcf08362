"""``sql`` source: a table or a query, streamed in chunks, optionally incremental by a cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from engine.components.base import Source, SourceConfig
from engine.connectors.sql.cursor import (
    SETTLED_COLUMN,
    SETTLED_SQL,
    dump_cursor,
    load_cursor,
    lookback_bound,
)
from engine.errors import PermanentError
from engine.records import Chunk

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy import ColumnElement, Row, TextClause
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
    from sqlalchemy.sql import Executable

    from engine.registry import Registry

__all__ = ["SqlSource", "SqlSourceConfig"]

Scalar = str | int | float | bool | None


class SqlSourceConfig(SourceConfig):
    """Reads rows from a database table or query (any SQLAlchemy URL), streamed in chunks."""

    type: Literal["sql"] = "sql"
    url: SecretStr = Field(
        description="SQLAlchemy URL; sync driver names are swapped for async ones "
        "(postgresql -> psycopg, mysql/mariadb -> asyncmy, sqlite -> aiosqlite). "
        "Relative SQLite paths are relative to the pipeline file.",
        examples=["postgresql://app:${env:DB_PASSWORD}@db/erp", "sqlite:///data/erp.db"],
    )
    table: str | None = Field(None, description="Table to read (`schema.table` allowed).")
    columns: list[str] | None = Field(
        None, description="Columns to read from `table`; default: all."
    )
    query: str | None = Field(
        None,
        description="A SELECT with named bound parameters (`:name`), instead of `table`.",
        examples=["SELECT * FROM orders WHERE region = :region"],
    )
    params: dict[str, Scalar] = Field(
        default_factory=dict, description="Values bound to the query's `:name` parameters."
    )
    cursor: str | None = Field(
        None,
        description="Incremental reads: a column that grows (id, updated_at). Rows are read "
        "in its order, and the next run reads only rows with a greater value; the last value "
        "is kept in the workspace state once the run succeeded.",
    )
    cursor_start: Scalar = Field(
        None, description="Lower bound (exclusive) of the first incremental run; default: none."
    )
    cursor_snapshot: bool = Field(
        True,
        description="PostgreSQL `table` reads: the saved cursor advances only past rows "
        "written by transactions older than every transaction still in flight when the run "
        "read (the snapshot's xmin), so a row committed late (id 41 after 42) is read by a "
        "later run. Rows after it are read again then: use an idempotent sink (upsert). "
        "Ignored for other databases and `query` reads.",
    )
    cursor_lookback: float | None = Field(
        None,
        gt=0,
        description="Re-read rows whose cursor is at most this far below the saved value, "
        "every run: a number for numeric cursors, seconds for date and timestamp cursors. "
        "Catches rows committed late within the window on any database; they are read "
        "again, so use an idempotent sink (upsert).",
        examples=[1000, 300],
    )

    partition_ranges: int | None = Field(
        None,
        ge=1,
        description="`engine run --workers N`: key ranges of an integer `cursor` column, "
        "cut evenly between its least and greatest value still to read; each range is a "
        "partition (default: two per worker). The cursor is saved once, after every range "
        "was read. Without an integer `cursor` the source is one partition.",
    )

    @field_validator("url")
    @classmethod
    def _url_parses(cls, url: SecretStr) -> SecretStr:
        from engine.connectors.sql.urls import check_url

        return check_url(url)

    @model_validator(mode="after")
    def _one_of_table_or_query(self) -> Self:
        if (self.table is None) == (self.query is None):
            raise ValueError("set exactly one of `table` or `query`")
        if self.params and self.query is None:
            raise ValueError("`params` are bound into `query`; a `table` read takes none")
        if self.columns is not None and self.table is None:
            raise ValueError("`columns` selects from `table`; write them in `query` instead")
        if self.cursor_lookback is not None and self.cursor is None:
            raise ValueError("`cursor_lookback` applies to incremental reads: set `cursor`")
        return self

    def extras(self) -> tuple[str, ...]:
        from engine.connectors.sql.urls import driver_extras

        return driver_extras(self.url)

    def resource(self) -> str | None:
        from engine.connectors.sql.database import public_url

        where = self.table or "query"
        return f"{public_url(self.url.get_secret_value())} {where}"


class SqlSource(Source[SqlSourceConfig]):
    _engine: AsyncEngine | None = None
    _start: Any = None
    _last: Any = None
    _seen_cursor = False
    #: a row not yet settled was read: the saved cursor stays before it
    _held = False
    #: the key range (inclusive) this partition reads
    _range: tuple[int, int] | None = None

    @property
    def _state_key(self) -> str:
        return f"cursor:{self.config.cursor}"

    def _url(self) -> str:
        from engine.connectors.sql.database import resolve_sqlite
        from engine.connectors.sql.urls import sqlite_file

        url = resolve_sqlite(self.config.url.get_secret_value(), self.context.resolve)
        db = sqlite_file(url)
        if db is not None and not db.is_file():  # connecting would create an empty one
            raise PermanentError(f"SQLite database {db} does not exist")
        return url

    async def open(self) -> None:
        from engine.connectors.sql.database import create_engine
        from engine.connectors.sql.errors import map_sql_error

        try:
            self._engine = create_engine(self._url())
        except Exception as exc:
            raise map_sql_error(exc, action="sql source") from None

    async def check(self) -> None:
        from engine.connectors.sql.database import probe

        await probe(self._url(), action="sql source")

    def _start_value(self) -> Any:
        state = self.context.state
        if state is not None:
            saved = state.get(self.context.pipeline, self.context.component_id, self._state_key)
            if saved is not None:
                return load_cursor(saved)
        return self.config.cursor_start

    def statement(self) -> tuple[Executable, dict[str, Any]]:
        """The SELECT to run and its bound values; identifiers quoted, values never inlined."""
        from sqlalchemy import bindparam, column, literal_column, select, table, text

        from engine.connectors.sql.database import split_table_name

        cfg = self.config
        params: dict[str, Any] = dict(cfg.params)
        if cfg.table is not None:
            schema, name = split_table_name(cfg.table)
            cols: list[ColumnElement[Any] | TextClause] = (
                [column(c) for c in cfg.columns] if cfg.columns else [text("*")]
            )
            stmt = select(*cols).select_from(table(name, schema=schema))
            cursor_col: ColumnElement[Any] | None = column(cfg.cursor) if cfg.cursor else None
        else:
            assert cfg.query is not None
            if cfg.cursor is None:
                return text(cfg.query), params
            sub = text(cfg.query).columns(column(cfg.cursor)).subquery("src")
            stmt = select(text("*")).select_from(sub)
            cursor_col = sub.c[cfg.cursor]
        if cursor_col is not None:
            start = self._start = self._start_value()
            if start is not None and cfg.cursor_lookback is not None:
                start = lookback_bound(start, cfg.cursor_lookback)
            if start is not None:
                stmt = stmt.where(cursor_col > bindparam("engine_cursor_start", start))
            if self._range is not None:
                low, high = self._range
                stmt = stmt.where(cursor_col >= bindparam("engine_low", low))
                stmt = stmt.where(cursor_col <= bindparam("engine_high", high))
            if self._snapshot_bound():
                stmt = stmt.add_columns(literal_column(SETTLED_SQL).label(SETTLED_COLUMN))
            stmt = stmt.order_by(cursor_col)
        return stmt, params

    def _snapshot_bound(self) -> bool:
        """Whether reads carry the settled flag: PostgreSQL table reads with a cursor."""
        from engine.connectors.sql.database import async_url

        cfg = self.config
        if not (cfg.cursor_snapshot and cfg.cursor and cfg.table is not None):
            return False
        return async_url(self._url()).get_backend_name() == "postgresql"

    async def _connect(self) -> AsyncConnection:
        from engine.connectors.sql.errors import map_sql_error

        assert self._engine is not None, "open() first"
        conn = self._engine.connect()
        try:
            await conn.start()
        except Exception as exc:
            raise map_sql_error(exc, action="sql source: connect") from None
        return conn

    async def read(self) -> AsyncIterator[Chunk]:
        from engine.connectors.sql.errors import map_sql_error

        stmt, params = self.statement()
        settled_flag = self._snapshot_bound()
        size = self.config.batch.size
        conn = await self.context.call(self._connect)
        try:
            try:
                result = await conn.stream(stmt.execution_options(yield_per=size), params)
                keys = list(map(str, result.keys()))  # plain str: orjson refuses subclasses
            except Exception as exc:
                error = map_sql_error(exc, action="sql source: query")
                if settled_flag and "xmin" in str(error):
                    raise type(error)(
                        f"{error}; cursor_snapshot reads the xmin of a table's rows: "
                        "set cursor_snapshot = false to read a view"
                    ) from None
                raise error from None
            settled = keys[-1] == SETTLED_COLUMN
            if settled:
                keys = keys[:-1]
            position = self._cursor_position(keys)
            partitions = result.partitions(size).__aiter__()
            while True:
                try:
                    rows = await partitions.__anext__()
                except StopAsyncIteration:
                    break
                except Exception as exc:
                    raise map_sql_error(exc, action="sql source: fetch") from None
                if position is not None and rows:
                    if settled:
                        self._observe_settled(rows, position)
                    else:
                        self._last = rows[-1][position]
                        self._seen_cursor = True
                if settled:
                    yield Chunk([dict(zip(keys, row[:-1], strict=True)) for row in rows])
                else:
                    yield Chunk([dict(zip(keys, row, strict=True)) for row in rows])
        finally:
            await conn.close()

    def _observe_settled(self, rows: Sequence[Row[Any]], position: int) -> None:
        """Advance over the settled rows, up to the first one whose transaction may be
        younger than a transaction still in flight."""
        if self._held:
            return
        for row in rows:
            if not row[-1]:
                self._held = True
                return
            self._last = row[position]
            self._seen_cursor = True

    def _cursor_position(self, keys: list[str]) -> int | None:
        wanted = self.config.cursor
        if wanted is None:
            return None
        lowered = [k.lower() for k in keys]
        if wanted in keys:
            return keys.index(wanted)
        if wanted.lower() in lowered:
            return lowered.index(wanted.lower())
        raise PermanentError(f"cursor column {wanted!r} is not among the columns read: {keys}")

    async def commit(self) -> None:
        if self._seen_cursor:
            self._save(self._last, self._start)

    def _save(self, last: Any, start: Any) -> None:
        state = self.context.state
        if self.context.dry_run or state is None or last is None:
            return
        if start is not None and not last > start:
            return  # only re-read rows (look-back): the cursor never moves back
        state.set(
            self.context.pipeline, self.context.component_id, self._state_key, dump_cursor(last)
        )

    # -- partitions -----------------------------------------------------------------------
    async def partitions(self, workers: int) -> list[dict[str, Any]] | None:
        """Key ranges of an integer cursor, from its least and greatest value to read."""
        from sqlalchemy import Select, column, func, select

        from engine.connectors.sql.errors import map_sql_error

        if self.config.cursor is None:
            return None
        stmt, params = self.statement()
        if not isinstance(stmt, Select):
            return None
        sub = stmt.order_by(None).subquery("engine_keys")
        key: Any = column(self.config.cursor)
        conn = await self.context.call(self._connect)
        try:
            query = select(func.min(key), func.max(key)).select_from(sub)
            row = (await conn.execute(query, params)).one()
        except Exception as exc:
            raise map_sql_error(exc, action="sql source: key range") from None
        finally:
            await conn.close()
        low, high = row
        if type(low) is not int or type(high) is not int:
            return None  # nothing to read, or keys that do not split evenly
        count = self.config.partition_ranges or 2 * workers
        step = max(-(-(high - low + 1) // count), 1)
        return [{"low": at, "high": min(at + step - 1, high)} for at in range(low, high + 1, step)]

    def use_partition(self, spec: dict[str, Any]) -> None:
        if spec:
            self._range = (int(spec["low"]), int(spec["high"]))

    def partition_outcome(self) -> dict[str, Any] | None:
        if self._range is None:
            return None  # read it all: its commit is recorded for the run
        last = dump_cursor(self._last) if self._seen_cursor else None
        return {"last": last, "held": self._held}

    async def commit_partitions(self, outcomes: list[dict[str, Any] | None]) -> None:
        """The cursor goes to the last row read in the last range, or stays before the
        first row read that was not settled (PostgreSQL snapshots)."""
        last = None
        for outcome in outcomes:
            if outcome is None:
                return  # read as one partition: its commit was recorded
            if outcome["last"] is not None:
                last = load_cursor(outcome["last"])
            if outcome["held"]:
                break
        start = self._start_value()
        self._save(last, start)

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def register(registry: Registry) -> None:
    registry.register(SqlSourceConfig, SqlSource)
