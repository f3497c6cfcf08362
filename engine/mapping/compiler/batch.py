"""Whole-batch functions: one generated loop per map or filter, field expressions inlined."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from engine.mapping.compiler.codegen import Builder, Module
from engine.mapping.compiler.kinds import ANY, DICT, Node, Val
from engine.mapping.compiler.runtime import explain
from engine.records import Batch, Rejected

__all__ = [
    "BatchFunction",
    "FieldSpec",
    "generate_expression",
    "generate_filter",
    "generate_map",
    "generate_test",
]

BatchFunction = Callable[[Batch], tuple[Batch, list[Rejected]]]
#: (output name, required, default factory or None) per field.
FieldSpec = tuple[str, bool, Callable[[], Any] | None]

#: Exceptions that mean "this record's data does not fit the expression", not a bug.
RUNTIME_ERRORS: tuple[type[Exception], ...] = (ValueError, TypeError, ArithmeticError)


def _module() -> Module:
    module = Module()
    module.namespace["_Rejected"] = Rejected
    module.namespace["_ERRORS"] = RUNTIME_ERRORS
    module.namespace["_kind"] = _kind_name
    module.namespace["_explain"] = explain
    return module


def _kind_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def generate_expression(ast: Node, label: str) -> Callable[[Any], Any]:
    """A function evaluating ``ast`` on any value."""
    module = _module()
    body = Builder(module)
    result = body.value(ast, Val("_v", ANY))
    body.emit(f"return {result.code}")
    module.chunks.append(body.source("def _search(_v):"))
    function: Callable[[Any], Any] = module.build(label)["_search"]
    return function


def generate_test(ast: Node, label: str) -> Callable[[Any], bool]:
    """A function giving the JMESPath truthiness of ``ast`` on a record."""
    module = _module()
    body = Builder(module)
    result = body.value(ast, Val("_v", DICT))
    body.emit(f"return {body.truthy(result)}")
    module.chunks.append(body.source("def _test(_v):"))
    function: Callable[[Any], bool] = module.build(label)["_test"]
    return function


def _batch_prologue(body: Builder) -> None:
    body.emit("_out = []")
    body.emit("_rejected = []")
    body.emit("_keep = _out.append")
    body.emit("_reject = _rejected.append")


def _guarded(body: Builder, ast: Node, why: str) -> Val:
    """Evaluate ``ast`` on the record; a runtime error rejects it and moves to the next."""
    with body.block("try", conditional=False):
        result = body.value(ast, Val("_r", DICT))
    with body.block("except _ERRORS as _e", conditional=False):
        body.emit(f"_reject(_Rejected(_r, {why} + _explain(_e)))")
        body.emit("continue")
    return result


def generate_map(
    fields: Sequence[FieldSpec] | None, exprs: Sequence[tuple[str, Node]]
) -> BatchFunction:
    """One function mapping a whole batch, per field (``fields``) or whole-record."""
    module = _module()
    body = Builder(module)
    _batch_prologue(body)
    with body.block("for _r in _batch", conditional=False):
        if fields is None:
            source, ast = exprs[0]
            why = module.const(f"expression {source!r} failed: ")
            result = _guarded(body, ast, why)
            with body.block(f"if isinstance({result.code}, dict)"):
                body.emit(f"_keep({result.code})")
            with body.block("else"):
                message = module.const(f"expression {source!r} must produce an object, got ")
                body.emit(f"_reject(_Rejected(_r, {message} + _kind({result.code})))")
        else:
            outputs = []
            for (name, required, default), (source, ast) in zip(fields, exprs, strict=True):
                why = module.const(f"field {name!r} ({source!r}) failed: ")
                value = _guarded(body, ast, why).code
                if default is not None or required:
                    # a fresh variable: the expression's own may be reused by later fields
                    field = body.assign(value, ANY).code
                    if default is not None:
                        factory = module.const(default)
                        # an empty string is missing too: CSV has no other way to say null
                        body.emit(f'if {field} is None or {field} == "": {field} = {factory}()')
                    if required:
                        reason = (
                            f"field {name!r} is required but {source!r} evaluated to null or ''"
                        )
                        with body.block(f'if {field} is None or {field} == ""'):
                            body.emit(f"_reject(_Rejected(_r, {reason!r}))")
                            body.emit("continue")
                    value = field
                outputs.append(f"{name!r}: {value}")
            body.emit(f"_keep({{{', '.join(outputs)}}})")
    body.emit("return _out, _rejected")
    module.chunks.append(body.source("def _map(_batch):"))
    function: BatchFunction = module.build(" | ".join(source for source, _ in exprs))["_map"]
    return function


def generate_filter(source: str, ast: Node) -> BatchFunction:
    """One function splitting a batch into the records that pass ``ast`` and rejected ones."""
    module = _module()
    body = Builder(module)
    _batch_prologue(body)
    with body.block("for _r in _batch", conditional=False):
        why = module.const(f"condition {source!r} failed: ")
        result = _guarded(body, ast, why)
        with body.block(f"if {body.truthy(result)}"):
            body.emit("_keep(_r)")
    body.emit("return _out, _rejected")
    module.chunks.append(body.source("def _filter(_batch):"))
    function: BatchFunction = module.build(source)["_filter"]
    return function
