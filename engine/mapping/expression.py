"""Compiling one JMESPath expression: parse once, check functions, evaluate many times."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.mapping.compiler import compile_ast, is_generated
from engine.mapping.tree import Node, interpret, parse

__all__ = ["Expression", "compile_expression", "interpret", "parse"]


class Expression:
    """A compiled JMESPath expression: ``.source`` and ``.search(value)``."""

    __slots__ = ("_search", "ast", "source")

    def __init__(self, source: str, ast: Node, search: Callable[[Any], Any]) -> None:
        self.source = source
        self.ast = ast
        self._search = search

    @property
    def compiled(self) -> bool:
        """Whether evaluation runs generated Python (else jmespath.py's interpreter)."""
        return is_generated(self._search)

    def search(self, value: Any) -> Any:
        """Evaluate against ``value``; raises jmespath.py's error classes on bad data."""
        return self._search(value)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def compile_expression(source: str) -> Expression:
    """Parse and compile ``source`` once; see :func:`parse` for the errors raised."""
    ast = parse(source)
    return Expression(source, ast, compile_ast(ast, source))
