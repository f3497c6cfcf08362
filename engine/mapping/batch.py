"""Batch execution: map, filter and route predicates over whole batches of records.

These are the transforms' fast path. A record whose expression fails at runtime (a type error, a
division by zero, a required field that came out null) is rejected with the reason; the other
records of the batch go on.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from engine.mapping.compiler import compile_filter_function, compile_map_function, compile_test
from engine.mapping.expression import Expression, Node, parse
from engine.records import Batch, Rejected

__all__ = [
    "BatchFilter",
    "BatchMapper",
    "FieldRule",
    "compile_filter",
    "compile_map",
    "compile_predicate",
]


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One output field of a map: its name, expression, and what to do when it is null."""

    name: str
    expr: str
    required: bool = False
    default: Any = None
    #: ``expr`` compiled already (by the pipeline's compile); parsed here when None
    compiled: Expression | None = None


def _with_note(error: Exception, note: str) -> Exception:
    error.add_note(note)
    return error


class BatchMapper:
    """Maps a batch to ``(records, rejected)``; built by :func:`compile_map`."""

    __slots__ = ("_run", "expression", "fields")

    def __init__(
        self,
        run: Callable[[Batch], tuple[Batch, list[Rejected]]],
        fields: tuple[FieldRule, ...],
        expression: str | None,
    ) -> None:
        self._run = run
        self.fields = fields
        self.expression = expression

    def __call__(self, batch: Batch) -> tuple[Batch, list[Rejected]]:
        return self._run(batch)


class BatchFilter:
    """Splits a batch into ``(kept, rejected)``; built by :func:`compile_filter`."""

    __slots__ = ("_run", "condition")

    def __init__(self, run: Callable[[Batch], tuple[Batch, list[Rejected]]], condition: str):
        self._run = run
        self.condition = condition

    def __call__(self, batch: Batch) -> tuple[Batch, list[Rejected]]:
        return self._run(batch)


def _default_factory(default: Any) -> Callable[[], Any] | None:
    if default is None:
        return None
    if isinstance(default, dict | list):
        return lambda: copy.deepcopy(default)
    return lambda: default


def _tree(expression: str | Expression) -> tuple[str, Node]:
    """The source and parse tree of an expression, parsing only one not compiled yet."""
    if isinstance(expression, Expression):
        return expression.source, expression.ast
    return expression, parse(expression)


def compile_map(
    fields: Sequence[FieldRule] | None = None, expression: str | Expression | None = None
) -> BatchMapper:
    """Compile a map transform: per-field rules (in output order) or one whole-record expression.

    Raises ValueError for a malformed call and jmespath.py's errors for a bad expression (with a
    note naming the field).
    """
    if (fields is None) == (expression is None):
        raise ValueError("compile_map needs exactly one of fields or expression")
    if expression is not None:
        source, ast = _tree(expression)
        return BatchMapper(compile_map_function(None, [(source, ast)]), (), source)
    rules = tuple(fields or ())
    names = [rule.name for rule in rules]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"duplicate output fields: {', '.join(duplicates)}")
    parsed = []
    for rule in rules:
        try:
            parsed.append(_tree(rule.compiled if rule.compiled is not None else rule.expr))
        except Exception as error:
            raise _with_note(error, f"in field {rule.name!r}") from None
    run = compile_map_function(
        [(rule.name, rule.required, _default_factory(rule.default)) for rule in rules], parsed
    )
    return BatchMapper(run, rules, None)


def compile_filter(condition: str | Expression) -> BatchFilter:
    """Compile a filter transform: keep records for which ``condition`` is JMESPath-true."""
    source, ast = _tree(condition)
    return BatchFilter(compile_filter_function(source, ast), source)


def compile_predicate(condition: str | Expression) -> Callable[[dict[str, Any]], bool]:
    """Compile a route condition to a function returning its JMESPath truthiness.

    Evaluation errors propagate (jmespath.py's classes) so the caller can route the record.
    """
    source, ast = _tree(condition)
    return compile_test(ast, source)
