"""``filter`` transform: keeps the records for which a JMESPath condition is truthy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, cast

from pydantic import Field

from engine.columnar import ColumnBatch, available
from engine.columnar.program import FilterProgram, translatable
from engine.components.base import ComponentContext, Transform, TransformConfig, TransformResult
from engine.mapping import compile_filter
from engine.records import Batch

if TYPE_CHECKING:
    from engine.registry import Registry

__all__ = ["FilterConfig", "FilterTransform"]


class FilterConfig(TransformConfig):
    """Keeps records whose condition is truthy (JMESPath truth: false, null, '', [], {} drop)."""

    type: Literal["filter"] = "filter"
    condition: str = Field(description="JMESPath condition.", examples=["quantity > `0`"])

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        yield ("condition",), self.condition


class FilterTransform(Transform[FilterConfig]):
    accounting = "may_drop"  # drops the records its condition refuses

    def __init__(self, config: FilterConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        expression = context.expression(("condition",), config.condition)
        self._filter = compile_filter(expression)
        self._columns: FilterProgram | None = None
        if available(context.settings.engine_columnar) and translatable(expression.ast):
            self._columns = FilterProgram(expression.ast)

    @property
    def takes_columns(self) -> bool:
        """Whether its condition translates to the columnar path (docs/columnar.md)."""
        return self._columns is not None

    def process(self, batch: Batch) -> TransformResult:
        if isinstance(batch, ColumnBatch):
            out = self._columns(batch) if self._columns is not None else None
            if out is not None:
                return TransformResult({None: cast(Batch, out)})
            batch = batch.records()  # this batch takes the row path
        kept, rejected = self._filter(batch)
        return TransformResult({None: kept}, rejected)


def register(registry: Registry) -> None:
    registry.register(FilterConfig, FilterTransform)
