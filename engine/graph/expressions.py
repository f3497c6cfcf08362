"""Compile every JMESPath expression of a pipeline; a bad one is a located config error."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import jmespath.exceptions

from engine.errors import Diagnostic
from engine.mapping import compile_expression

if TYPE_CHECKING:
    from engine.config.loader import Document
    from engine.config.validate import ComponentEntry

__all__ = ["compile_expressions"]

ExpressionKey = tuple[str, tuple[str | int, ...]]


def compile_expressions(
    doc: Document, components: Mapping[str, ComponentEntry]
) -> tuple[dict[ExpressionKey, Any], list[Diagnostic]]:
    compiled: dict[ExpressionKey, Any] = {}
    problems: list[Diagnostic] = []
    for cid, entry in components.items():
        for loc, source in entry.config.expressions():
            try:
                compiled[(cid, loc)] = compile_expression(source)
            except jmespath.exceptions.JMESPathError as exc:
                text = str(exc).strip()
                message = text.splitlines()[0] if text else type(exc).__name__
                problems.append(
                    doc.diagnostic(
                        "E050",
                        f"bad JMESPath expression in {cid}.{'.'.join(map(str, loc))}: {message}",
                        (entry.role.table, cid, *loc),
                        f"expression: {source}",
                    )
                )
    return compiled, problems
