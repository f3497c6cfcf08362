"""RFC 8785 (JCS) canonical JSON, the bytes that are MAC'd, signed and hashed.

``rfc8785.dumps`` is the reference; it is pure Python (~35 us per event). For the
shapes the trail produces, orjson with sorted keys yields the same bytes (same string
escaping, no whitespace), except for floats, which are pre-rendered through rfc8785,
and for keys outside the Basic Multilingual Plane below the surrogates, where UTF-16
order may differ from code point order; those fall back to the reference.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson
import rfc8785

__all__ = ["canonical_event", "canonical_json", "json_safe"]

_MAX_SAFE_INT = 2**53 - 1
# Code points at or above U+D800 sort differently by UTF-16 code unit than by code point.
_SAFE_KEY_LIMIT = "\ud7ff"


class _NeedsReference(Exception):
    """The fast path cannot guarantee RFC 8785 output for this value."""


@lru_cache(maxsize=4096)
def _float(value: float) -> orjson.Fragment:
    return orjson.Fragment(rfc8785.dumps(value))


def _prepare(value: Any) -> Any:
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
            return value
        raise _NeedsReference
    if kind is float:
        return _float(value)
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str or (not key.isascii() and max(key) > _SAFE_KEY_LIMIT):
                raise _NeedsReference
            # Inline the common scalar cases: this runs once per field of every event.
            item_kind = type(item)
            if item_kind is str or item is None or item_kind is bool:
                out[key] = item
            else:
                out[key] = _prepare(item)
        return out
    if kind is list or kind is tuple:
        return [_prepare(item) for item in value]
    raise _NeedsReference


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 encoding of a JSON value."""
    try:
        prepared = _prepare(value)
    except _NeedsReference:
        return bytes(rfc8785.dumps(value))
    return orjson.dumps(prepared, option=orjson.OPT_SORT_KEYS)


def _plain_float(value: float) -> Any:
    """A float orjson renders exactly as RFC 8785 does: small integers as ints, and
    non-integers in [1e-3, 1e15), where both print the shortest round-trip digits in
    plain decimal notation; anything else as a pre-rendered fragment."""
    if value.is_integer():
        if -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
            return int(value)
    elif 1e-3 <= abs(value) < 1e15:
        return value
    return _float(value)


def canonical_event(draft: Mapping[str, Any], *, ordered: bool = False) -> bytes:
    """:func:`canonical_json` of an event body as the trail builds it, faster.

    Top-level keys are the event's own ASCII field names and its values are strings,
    None or small ints, except ``risk_score`` (a float) and ``details`` (any JSON).
    ``ordered``: the caller built the draft with its keys already in sorted order, so
    they need no sorting. Details holding only ASCII keys and string values (the
    runtime's own) need no preparation beyond ordering.
    """
    try:
        seq = draft["seq"]
        count = draft["record_count"]
        if not -_MAX_SAFE_INT <= seq <= _MAX_SAFE_INT or (
            count is not None and not -_MAX_SAFE_INT <= count <= _MAX_SAFE_INT
        ):
            raise _NeedsReference
        risk = draft["risk_score"]
        details = draft["details"]
        plain = True
        in_order = True
        if details:
            previous = ""
            for key, item in details.items():
                if type(item) is not str or type(key) is not str or not key.isascii():
                    plain = False
                    break
                if key < previous:
                    in_order = False
                previous = key
        rendered = _plain_float(risk) if type(risk) is float else _prepare(risk)
        # The score as orjson writes it is already canonical (not 1.0, which RFC 8785
        # writes as 1): with keys in order, the draft is encoded as it stands.
        if ordered and plain and rendered is risk:
            if in_order:
                return orjson.dumps(draft)
            prepared = dict(draft)
            prepared["details"] = dict(sorted(details.items()))
            return orjson.dumps(prepared)
        prepared = dict(draft)
        prepared["risk_score"] = rendered
        if not plain:
            prepared["details"] = _prepare(details)
    except _NeedsReference:
        return bytes(rfc8785.dumps(draft))
    return orjson.dumps(prepared, option=orjson.OPT_SORT_KEYS)


def json_safe(value: Any) -> Any:
    """A plain JSON value (dicts, lists, str, int, float, bool, None) from anything."""
    return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))
