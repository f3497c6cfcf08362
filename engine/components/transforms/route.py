"""``route`` transform: named conditions, each an output ``id.name``; the rest ``id._unmatched``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Literal, cast

from pydantic import Field, field_validator

from engine.columnar import ColumnBatch, available
from engine.columnar.program import RouteProgram, translatable
from engine.components.base import ComponentContext, Transform, TransformConfig, TransformResult
from engine.mapping import compile_predicate
from engine.records import Batch, Rejected

if TYPE_CHECKING:
    from engine.registry import Registry

__all__ = ["UNMATCHED", "RouteConfig", "RouteTransform"]

UNMATCHED = "_unmatched"


class RouteConfig(TransformConfig):
    """Sends each record to every route whose condition holds; the others to `_unmatched`."""

    type: Literal["route"] = "route"
    routes: dict[str, str] = Field(
        description="Route name -> JMESPath condition; read them as inputs `id.name`.",
        examples=[{"eu": "region == 'EU'", "us": "region == 'US'"}],
    )

    @field_validator("routes")
    @classmethod
    def _names(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("declare at least one route")
        for name in value:
            if name == UNMATCHED or not all(c.isalnum() or c in "_-" for c in name):
                raise ValueError(f"route name {name!r} may hold only letters, digits, _ and -")
        return value

    def output_names(self) -> tuple[str, ...]:
        return (*self.routes, UNMATCHED)

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        for name, condition in self.routes.items():
            yield ("routes", name), condition


class RouteTransform(Transform[RouteConfig]):
    accounting = "fan_out"  # may send one record to several outputs

    def __init__(self, config: RouteConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        expressions = {
            name: context.expression(("routes", name), cond) for name, cond in config.routes.items()
        }
        self._routes = [(name, compile_predicate(expr)) for name, expr in expressions.items()]
        self._columns: RouteProgram | None = None
        asts = [expr.ast for expr in expressions.values()]
        if available(context.settings.engine_columnar) and all(map(translatable, asts)):
            self._columns = RouteProgram(list(expressions), asts)

    @property
    def takes_columns(self) -> bool:
        """Whether its conditions translate to the columnar path (docs/columnar.md)."""
        return self._columns is not None

    def process(self, batch: Batch) -> TransformResult:
        if isinstance(batch, ColumnBatch):
            routed = self._columns(batch) if self._columns is not None else None
            if routed is not None:
                rest = routed.pop("")
                return TransformResult(cast("dict[str | None, Batch]", {**routed, UNMATCHED: rest}))
            batch = batch.records()  # this batch takes the row path
        outputs: dict[str | None, Batch] = {name: [] for name, _ in self._routes}
        unmatched: Batch = []
        rejected: list[Rejected] = []
        for record in batch:
            try:
                hits = [name for name, predicate in self._routes if predicate(record)]
            except Exception as exc:  # an expression error rejects this record only
                rejected.append(Rejected(record, f"route condition failed: {exc}"))
                continue
            for name in hits:
                outputs[name].append(record)
            if not hits:
                unmatched.append(record)
        outputs[UNMATCHED] = unmatched
        return TransformResult(outputs, rejected)


def register(registry: Registry) -> None:
    registry.register(RouteConfig, RouteTransform)
