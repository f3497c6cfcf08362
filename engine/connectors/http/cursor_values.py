"""Cursor values compared by type: numbers as numbers, timestamps as instants, never as text.

``key(value)`` turns a record's cursor value into something ordered; two keys of different
kinds (a number and a timestamp, an offset-aware and a naive timestamp) cannot be compared
and raise :class:`CursorTypeError` instead of falling back to comparing their text.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from engine.errors import PermanentError

__all__ = ["CursorKey", "CursorType", "CursorTypeError", "cursor_key", "greater"]

CursorType = Literal["auto", "int", "decimal", "timestamp", "string"]

#: (kind, comparable value); keys are only compared within one kind
CursorKey = tuple[str, Any]

_NUMERIC = re.compile(r"-?\d+(\.\d+)?")
#: a date, then ``T`` or a space and a time: what ``auto`` reads as a timestamp
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}")


class CursorTypeError(PermanentError, ValueError):
    """A cursor value that does not fit the cursor's type, or two that cannot be compared."""


def _decimal(value: Any, kind: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise CursorTypeError(f"{value!r} is not a number")
    if isinstance(value, str) and not _NUMERIC.fullmatch(value.strip()):
        raise CursorTypeError(f"{value!r} is not {'an integer' if kind == 'int' else 'a number'}")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise CursorTypeError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise CursorTypeError(f"{value!r} is not a finite number")
    if kind == "int" and number != number.to_integral_value():
        raise CursorTypeError(f"{value!r} is not an integer")
    return number


def _timestamp(value: Any) -> CursorKey:
    if not isinstance(value, str):
        raise CursorTypeError(f"{value!r} is not an ISO-8601 timestamp string")
    try:
        instant = datetime.fromisoformat(value.strip())
    except ValueError:
        raise CursorTypeError(f"{value!r} is not an ISO-8601 timestamp") from None
    if instant.tzinfo is None:
        return ("timestamp without offset", instant)
    return ("timestamp", instant)


def cursor_key(value: Any, kind: CursorType) -> CursorKey:
    """The comparable form of ``value`` under the declared ``kind``."""
    if kind in ("int", "decimal"):
        return ("number", _decimal(value, kind))
    if kind == "timestamp":
        return _timestamp(value)
    if kind == "string":
        if not isinstance(value, str):
            raise CursorTypeError(f"{value!r} is not a string")
        return ("string", value)
    # auto: JSON numbers and plain numeric strings as numbers, ISO timestamps as instants
    if isinstance(value, bool):
        raise CursorTypeError(f"{value!r} is a boolean, not a cursor value")
    if isinstance(value, (int, float)):
        return ("number", _decimal(value, "decimal"))
    if isinstance(value, str):
        text = value.strip()
        if _NUMERIC.fullmatch(text):
            return ("number", Decimal(text))
        if _TIMESTAMP.match(text):
            return _timestamp(text)
        return ("string", value)
    kind_name = type(value).__name__
    raise CursorTypeError(f"{value!r} ({kind_name}) is not a number, string or timestamp")


def greater(a: CursorKey, b: CursorKey) -> bool:
    """``a > b``; keys of different kinds raise :class:`CursorTypeError`."""
    if a[0] != b[0]:
        raise CursorTypeError(f"a {a[0]} cannot be compared with a {b[0]}")
    return bool(a[1] > b[1])
