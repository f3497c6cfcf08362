"""Compile every JMESPath expression of a pipeline once; a bad one is a located config error."""

from __future__ import annotations

from collections.abc import Mapping

import jmespath.exceptions

from engine.errors import Diagnostic
from engine.mapping import Expression, compile_expression
from engine.runtime.plan import ComponentEntry, DocumentView, ExpressionKey

__all__ = ["compile_expressions"]


def compile_expressions(
    doc: DocumentView, components: Mapping[str, ComponentEntry]
) -> tuple[dict[ExpressionKey, Expression], list[Diagnostic]]:
    """Every component's expressions by (id, key path); one compile per distinct source."""
    compiled: dict[ExpressionKey, Expression] = {}
    by_source: dict[str, Expression | str] = {}  # a source's expression, or why it failed
    problems: list[Diagnostic] = []
    for cid, entry in components.items():
        for loc, source in entry.config.expressions():
            found = by_source.get(source)
            if found is None:
                try:
                    found = compile_expression(source)
                except jmespath.exceptions.JMESPathError as exc:
                    text = str(exc).strip()
                    found = text.splitlines()[0] if text else type(exc).__name__
                by_source[source] = found
            if isinstance(found, Expression):
                compiled[(cid, loc)] = found
                continue
            problems.append(
                doc.diagnostic(
                    "E050",
                    f"bad JMESPath expression in {cid}.{'.'.join(map(str, loc))}: {found}",
                    (entry.role.table, cid, *loc),
                    f"expression: {source}",
                )
            )
    return compiled, problems
