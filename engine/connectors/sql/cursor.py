"""Incremental cursor values: kept between runs as JSON with their type, and bounds for reads.

A late-committed row (a transaction that took id 41 commits after the one that took 42) is
caught in two ways: on PostgreSQL by :data:`SETTLED_SQL`, which tells whether a row was
written by a transaction older than every one still in flight, and elsewhere by a look-back
window (:func:`lookback_bound`) re-read each run.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from engine.errors import PermanentError

__all__ = ["SETTLED_COLUMN", "SETTLED_SQL", "dump_cursor", "load_cursor", "lookback_bound"]

#: the extra column of a PostgreSQL table read that says whether a row is settled
SETTLED_COLUMN = "engine_cursor_settled"
#: true when the row's writing transaction is older than the oldest one in flight in this
#: statement's snapshot (its xmin), so no transaction still open can commit a row before it.
#: ``age`` compares the 32-bit ``xmin`` of the row modulo wraparound; frozen rows are oldest.
SETTLED_SQL = (
    "age(xmin) > age((txid_snapshot_xmin(txid_current_snapshot()) % 4294967296)::text::xid)"
)

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


def lookback_bound(value: Any, lookback: float) -> Any:
    """``value`` moved back by ``lookback``: a number less, or a date/timestamp seconds earlier."""
    if isinstance(value, bool):
        raise PermanentError("cursor_lookback needs a numeric, date or timestamp cursor")
    if isinstance(value, datetime):
        return value - timedelta(seconds=lookback)
    if isinstance(value, date):
        return value - timedelta(days=-(-lookback // 86400))
    if isinstance(value, Decimal):
        return value - Decimal(str(lookback))
    if isinstance(value, int) and float(lookback).is_integer():
        return value - int(lookback)
    if isinstance(value, int | float):
        return value - lookback
    if isinstance(value, str) and len(value) > 10:
        # a timestamp kept as text (SQLite): moved back, written the same way
        try:
            moved = datetime.fromisoformat(value) - timedelta(seconds=lookback)
        except ValueError:
            pass
        else:
            return moved.isoformat(sep=value[10])
    raise PermanentError(
        f"cursor_lookback needs a numeric, date or timestamp cursor, not {type(value).__name__}"
    )
