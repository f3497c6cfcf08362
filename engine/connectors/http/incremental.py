"""Incremental reads: the highest cursor value seen (e.g. ``updated_at``) kept between runs.

The value read at the start of a run is sent as a query parameter; the highest value among
the records read is saved in the workspace's state store only when the run succeeds
(``Source.commit``), so a failed run is read again from the same place. Dry runs read from
`initial` and save nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from engine.components.base import ComponentContext
from engine.mapping import compile_expression
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

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        yield ("cursor_field",), self.cursor_field


def _greater(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a > b
    return str(a) > str(b)


class CursorTracker:
    """Loads the saved cursor, watches records for a higher one, saves it on commit."""

    def __init__(self, spec: IncrementalSpec, context: ComponentContext) -> None:
        self.spec = spec
        self.context = context
        self._field = compile_expression(spec.cursor_field)
        state = context.state
        saved = (
            state.get(context.pipeline, context.component_id, STATE_KEY)
            if state is not None
            else None
        )
        self.start: Any = saved if saved is not None else spec.initial
        self.highest: Any = self.start

    def params(self) -> dict[str, Any]:
        return {} if self.start is None else {self.spec.param: self.start}

    def observe(self, records: Batch) -> None:
        search = self._field.search
        highest = self.highest
        for record in records:
            value = search(record)
            if value is not None and (highest is None or _greater(value, highest)):
                highest = value
        self.highest = highest

    def commit(self) -> None:
        state = self.context.state
        if state is None or self.context.dry_run or self.highest is None:
            return
        if self.highest != self.start:
            state.set(self.context.pipeline, self.context.component_id, STATE_KEY, self.highest)
