"""jmespath.py's tree interpreter with the engine's function library.

The compiler's fallback for a tree it cannot generate Python for, and the reference the
generated code is tested against; below both the compiler and :mod:`engine.mapping.expression`.
"""

from __future__ import annotations

from typing import Any

from jmespath.visitor import Options, TreeInterpreter

from engine.mapping.library import EngineFunctions

__all__ = ["interpret"]

_OPTIONS = Options(custom_functions=EngineFunctions())


def interpret(ast: dict[str, Any], value: Any) -> Any:
    """Evaluate a parsed expression with jmespath.py's tree interpreter and the engine library."""
    return TreeInterpreter(_OPTIONS).visit(ast, value)
