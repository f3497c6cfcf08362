"""Record values in the form each column's type takes, read from the reflected table.

Records carry JSON-ish values (ISO-8601 strings for timestamps, strings or floats for
decimals); drivers and databases differ in what they accept for them. The ``sql`` sink
converts each value by its column's type before binding it:

- timestamps: ISO-8601 strings (``Z`` and offsets allowed) become datetimes; a column
  without a time zone (MySQL/MariaDB ``DATETIME``, PostgreSQL ``timestamp``, SQLite) gets the
  instant in UTC without offset, a ``timestamptz`` column keeps the offset;
- dates and times from ISO-8601; decimals exactly (``Decimal`` of the text, never a float);
- booleans from ``true``/``false`` (and ``1``/``0``), also into MySQL/MariaDB ``BOOLEAN``
  (``TINYINT(1)``); integers from integral numbers or text;
- numbers into text columns as their text.

A value that does not fit raises :class:`ColumnValueError`, naming the column and its type.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import Column, types

from engine.errors import PermanentError

__all__ = ["ColumnValueError", "Conversion", "converter"]

Converter = Callable[[Any], Any]

_TRUE = frozenset({"true", "t", "1", "yes"})
_FALSE = frozenset({"false", "f", "0", "no"})


class ColumnValueError(PermanentError, ValueError):
    """A record value that the column's type cannot hold (a ValueError too, for the
    converters' callers)."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _datetime(aware: bool) -> Converter:
    def convert(value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                raise ColumnValueError(f"{_shown(value)} is not an ISO-8601 timestamp") from None
        elif isinstance(value, date) and not isinstance(value, datetime):
            value = datetime(value.year, value.month, value.day)
        if not isinstance(value, datetime):
            raise ColumnValueError(f"{_shown(value)} is not a timestamp")
        if not aware and value.tzinfo is not None:
            return value.astimezone(UTC).replace(tzinfo=None)
        return value

    return convert


def _iso(parse: Callable[[str], Any], kind: type, name: str) -> Converter:
    """Dates or times: ISO-8601 text parsed, values of ``kind`` (not datetimes) kept."""

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            try:
                return parse(value.strip())
            except ValueError:
                raise ColumnValueError(f"{_shown(value)} is not an ISO-8601 {name}") from None
        if isinstance(value, kind) and not isinstance(value, datetime):
            return value
        raise ColumnValueError(f"{_shown(value)} is not a {name}")

    return convert


_date = _iso(date.fromisoformat, date, "date")
_time = _iso(time.fromisoformat, time, "time")


def _decimal(value: Any) -> Decimal:
    kind = type(value)
    if kind is float:
        if not math.isfinite(value):
            raise ColumnValueError(f"{_shown(value)} is not a finite number")
        return Decimal(repr(value))  # the shortest text of the float: what the JSON said
    if kind is int or kind is Decimal:
        number = Decimal(value)
    elif kind is str:
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ColumnValueError(f"{_shown(value)} is not a number") from None
    else:
        raise ColumnValueError(f"{_shown(value)} is not a number")
    if not number.is_finite():
        raise ColumnValueError(f"{_shown(value)} is not a finite number")
    return number


def _float(value: Any) -> Any:
    return value if isinstance(value, float) else float(_decimal(value))


def _integer(value: Any) -> Any:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    number = _decimal(value)
    if number != number.to_integral_value():
        raise ColumnValueError(f"{_shown(value)} is not an integer")
    return int(number)


def _boolean(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ColumnValueError(f"{_shown(value)} is not a boolean (true/false, 1/0)")


def _tinyint_boolean(value: Any) -> Any:
    """MySQL/MariaDB ``BOOLEAN`` is ``TINYINT(1)``: booleans as 1/0, other integers as they are."""
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return int(value.strip().lower() in _TRUE)
    return _integer(value)


def _text(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if type(value) in (int, float, Decimal):
        return str(value)
    raise ColumnValueError(f"{_shown(value)} is not text")


#: a conversion and the value types it keeps as they are (checked first: the fast path)
Conversion = tuple[Converter, tuple[type, ...]]


def converter(column: Column[Any]) -> Conversion | None:
    """How to convert a record value for ``column``; None when values are bound as they are."""
    kind = column.type
    if isinstance(kind, types.DateTime):
        # text is always parsed here, also for PostgreSQL: it would take 'now' or 'yesterday'
        return _datetime(aware=bool(kind.timezone)), ()
    if isinstance(kind, types.Date):
        return _date, (date,)
    if isinstance(kind, types.Time):
        return _time, (time,)
    if isinstance(kind, types.Boolean):
        return _boolean, (bool,)
    if type(kind).__name__ == "TINYINT" and getattr(kind, "display_width", None) == 1:
        return _tinyint_boolean, (int, bool)  # MySQL/MariaDB BOOLEAN
    if isinstance(kind, types.Integer):
        return _integer, (int,)
    if isinstance(kind, types.Float) or (isinstance(kind, types.Numeric) and not kind.asdecimal):
        return _float, (float, int)
    if isinstance(kind, types.Numeric):
        return _decimal, (Decimal, int)
    if isinstance(kind, types.String) and not isinstance(kind, types.Enum):
        return _text, (str,)
    return None
