"""``filter`` transform: keeps the records for which a JMESPath condition is truthy."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal

from pydantic import Field

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
        self._filter = compile_filter(context.expression(("condition",), config.condition))

    def process(self, batch: Batch) -> TransformResult:
        kept, rejected = self._filter(batch)
        return TransformResult({None: kept}, rejected)


def register(registry: Registry) -> None:
    registry.register(FilterConfig, FilterTransform)
