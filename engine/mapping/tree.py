"""JMESPath parse trees: parsing with the engine's function checks, and the tree interpreter.

Below both the compiler (whose fallback interprets a tree it cannot generate Python for) and
:mod:`engine.mapping.expression` (which parses, then compiles).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

from jmespath import exceptions
from jmespath.parser import Parser
from jmespath.visitor import Options, TreeInterpreter

from engine.mapping.library import ALL_FUNCTIONS, EngineFunctions

__all__ = ["Node", "interpret", "parse"]

Node = dict[str, Any]

_OPTIONS = Options(custom_functions=EngineFunctions())


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


def interpret(ast: Node, value: Any) -> Any:
    """Evaluate a parsed expression with jmespath.py's tree interpreter and the engine library."""
    return TreeInterpreter(_OPTIONS).visit(ast, value)
