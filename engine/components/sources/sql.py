"""``sql`` source: a table or a query, streamed in chunks, optionally incremental by a cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator

from engine.components.base import Source, SourceConfig
from engine.connectors.sql.cursor import dump_cursor, load_cursor
from engine.errors import PermanentError
from engine.records import Chunk

if TYPE_CHECKING:
    from sqlalchemy import ColumnElement, TextClause
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
        return self

    def resource(self) -> str | None:
        from engine.connectors.sql.database import public_url

        where = self.table or "query"
        return f"{public_url(self.url.get_secret_value())} {where}"


class SqlSource(Source[SqlSourceConfig]):
    _engine: AsyncEngine | None = None
    _last: Any = None
    _seen_cursor = False

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
        from sqlalchemy import bindparam, column, select, table, text

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
            start = self._start_value()
            if start is not None:
                stmt = stmt.where(cursor_col > bindparam("engine_cursor_start", start))
            stmt = stmt.order_by(cursor_col)
        return stmt, params

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
        size = self.config.batch.size
        conn = await self.context.call(self._connect)
        try:
            try:
                result = await conn.stream(stmt.execution_options(yield_per=size), params)
                keys = list(map(str, result.keys()))  # plain str: orjson refuses subclasses
            except Exception as exc:
                raise map_sql_error(exc, action="sql source: query") from None
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
                    self._last = rows[-1][position]
                    self._seen_cursor = True
                yield Chunk([dict(zip(keys, row, strict=True)) for row in rows])
        finally:
            await conn.close()

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
        state = self.context.state
        if self.context.dry_run or state is None or not self._seen_cursor:
            return
        if self._last is None:
            return
        state.set(
            self.context.pipeline,
            self.context.component_id,
            self._state_key,
            dump_cursor(self._last),
        )

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None


def register(registry: Registry) -> None:
    registry.register(SqlSourceConfig, SqlSource, type="sql", summary=SqlSourceConfig.__doc__ or "")
