"""Incremental reads: the highest cursor value seen (e.g. ``updated_at``) kept between runs.

The value read at the start of a run is sent as a query parameter; the highest value among
the records read is saved in the workspace's state store only when the run succeeds
(``Source.commit``), so a failed run is read again from the same place. Dry runs read the
saved value too (the preview shows what a run would read) and save nothing.

Values are compared by type (:mod:`engine.connectors.http.cursor_values`); the value saved
and sent back is the record's own, unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.connectors.context import ConnectorContext
from engine.connectors.http.cursor_values import (
    CursorKey,
    CursorType,
    CursorTypeError,
    cursor_key,
    greater,
)
from engine.errors import DataError, PermanentError
from engine.mapping import Expression, compile_expression
from engine.records import Batch

__all__ = ["CursorTracker", "IncrementalSpec"]

STATE_KEY = "cursor"


class IncrementalSpec(BaseModel):
    """Read only what changed since the last successful run."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cursor_field: str = Field(
        description="JMESPath to the record's cursor value.", examples=["updated_at"]
    )
    param: str = Field(
        description="Query parameter (or GraphQL variable) that sends the last value.",
        examples=["updated_at_min"],
    )
    initial: str | int | float | None = Field(
        None, description="Value for the first run; without it the first run reads everything."
    )
    cursor_type: CursorType = Field(
        "auto",
        description="How cursor values are compared: `int` or `decimal` (numbers and numeric "
        "strings as numbers), `timestamp` (ISO-8601, compared as instants across offsets and "
        "`Z`), `string` (text order). `auto`: JSON numbers and plain numeric strings as "
        "numbers, ISO-8601 date-times as instants, other strings as text; values of "
        "different kinds are an error, never compared as text.",
        examples=["timestamp", "int"],
    )

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        yield ("cursor_field",), self.cursor_field


class CursorTracker:
    """Loads the saved cursor, watches records for a higher one, saves it on commit."""

    def __init__(
        self,
        spec: IncrementalSpec,
        context: ConnectorContext,
        expressions: Callable[[tuple[str | int, ...], str], Expression] | None = None,
    ) -> None:
        """``expressions``: the compiled expressions of the ``incremental`` table, by key path."""
        self.spec = spec
        self.context = context
        self._field = (
            expressions(("cursor_field",), spec.cursor_field)
            if expressions is not None
            else compile_expression(spec.cursor_field)
        )
        state = context.state
        saved = (
            state.get(context.pipeline, context.component_id, STATE_KEY)
            if state is not None
            else None
        )
        self.start: Any = saved if saved is not None else spec.initial
        self.highest: Any = self.start
        self._highest_key: CursorKey | None = None
        if self.start is not None:
            origin = "saved cursor" if saved is not None else "`initial`"
            try:
                self._highest_key = cursor_key(self.start, spec.cursor_type)
            except CursorTypeError as exc:
                raise PermanentError(
                    f"incremental {origin} {self.start!r} does not fit cursor_type "
                    f"{spec.cursor_type!r}: {exc}"
                ) from None

    def params(self) -> dict[str, Any]:
        return {} if self.start is None else {self.spec.param: self.start}

    def observe(self, records: Batch, source: str | None = None) -> None:
        """Keep the highest cursor of ``records`` (one page, named by ``source``)."""
        search = self._field.search
        kind = self.spec.cursor_type
        highest, highest_key = self.highest, self._highest_key
        for index, record in enumerate(records):
            value = search(record)
            if value is None:
                continue
            try:
                key = cursor_key(value, kind)
                if highest_key is None or greater(key, highest_key):
                    highest, highest_key = value, key
            except CursorTypeError as exc:
                raise DataError(
                    f"incremental cursor_field {self.spec.cursor_field!r}: {exc} "
                    f"(highest so far {highest!r}); set cursor_type to "
                    "int, decimal, timestamp or string",
                    source=source,
                    record=index + 1,
                ) from None
        self.highest, self._highest_key = highest, highest_key

    def commit(self) -> None:
        state = self.context.state
        if state is None or self.context.dry_run or self.highest is None:
            return
        if self.highest != self.start:
            state.set(self.context.pipeline, self.context.component_id, STATE_KEY, self.highest)
