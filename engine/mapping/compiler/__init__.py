"""JMESPath to Python: expressions and whole batches compiled to generated functions.

Each entry point generates Python source from jmespath.py's parse tree and executes it once. An
expression the generator cannot express as valid Python (nested past Python's static block
limit, for instance) falls back to jmespath.py's interpreter with the same results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engine.mapping.compiler import batch, fallback
from engine.mapping.compiler.batch import BatchFunction, FieldSpec

__all__ = [
    "compile_ast",
    "compile_filter_function",
    "compile_map_function",
    "compile_test",
    "is_generated",
]

Node = dict[str, Any]
#: Failures of generating or compiling Python source, as opposed to errors in the expression.
_CANNOT_GENERATE = (NotImplementedError, SyntaxError, RecursionError, MemoryError)


def is_generated(function: Callable[..., Any]) -> bool:
    """Whether ``function`` is generated code rather than the interpreter fallback."""
    code = getattr(function, "__code__", None)
    return code is not None and code.co_filename.startswith("<jmespath")


def compile_ast(ast: Node, label: str = "") -> Callable[[Any], Any]:
    """Return a function evaluating the parsed expression ``ast``."""
    try:
        return batch.generate_expression(ast, label)
    except _CANNOT_GENERATE:
        return fallback.interpreted(ast)


def compile_test(ast: Node, label: str = "") -> Callable[[Any], bool]:
    """Return a function giving the JMESPath truthiness of ``ast`` on a record."""
    try:
        return batch.generate_test(ast, label)
    except _CANNOT_GENERATE:
        return fallback.interpreted_test(ast)


def compile_map_function(
    fields: Sequence[FieldSpec] | None, exprs: Sequence[tuple[str, Node]]
) -> BatchFunction:
    """One function mapping a batch: per-field (``fields`` given) or whole-record."""
    try:
        return batch.generate_map(fields, exprs)
    except _CANNOT_GENERATE:
        return fallback.interpreted_map(fields, exprs)


def compile_filter_function(source: str, ast: Node) -> BatchFunction:
    """One function splitting a batch into records that pass ``ast`` and rejected ones."""
    try:
        return batch.generate_filter(source, ast)
    except _CANNOT_GENERATE:
        return fallback.interpreted_filter(source, ast)
