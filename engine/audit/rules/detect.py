"""Find and neutralise sensitive values in event details: card numbers, SSNs, emails, phones.

Detection walks only the strings of a details tree; every function returns quickly for
strings without a digit or an ``@``, which is nearly all of the runtime's own events.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from typing import Any

from engine.audit.redact import CARD_PATTERN, MASK, luhn_ok

__all__ = [
    "PSEUDONYM_PREFIX",
    "find_cards",
    "find_identifiers",
    "mask_identifiers",
    "pseudonym",
    "pseudonymise_fields",
    "unprotected_personal_fields",
    "walk_strings",
]

PSEUDONYM_PREFIX = "pseud:"
_SSN = re.compile(r"(?<![\d*])\d{3}-\d{2}-(\d{4})(?!\d)")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})")
_PHONE = re.compile(
    r"(?<![\d*])(?:\+\d{1,3}[ .-])?(?:\(\d{3}\)\s?|\d{3}[ .-])\d{3}[ .-](\d{4})(?!\d)"
)
_INTERESTING = re.compile(r"[\d@]")


def walk_strings(value: Any, path: str = "details") -> Iterator[tuple[str, str]]:
    """(path, text) for every string in a JSON tree (keys excluded)."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from walk_strings(item, f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from walk_strings(item, f"{path}[{i}]")


def _strings(value: Any) -> Iterable[tuple[str, str]]:
    return value if isinstance(value, list) else walk_strings(value)


def find_cards(value: Any) -> list[str]:
    """Paths of strings holding an unmasked card number (13-19 digits, Luhn-valid).

    ``value``: a details tree, or the (path, text) list :func:`walk_strings` gives."""
    found: list[str] = []
    for path, text in _strings(value):
        if not _INTERESTING.search(text):
            continue
        for match in CARD_PATTERN.finditer(text):
            digits = re.sub(r"\D", "", match.group(0))
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                found.append(path)
                break
    return found


def find_identifiers(value: Any) -> list[tuple[str, str]]:
    """(path, kind) of plaintext SSNs, email addresses and phone numbers."""
    found: list[tuple[str, str]] = []
    for path, text in _strings(value):
        if not _INTERESTING.search(text):
            continue
        if _SSN.search(text):
            found.append((path, "ssn"))
        if "@" in text and _EMAIL.search(text):
            found.append((path, "email"))
        if _PHONE.search(text):
            found.append((path, "phone"))
    return found


def _mask_text(text: str) -> str:
    text = _SSN.sub(lambda m: f"***-**-{m.group(1)}", text)
    text = _EMAIL.sub(lambda m: f"{MASK}@{m.group(1)}", text) if "@" in text else text
    return _PHONE.sub(lambda m: f"***-***-{m.group(1)}", text)


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return fn(value) if _INTERESTING.search(value) else value
    if isinstance(value, dict):
        return {k: _map_strings(v, fn) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, fn) for v in value]
    return value


def mask_identifiers(value: Any) -> Any:
    """The tree with SSNs, emails and phone numbers masked (last four digits / domain kept)."""
    return _map_strings(value, _mask_text)


def pseudonym(key: bytes, value: Any) -> str:
    """A keyed, stable pseudonym: ``pseud:`` + 16 hex digits of HMAC-SHA256(key, value)."""
    text = value if isinstance(value, str) else repr(value)
    return PSEUDONYM_PREFIX + hmac.digest(key, text.encode(), "sha256").hex()[:16]


def _protected(value: Any) -> bool:
    return (
        value is None
        or value == MASK
        or (isinstance(value, str) and value.startswith(PSEUDONYM_PREFIX))
    )


def unprotected_personal_fields(
    value: Any, fields: Collection[str], path: str = "details"
) -> list[str]:
    """Paths of personal fields whose value is neither a pseudonym nor masked."""
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}"
            if str(key).lower() in fields and not isinstance(item, dict | list):
                if not _protected(item):
                    found.append(where)
            else:
                found.extend(unprotected_personal_fields(item, fields, where))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            found.extend(unprotected_personal_fields(item, fields, f"{path}[{i}]"))
    return found


def pseudonymise_fields(value: Any, fields: Collection[str], key: bytes) -> Any:
    """The tree with every personal field's scalar value replaced by its pseudonym."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for name, item in value.items():
            if str(name).lower() in fields and not isinstance(item, dict | list):
                out[name] = item if _protected(item) else pseudonym(key, item)
            else:
                out[name] = pseudonymise_fields(item, fields, key)
        return out
    if isinstance(value, list):
        return [pseudonymise_fields(item, fields, key) for item in value]
    return value
