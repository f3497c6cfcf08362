"""Event ids and timestamps: cheap, ordered, and rendered as the trail stores them."""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime
from typing import Any

__all__ = ["epoch", "format_time", "new_event_id", "now_text", "parse_time"]


def format_time(moment: datetime) -> str:
    """Fixed-width UTC ISO 8601 with microseconds, so text order is time order."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    """Parse ISO 8601; a naive time is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def epoch(timestamp: Any) -> float:
    """Seconds since the epoch of an event's timestamp text (or a datetime)."""
    if isinstance(timestamp, datetime):
        return timestamp.timestamp()
    return datetime.fromisoformat(str(timestamp).replace("Z", "+00:00")).timestamp()


# Event ids and times are rendered from parts cached per millisecond and per 256 ids, and
# lookup tables for the rest: formatting integers costs more than the rest of an event's
# bookkeeping, and a busy trail stamps dozens of events each millisecond.
_HEX2 = [f"{i:02x}" for i in range(256)]
_DEC3 = [f"{i:03d}" for i in range(1000)]
# [millisecond, its id prefix, its time prefix, second, its time prefix]
_stamp: list[Any] = [-1, "", "", -1, ""]
# [random id part, counter, counter >> 8, its 6 hex digits]
_ids: list[Any] = []


def _reset_ids() -> None:
    _ids[:] = [os.urandom(6).hex(), itertools.count(int.from_bytes(os.urandom(3))), -1, ""]
    _stamp[0] = -1  # the id prefix holds the random part


_reset_ids()
os.register_at_fork(after_in_child=_reset_ids)


def _millisecond(ms: int) -> None:
    stamp = _stamp
    second = ms // 1000
    if stamp[3] != second:
        stamp[3] = second
        stamp[4] = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S.")
    stamp[0] = ms
    stamp[1] = f"{ms:012x}{_ids[0]}"
    stamp[2] = stamp[4] + _DEC3[ms % 1000]


def now_text(ns: int | None = None) -> str:
    """The current UTC time (or ``ns``, nanoseconds since the epoch) as :func:`format_time`
    renders it, cheaply."""
    if ns is None:
        ns = time.time_ns()
    us = ns // 1000
    ms = us // 1000
    if _stamp[0] != ms:
        _millisecond(ms)
    text: str = _stamp[2] + _DEC3[us % 1000] + "Z"
    return text


def new_event_id(ns: int | None = None) -> str:
    """32 hex digits: milliseconds since the epoch (now, or ``ns`` nanoseconds), 48 random
    bits drawn once per process, then a 32-bit counter (ordered, like UUIDv7, and unique
    without a system call each).

    Time-ordered ids keep the unique index append-mostly, which makes inserts cheaper.
    """
    if ns is None:
        ns = time.time_ns()
    ms = ns // 1_000_000
    if _stamp[0] != ms:
        _millisecond(ms)
    ids = _ids
    n = next(ids[1]) & 0xFFFFFFFF
    high = n >> 8
    if ids[2] != high:
        ids[2] = high
        ids[3] = f"{high:06x}"
    event_id: str = _stamp[1] + ids[3] + _HEX2[n & 0xFF]
    return event_id
