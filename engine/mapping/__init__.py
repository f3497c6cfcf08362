"""JMESPath for the engine: one entry point, the custom function library, batch execution.

Every expression is parsed once and compiled; batches of records are mapped and filtered by one
generated function each.
"""

from __future__ import annotations

from engine.mapping.batch import (
    BatchFilter,
    BatchMapper,
    FieldRule,
    compile_filter,
    compile_map,
    compile_predicate,
)
from engine.mapping.expression import Expression, compile_expression
from engine.mapping.library import InvalidValueError

__all__ = [
    "BatchFilter",
    "BatchMapper",
    "Expression",
    "FieldRule",
    "InvalidValueError",
    "compile_expression",
    "compile_filter",
    "compile_map",
    "compile_predicate",
]
