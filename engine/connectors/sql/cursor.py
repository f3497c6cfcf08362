"""Incremental cursor values kept between runs as JSON, with their Python type restored."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from engine.errors import PermanentError

__all__ = ["dump_cursor", "load_cursor"]

_TYPES: dict[str, Any] = {
    "datetime": datetime.fromisoformat,
    "date": date.fromisoformat,
    "time": time.fromisoformat,
    "decimal": Decimal,
}


def dump_cursor(value: object) -> dict[str, Any]:
    """A JSON-able form of a cursor column value that :func:`load_cursor` turns back."""
    if isinstance(value, bool) or value is None:
        return {"type": "json", "value": value}
    for name, kind in (("datetime", datetime), ("date", date), ("time", time)):
        if isinstance(value, kind):
            return {"type": name, "value": value.isoformat()}
    if isinstance(value, Decimal):
        return {"type": "decimal", "value": str(value)}
    if isinstance(value, int | float | str):
        return {"type": "json", "value": value}
    raise PermanentError(
        f"cursor values of type {type(value).__name__} cannot be kept between runs; "
        "use a number, string, date or timestamp column"
    )


def load_cursor(saved: Any) -> Any:
    if not isinstance(saved, dict) or "type" not in saved:
        return saved
    kind, value = saved["type"], saved.get("value")
    if kind in _TYPES and isinstance(value, str):
        return _TYPES[kind](value)
    return value
