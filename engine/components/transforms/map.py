"""``map`` transform: per-field JMESPath expressions, or one whole-record expression."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from engine.columnar import ColumnBatch, available
from engine.columnar.program import FieldPlan, MapProgram, translatable
from engine.components.base import ComponentContext, Transform, TransformConfig, TransformResult
from engine.mapping import FieldRule, compile_map
from engine.records import Batch

if TYPE_CHECKING:
    from engine.registry import Registry

__all__ = ["FieldSpec", "MapConfig", "MapTransform"]


class FieldSpec(BaseModel):
    """One output field: an expression, whether it must be non-null, and a default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    expr: str = Field(description="JMESPath expression over the input record.")
    required: bool = Field(
        False, description="Reject the record when the value is null or an empty string."
    )
    default: Any = Field(
        None, description="Value used when the expression gives null or an empty string."
    )


class MapConfig(TransformConfig):
    """Reshapes records: `fields` builds each field; `expression` returns the whole record."""

    type: Literal["map"] = "map"
    fields: dict[str, str | FieldSpec] | None = Field(
        None,
        description="Output field -> expression (a string) or {expr, required, default}.",
        examples=[{"product_id": "join('', ['PROD_', sku])", "qty": {"expr": "to_number(q)"}}],
    )
    expression: str | None = Field(
        None, description="One expression that returns the whole output record (an object)."
    )

    @model_validator(mode="after")
    def _one_of(self) -> MapConfig:
        if (self.fields is None) == (self.expression is None):
            raise ValueError("give exactly one of `fields` or `expression`")
        if self.fields is not None and not self.fields:
            raise ValueError("`fields` is empty")
        return self

    def rules(self) -> list[FieldRule]:
        out = []
        for name, spec in (self.fields or {}).items():
            if isinstance(spec, str):
                out.append(FieldRule(name=name, expr=spec))
            else:
                out.append(
                    FieldRule(
                        name=name, expr=spec.expr, required=spec.required, default=spec.default
                    )
                )
        return out

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        if self.expression is not None:
            yield ("expression",), self.expression
        for name, spec in (self.fields or {}).items():
            yield ("fields", name), spec if isinstance(spec, str) else spec.expr


class MapTransform(Transform[MapConfig]):
    def __init__(self, config: MapConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        if config.expression is not None:
            self._mapper = compile_map(
                expression=context.expression(("expression",), config.expression)
            )
        else:
            rules = [
                replace(rule, compiled=context.expression(("fields", rule.name), rule.expr))
                for rule in config.rules()
            ]
            self._mapper = compile_map(rules)
        self._columns = map_program(config, context)

    @property
    def takes_columns(self) -> bool:
        """Whether its fields translate to the columnar path (docs/columnar.md)."""
        return self._columns is not None

    def process(self, batch: Batch) -> TransformResult:
        if isinstance(batch, ColumnBatch):
            out = self._columns(batch) if self._columns is not None else None
            if out is not None:
                return TransformResult({None: cast(Batch, out)})
            batch = batch.records()  # this batch takes the row path
        records, rejected = self._mapper(batch)
        return TransformResult({None: records}, rejected)


def map_program(config: MapConfig, context: ComponentContext) -> MapProgram | None:
    """The map on column batches, when columnar runs and every field translates."""
    if config.fields is None or not available(context.settings.engine_columnar):
        return None
    fields = [
        FieldPlan(
            rule.name,
            context.expression(("fields", rule.name), rule.expr).ast,
            rule.required,
            rule.default,
        )
        for rule in config.rules()
    ]
    if not all(translatable(field.ast) for field in fields):
        return None
    return MapProgram(fields)


def register(registry: Registry) -> None:
    registry.register(MapConfig, MapTransform)
