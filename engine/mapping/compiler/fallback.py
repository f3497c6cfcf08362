"""The interpreted path: jmespath.py's tree interpreter in the same batch shapes.

Used for an expression the code generator cannot turn into valid Python (one nested past
Python's static block limit, say), and as the reference the generated code is tested against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from engine.mapping.compiler.batch import RUNTIME_ERRORS, BatchFunction, FieldSpec
from engine.mapping.compiler.runtime import explain
from engine.mapping.interpreter import interpret
from engine.records import Batch, Rejected

__all__ = ["interpreted", "interpreted_filter", "interpreted_map", "interpreted_test"]

Node = dict[str, Any]

_ERRORS = RUNTIME_ERRORS


def _is_true(value: Any) -> bool:
    return not (
        value is None or value is False or (not value and isinstance(value, str | list | dict))
    )


def interpreted(ast: Node) -> Callable[[Any], Any]:
    """Return a function evaluating the parsed expression ``ast``."""
    return partial(interpret, ast)


def interpreted_test(ast: Node) -> Callable[[Any], bool]:
    """Return a function giving the JMESPath truthiness of ``ast`` on a value."""
    search = interpreted(ast)
    return lambda value: _is_true(search(value))


def interpreted_map(
    fields: Sequence[FieldSpec] | None, exprs: Sequence[tuple[str, Node]]
) -> BatchFunction:
    """One function mapping a batch: per-field (``fields`` given) or whole-record."""
    searches = [(source, interpreted(ast)) for source, ast in exprs]
    if fields is None:
        source, search = searches[0]

        def run_whole(batch: Batch) -> tuple[Batch, list[Rejected]]:
            out: Batch = []
            rejected: list[Rejected] = []
            for record in batch:
                try:
                    result = search(record)
                except _ERRORS as error:
                    rejected.append(
                        Rejected(record, f"expression {source!r} failed: {explain(error)}")
                    )
                    continue
                if isinstance(result, dict):
                    out.append(result)
                else:
                    kind = "null" if result is None else type(result).__name__
                    reason = f"expression {source!r} must produce an object, got {kind}"
                    rejected.append(Rejected(record, reason))
            return out, rejected

        return run_whole

    plan = [(spec, src, search) for spec, (src, search) in zip(fields, searches, strict=True)]

    def run_fields(batch: Batch) -> tuple[Batch, list[Rejected]]:
        out: Batch = []
        rejected: list[Rejected] = []
        for record in batch:
            mapped: dict[str, Any] = {}
            for (name, required, default), source, search in plan:
                try:
                    value = search(record)
                except _ERRORS as error:
                    reason = f"field {name!r} ({source!r}) failed: {explain(error)}"
                    rejected.append(Rejected(record, reason))
                    break
                if (value is None or value == "") and default is not None:
                    value = default()
                if (value is None or value == "") and required:
                    reason = f"field {name!r} is required but {source!r} evaluated to null or ''"
                    rejected.append(Rejected(record, reason))
                    break
                mapped[name] = value
            else:
                out.append(mapped)
        return out, rejected

    return run_fields


def interpreted_filter(source: str, ast: Node) -> BatchFunction:
    """One function splitting a batch into records that pass ``ast`` and rejected ones."""
    search = interpreted(ast)

    def run(batch: Batch) -> tuple[Batch, list[Rejected]]:
        kept: Batch = []
        rejected: list[Rejected] = []
        for record in batch:
            try:
                if _is_true(search(record)):
                    kept.append(record)
            except _ERRORS as error:
                rejected.append(Rejected(record, f"condition {source!r} failed: {explain(error)}"))
        return kept, rejected

    return run
