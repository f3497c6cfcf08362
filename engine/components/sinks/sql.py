"""``sql`` sink: insert or upsert records into a table, one transaction per batch, staged by
``write`` and committed by ``publish`` once the audit trail describing it is durable.

Values are converted to the form of their column's type (:mod:`engine.connectors.sql.values`).
A record the database refuses (a bad value, a constraint) is a record-level error: under
``on_error = "skip"`` or ``"dead_letter"`` the batch is written again row by row, in one
transaction with a savepoint per row, so the other records are written and each refused one
is routed with its reason; under ``"fail"`` the batch is rolled back whole.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import anyio
from pydantic import Field, SecretStr, field_validator, model_validator

from engine.components.base import OnError, Sink, SinkConfig, WrittenResource
from engine.errors import PartialWriteError, PermanentError
from engine.records import Batch, Record, Rejected

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction
    from sqlalchemy.sql.dml import Insert

    from engine.connectors.sql.values import Conversion
    from engine.registry import Registry

__all__ = ["SqlSink", "SqlSinkConfig"]


class SqlSinkConfig(SinkConfig):
    """Inserts or upserts records into a database table; each batch is one transaction,
    committed once the audit trail describing it is durable."""

    type: Literal["sql"] = "sql"
    url: SecretStr = Field(
        description="SQLAlchemy URL; sync driver names are swapped for async ones.",
        examples=["postgresql://app:${env:DB_PASSWORD}@db/erp"],
    )
    table: str = Field(description="Target table (`schema.table` allowed); it must exist.")
    mode: Literal["insert", "upsert"] = Field(
        "insert",
        description="`insert`, or `upsert`: update the row with the same `key` values "
        "(ON CONFLICT on PostgreSQL/SQLite, ON DUPLICATE KEY UPDATE on MySQL/MariaDB).",
    )
    key: list[str] = Field(
        default_factory=list,
        description="Key columns of `upsert` (a primary key or unique constraint).",
    )
    columns: list[str] | None = Field(
        None,
        description="Columns to write; default: the table's columns present in the first "
        "record of each batch (a field missing from a later record is written as NULL).",
    )
    extra_fields: Literal["error", "ignore"] = Field(
        "error", description="A record field that is not a column of the table: fail, or drop it."
    )

    @field_validator("url")
    @classmethod
    def _url_parses(cls, url: SecretStr) -> SecretStr:
        from engine.connectors.sql.urls import check_url

        return check_url(url)

    @model_validator(mode="after")
    def _upsert_needs_key(self) -> Self:
        if self.mode == "upsert" and not self.key:
            raise ValueError("mode `upsert` needs `key`, the columns that identify a row")
        return self

    def extras(self) -> tuple[str, ...]:
        from engine.connectors.sql.urls import driver_extras

        return driver_extras(self.url)

    def resource(self) -> str | None:
        from engine.connectors.sql.database import public_url

        return f"{public_url(self.url.get_secret_value())} {self.table}"

    def written_resource(self, base: Path) -> WrittenResource | None:
        from engine.connectors.sql.urls import database_identity

        database = database_identity(self.url.get_secret_value(), base)
        if database is None:
            return None
        shown = f"table {self.table} of {database}"
        return WrittenResource(f"{database} {self.table.lower()}", shown, "table")


class SqlSink(Sink[SqlSinkConfig]):
    durable_on_write = False
    _engine: AsyncEngine | None = None
    _table: Table | None = None
    _conn: AsyncConnection | None = None
    _tx: AsyncTransaction | None = None

    def _url(self) -> str:
        from engine.connectors.sql.database import resolve_sqlite

        return resolve_sqlite(self.config.url.get_secret_value(), self.context.resolve)

    async def open(self) -> None:
        from sqlalchemy import MetaData, Table

        from engine.connectors.sql.database import create_engine, split_table_name
        from engine.connectors.sql.errors import map_sql_error

        engine = create_engine(self._url())
        schema, name = split_table_name(self.config.table)

        def reflect(sync: Connection) -> Table:
            return Table(name, MetaData(), schema=schema, autoload_with=sync)

        try:
            async with engine.connect() as conn:
                self._table = await conn.run_sync(reflect)
        except Exception as exc:
            await engine.dispose()
            if type(exc).__name__ == "NoSuchTableError":
                raise PermanentError(f"table {self.config.table!r} does not exist") from None
            raise map_sql_error(exc, action="sql sink: open") from None
        self._engine = engine
        self._columns = frozenset(self._table.c.keys())
        self._statements: dict[tuple[str, ...], Insert] = {}
        wanted = [*self.config.key, *(self.config.columns or ())]
        unknown = [c for c in wanted if c not in self._columns]
        if unknown:
            raise PermanentError(
                f"{self.config.table} has no column {', '.join(map(repr, unknown))}; "
                f"its columns: {', '.join(sorted(self._columns))}"
            )
        self._dialect = engine.dialect.name
        from engine.connectors.sql.values import converter

        self._conversions: dict[str, Conversion] = {}
        for col in self._table.c:
            conversion = converter(col)
            if conversion is not None:
                self._conversions[col.key] = conversion

    async def check(self) -> None:
        from engine.connectors.sql.database import probe

        await probe(self._url(), action="sql sink")

    def _statement(self, columns: tuple[str, ...]) -> Insert:
        from sqlalchemy import insert

        from engine.connectors.sql.dialect import upsert_statement

        stmt = self._statements.get(columns)
        if stmt is None:
            assert self._table is not None
            if self.config.mode == "upsert":
                stmt = upsert_statement(self._dialect, self._table, columns, self.config.key)
            else:
                stmt = insert(self._table)
            self._statements[columns] = stmt
        return stmt

    def rows(
        self, batch: Batch
    ) -> tuple[tuple[str, ...], list[tuple[int, Record, dict[str, Any]]], list[Rejected]]:
        """The columns written, each record with its bound values, and the records refused."""
        table_cols = self._columns
        if self.config.columns is not None:
            cols = tuple(self.config.columns)
        else:
            cols = tuple(c for c in batch[0] if c in table_cols)
        if self.config.extra_fields == "error":
            for index, record in enumerate(batch):
                if not record.keys() <= table_cols:
                    extra = sorted(set(record) - table_cols)
                    raise PermanentError(
                        f"record {index + 1} has field(s) {', '.join(map(repr, extra))} that "
                        f'{self.config.table} has no column for; set extra_fields = "ignore" '
                        "or drop them in a map transform"
                    )
        missing = [k for k in self.config.key if k not in cols]
        if missing:
            raise PermanentError(f"upsert key column(s) {missing} missing from the records")
        if not cols:
            raise PermanentError(f"no record field matches a column of {self.config.table}")
        plan = [(c, *self._conversions.get(c, (None, ()))) for c in cols]
        try:
            return cols, _bind_all(batch, plan), []
        except ValueError:
            pass
        rows = []
        refused: list[Rejected] = []
        for index, record in enumerate(batch):
            values: dict[str, Any] = {}
            for name, fn, _ in plan:
                value = record.get(name)
                if value is not None and fn is not None:
                    try:
                        value = fn(value)
                    except ValueError as exc:
                        refused.append(self._refused(record, index, name, exc))
                        break
                values[name] = value
            else:
                rows.append((index, record, values))
        return cols, rows, refused

    def _refused(self, record: Record, index: int, name: str, exc: ValueError) -> Rejected:
        assert self._table is not None
        kind = self._table.c[name].type
        reason = f"{self.config.table}.{name} ({kind}): {exc}"
        return Rejected(record, reason, f"record {index + 1} of the batch")

    async def write(self, batch: Batch) -> None:
        if not batch:
            return
        from engine.connectors.sql.errors import SqlDataError, map_sql_error

        assert self._engine is not None, "open() first"
        cols, rows, refused = self.rows(batch)
        # on_error = "fail": a bad record fails the batch whole, nothing of it is written
        per_record = self.config.on_error is not OnError.FAIL
        if refused and not per_record:
            first = refused[0]
            raise PermanentError(f"{first.location}: {first.reason}")
        stmt = self._statement(cols)
        if rows:
            try:
                conn = await self._begin()
                await conn.execute(stmt, [values for _, _, values in rows])
            except Exception as exc:
                # what is staged since the last publish goes (the runtime publishes each batch)
                await self._discard()
                error = map_sql_error(exc, action=f"sql sink: write {len(rows)} rows")
                if not isinstance(error, SqlDataError) or not per_record:
                    raise error from None
                refused += await self._write_each(stmt, rows)
        if refused:
            first = refused[0]
            raise PartialWriteError(
                f"{len(refused)} of {len(batch)} records refused: {first.location}: {first.reason}",
                refused,
            )

    async def _begin(self) -> AsyncConnection:
        """The staged transaction's connection, begun by the first write after a publish."""
        assert self._engine is not None, "open() first"
        if self._conn is None:
            self._conn = await self._engine.connect()
        if self._tx is None:
            self._tx = await self._conn.begin()
        return self._conn

    async def _write_each(
        self, stmt: Insert, rows: list[tuple[int, Record, dict[str, Any]]]
    ) -> list[Rejected]:
        """Row by row, a savepoint each: the refused rows, with the database's reason."""
        from engine.connectors.sql.errors import SqlDataError, map_sql_error

        assert self._engine is not None
        refused: list[Rejected] = []
        try:
            conn = await self._begin()
            for index, record, values in rows:
                reason = await self._write_one(conn, stmt, values)
                if reason is not None:
                    location = f"record {index + 1} of the batch"
                    refused.append(Rejected(record, reason, location))
        except SqlDataError:
            await self._discard()
            raise
        except Exception as exc:
            await self._discard()
            raise map_sql_error(exc, action=f"sql sink: write {len(rows)} rows") from None
        return refused

    async def _write_one(
        self, conn: AsyncConnection, stmt: Insert, values: dict[str, Any]
    ) -> str | None:
        from engine.connectors.sql.errors import SqlDataError, map_sql_error

        try:
            async with conn.begin_nested():
                await conn.execute(stmt, [values])
        except Exception as exc:
            error = map_sql_error(exc, action="sql sink: write")
            if isinstance(error, SqlDataError):
                return str(error)
            raise error from None
        return None

    async def publish(self) -> None:
        """Commit the staged transaction."""
        from engine.connectors.sql.errors import map_sql_error

        tx, self._tx = self._tx, None
        if tx is None:
            return
        try:
            await tx.commit()
        except Exception as exc:
            await self._discard()
            raise map_sql_error(exc, action="sql sink: commit") from None

    async def _discard(self) -> None:
        """Roll back what is staged and drop the connection (it may be broken)."""
        tx, conn = self._tx, self._conn
        self._tx = self._conn = None
        with contextlib.suppress(Exception):  # the rollback of a connection already gone
            if tx is not None and tx.is_active:
                await tx.rollback()
        with contextlib.suppress(Exception):
            if conn is not None:
                await conn.close()

    async def close(self, *, success: bool) -> None:
        try:
            if success:
                await self.publish()
        finally:
            with anyio.CancelScope(shield=True):
                await self._discard()
                if self._engine is not None:
                    await self._engine.dispose()
                    self._engine = None


def _bind_all(
    batch: Batch, plan: list[tuple[str, Any, tuple[type, ...]]]
) -> list[tuple[int, Record, dict[str, Any]]]:
    """The fast path of :meth:`SqlSink.rows`: values of their column's type kept as they are;
    raises ``ValueError`` at the first that does not fit (the slow path then names it)."""
    out = []
    for index, record in enumerate(batch):
        values = {}
        for name, fn, keep in plan:
            value = record.get(name)
            if value is not None and fn is not None and type(value) not in keep:
                value = fn(value)
            values[name] = value
        out.append((index, record, values))
    return out


def register(registry: Registry) -> None:
    registry.register(SqlSinkConfig, SqlSink)
