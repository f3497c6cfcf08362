"""Helpers the generated code calls: the slow, rare paths of JMESPath semantics.

Generated code inlines the common cases (a dict lookup, a number check) and falls back to these
for everything else, so they replicate jmespath.py's behaviour exactly, errors included.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from decimal import Decimal
from numbers import Number
from typing import Any

from jmespath import exceptions

from engine.mapping.library import EngineFunctions, jmespath_type

__all__ = [
    "CMP_TYPES",
    "NUM_TYPES",
    "ExprRef",
    "call_function",
    "element_type_error",
    "explain",
    "is_false",
    "join_strings",
    "order",
    "to_number",
    "to_number_str",
    "type_error",
]

#: Classes compared with <, <=, >, >= directly (jmespath.py: numbers and strings).
CMP_TYPES = frozenset({int, float, str})
#: Classes the type checks call "number" (jmespath.py's, and decimals).
NUM_TYPES = frozenset({int, float, Decimal})

_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "lt": operator.lt,
    "lte": operator.le,
    "gt": operator.gt,
    "gte": operator.ge,
}

call_function: Callable[[str, list[Any]], Any] = EngineFunctions().call_function


class _Expression:
    """An expression reference (``&expr``) as a value, shaped like jmespath.py's own.

    jmespath.py's functions call ``expref.visit(expref.expression, element)`` and type-check by
    the class name ``_Expression``, so the built-ins work on compiled references unchanged.
    """

    __slots__ = ("expression", "function")

    def __init__(self, function: Callable[[Any], Any], expression: Any) -> None:
        self.function = function
        self.expression = expression

    def visit(self, node: Any, value: Any) -> Any:
        return self.function(value)

    def __repr__(self) -> str:
        return "<expref>"


ExprRef = _Expression


def is_false(value: Any) -> bool:
    """JMESPath falsiness: false, null, "", [] and {} (but not 0)."""
    return value is None or value is False or (not value and isinstance(value, str | list | dict))


def _is_actual_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, Number)


def order(op: str, left: Any, right: Any) -> Any:
    """An ordering comparison outside the int/float/str fast path (null when not comparable)."""
    comparable = (_is_actual_number(left) or isinstance(left, str)) and (
        _is_actual_number(right) or isinstance(right, str)
    )
    return _ORDER[op](left, right) if comparable else None


def type_error(function: str, value: Any, expected: list[str]) -> Any:
    """Raise jmespath.py's JMESPathTypeError for ``value`` given to ``function``."""
    raise exceptions.JMESPathTypeError(function, value, jmespath_type(value), expected)


def element_type_error(function: str, value: Any, expected: list[str]) -> Any:
    """Raise JMESPathTypeError for an array element (jmespath.py names its Python type)."""
    raise exceptions.JMESPathTypeError(function, value, type(value).__name__, expected)


def to_number_str(text: str) -> Any:
    """to_number() of a string that is not plain ASCII digits (jmespath.py: int, then float)."""
    if "." not in text:  # int() never accepts a dot: skip straight to float()
        try:
            return int(text)
        except ValueError:
            pass
    try:
        return float(text)
    except ValueError:
        return None


def to_number(value: Any) -> Any:
    """to_number() of any value."""
    if value.__class__ is str:
        return to_number_str(value)
    return call_function("to_number", [value])


def join_strings(function: str, separator: Any, items: Any) -> str:
    """join(separator, items) with jmespath.py's checks."""
    if separator.__class__ is not str:
        type_error(function, separator, ["string"])
    if items.__class__ is not list:
        type_error(function, items, ["array-string"])
    for item in items:
        if item.__class__ is not str:
            element_type_error(function, item, ["array-string"])
    result: str = separator.join(items)
    return result


_TYPE_WORDS = {
    "str": "a string",
    "int": "a number",
    "float": "a number",
    "Decimal": "a number",
    "NoneType": "null",
    "bool": "a boolean",
    "list": "an array",
    "dict": "an object",
}
_NOT_ORDERED = re.compile(r"'(.+?)' not supported between instances of '(\w+)' and '(\w+)'")
_NO_OPERAND = re.compile(r"unsupported operand type\(s\) for (.+?): '(\w+)' and '(\w+)'")


def _word(python_type: str) -> str:
    return _TYPE_WORDS.get(python_type, "a value")


def explain(error: BaseException) -> str:
    """An expression's run-time error in the engine's words (JSON types, not Python classes)."""
    text = str(error)
    if isinstance(error, exceptions.JMESPathError):
        return text
    if isinstance(error, ZeroDivisionError):
        return "division by zero"
    if isinstance(error, OverflowError):
        return "a number too large to compute with"
    if isinstance(error, ArithmeticError):  # decimal.InvalidOperation and its kin
        return "not a valid operation on these numbers"
    found = _NOT_ORDERED.search(text)
    if found:
        op, left, right = found.groups()
        return f"cannot compare {_word(left)} with {_word(right)} using {op}"
    found = _NO_OPERAND.search(text)
    if found:
        op, left, right = found.groups()
        return f"cannot apply {op} to {_word(left)} and {_word(right)}"
    if "exceeds the limit" in text.lower() and "digits" in text:
        return "a number with too many digits"
    return text
