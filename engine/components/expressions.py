"""A component's JMESPath expressions, compiled once by compile and handed over by the context."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from engine.mapping import Expression, compile_expression

__all__ = ["CompiledExpressions", "ExpressionKey", "ExpressionLookup"]

#: (component id, key path of the expression in the component's table)
ExpressionKey = tuple[str, tuple[str | int, ...]]
#: (key path, source) -> the compiled expression; connectors take one for their sub-table.
ExpressionLookup = Callable[[tuple[str | int, ...], str], Expression]


class CompiledExpressions:
    """Expressions by key path (``("fields", "qty")``), as ``ComponentConfig.expressions`` names
    them. A component built outside a compiled plan (a unit test) finds none, and its
    expressions are compiled on first use instead."""

    __slots__ = ("_by_loc",)

    def __init__(self, by_loc: Mapping[tuple[str | int, ...], Expression] | None = None) -> None:
        self._by_loc = dict(by_loc or {})

    def __len__(self) -> int:
        return len(self._by_loc)

    def get(self, loc: tuple[str | int, ...], source: str) -> Expression:
        """The expression at ``loc``; compiled now only when compile did not see it."""
        found = self._by_loc.get(loc)
        if found is not None and found.source == source:
            return found
        expression = compile_expression(source)
        self._by_loc[loc] = expression
        return expression

    def under(self, *prefix: str | int) -> ExpressionLookup:
        """A lookup for the expressions of a sub-table (``pagination``), by their own key paths."""
        return lambda loc, source: self.get((*prefix, *loc), source)
