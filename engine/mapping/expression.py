"""Compiling one JMESPath expression: parse once, check functions, evaluate many times."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from jmespath import exceptions
from jmespath.parser import Parser

from engine.mapping.interpreter import interpret
from engine.mapping.library import ALL_FUNCTIONS

__all__ = ["Expression", "compile_expression", "counting_compiles", "interpret", "parse"]

Node = dict[str, Any]

#: Open ``counting_compiles`` blocks, each counting the sources parsed while it is open.
_COUNTERS: list[Counter[str]] = []


@contextmanager
def counting_compiles() -> Iterator[Counter[str]]:
    """Count how often each expression source is compiled (parsed) inside the block."""
    counter: Counter[str] = Counter()
    _COUNTERS.append(counter)
    try:
        yield counter
    finally:
        _COUNTERS.remove(counter)


class Expression:
    """A compiled JMESPath expression: ``.source``, its parse tree ``.ast``, ``.search(value)``.

    The per-record function is generated on the first ``search``: an expression that a
    transform compiles into a whole-batch function from ``.ast`` never needs one.
    """

    __slots__ = ("_search", "ast", "source")

    def __init__(self, source: str, ast: Node, search: Callable[[Any], Any] | None = None) -> None:
        self.source = source
        self.ast = ast
        self._search = search

    def _function(self) -> Callable[[Any], Any]:
        if self._search is None:
            from engine.mapping.compiler import compile_ast

            self._search = compile_ast(self.ast, self.source)
        return self._search

    @property
    def compiled(self) -> bool:
        """Whether evaluation runs generated Python (else jmespath.py's interpreter)."""
        from engine.mapping.compiler import is_generated

        return is_generated(self._function())

    def search(self, value: Any) -> Any:
        """Evaluate against ``value``; raises jmespath.py's error classes on bad data."""
        search = self._search
        if search is None:
            search = self._function()
        return search(value)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.get("children", ()):
        if isinstance(child, dict):
            yield from _walk(child)


def parse(source: str) -> Node:
    """Parse ``source`` and check every function call's name and argument count.

    Raises jmespath.py's ParseError (syntax), UnknownFunctionError, ArityError or
    VariadictArityError: everything that is knowable before any data is seen.
    """
    for counter in _COUNTERS:
        counter[source] += 1
    with warnings.catch_warnings():
        # jmespath.py still reads `foo` (unquoted JSON) as a string, with a warning; accept it.
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        ast: Node = Parser().parse(source).parsed
    for node in _walk(ast):
        if node["type"] == "function_expression":
            name = node["value"]
            spec = ALL_FUNCTIONS.get(name)
            if spec is None:
                raise exceptions.UnknownFunctionError(f"Unknown function: {name}()")
            spec.check_arity(len(node["children"]))
    return ast


def compile_expression(source: str) -> Expression:
    """Parse and check ``source`` once; see :func:`parse` for the errors raised."""
    return Expression(source, parse(source))
