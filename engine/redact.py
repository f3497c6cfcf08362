"""The one redaction module: keep secrets and personal data out of events, messages and logs.

Audit events (:func:`redact`, :func:`redact_text`: secret-named keys, card numbers, URL
passwords, bearer tokens) and connectors (:func:`redact_url`: URLs safe to print) mask with
the same :data:`MASK`. :data:`KEY_MATERIAL` marks the config fields that take a key or a
certificate. It imports nothing, so config validation can redact without httpx.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    import httpx

__all__ = [
    "CARD_PATTERN",
    "KEY_MATERIAL",
    "MASK",
    "SECRET_KEY_NAMES",
    "SECRET_PARAM_PARTS",
    "KeyMaterial",
    "ValueMask",
    "luhn_ok",
    "mask_card_numbers",
    "masked_logs",
    "redact",
    "redact_text",
    "redact_url",
]

MASK = "***"


@dataclass(frozen=True)
class KeyMaterial:
    """Field metadata (``Annotated[str, KEY_MATERIAL]``): the field takes a key or a
    certificate, so an interpolated value may span several lines (a PEM block)."""


KEY_MATERIAL = KeyMaterial()


class ValueMask:
    """Replaces known secret values (and each line of a multi-line one) with :data:`MASK`:
    what interpolation put into a pipeline, kept out of whatever the run says."""

    __slots__ = ("_parts",)

    def __init__(self, values: Iterable[str] = ()) -> None:
        # longest first, so a value that contains another is masked whole
        parts = {p for v in values for p in (v, *v.splitlines()) if len(p.strip()) > 2}
        self._parts = tuple(sorted(parts, key=len, reverse=True))

    def __bool__(self) -> bool:
        return bool(self._parts)

    def text(self, text: str) -> str:
        for part in self._parts:
            if part in text:
                text = text.replace(part, MASK)
        return text

    def deep(self, value: Any) -> Any:
        """A JSON-like value with every string masked."""
        if not self._parts:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return {k: self.deep(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.deep(v) for v in value]
        return value


SECRET_KEY_NAMES = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "access_token",
        "refresh_token",
        "authorization",
        "auth",
        "private_key",
        "client_secret",
        "key",
        "secret_key",
        "cookie",
        "signature",
    }
)
#: 13-19 digits standing alone (spaces or dashes between them): a run inside a hex digest or
#: an id (`ab4111...1111cd`) is not a card number, nor the tail of a masked one
CARD_PATTERN = re.compile(r"(?<![0-9A-Za-z*])(?:\d[ -]?){12,18}\d(?![0-9A-Za-z])")
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s:]+(?::[^/@\s]*)?@")
_BEARER = re.compile(r"(?i)\b(bearer|basic|token)\s+[A-Za-z0-9._~+/=-]{8,}")
_ASSIGNMENT = re.compile(
    r"(?i)\b(password|passwd|secret|token|api[_-]?key|access[_-]?token)\b\s*[=:]\s*[^\s&,;]+"
)


class _LogMask(logging.Filter):
    def __init__(self, mask: ValueMask) -> None:
        super().__init__()
        self.mask = mask

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self.mask.text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.mask.text(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = self.mask.text(record.exc_text)
        return True


@contextmanager
def masked_logs(mask: ValueMask, names: Iterable[str] = ("", "engine")) -> Iterator[None]:
    """While inside, every handler of the named loggers (root and ``engine``) masks the
    values of ``mask`` in what it writes."""
    if not mask:
        yield
        return
    log_filter = _LogMask(mask)
    handlers = {h for name in names for h in logging.getLogger(name).handlers}
    for handler in handlers:
        handler.addFilter(log_filter)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(log_filter)


def luhn_ok(digits: str) -> bool:
    """The Luhn check of a string of digits (card numbers)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def mask_card_numbers(text: str) -> str:
    """Mask card numbers (13-19 digits passing the Luhn check) to their first six and last
    four digits, as PCI DSS 3.4 allows: ``4111111111111111`` -> ``411111******1111``."""

    def repl(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            return digits[:6] + "*" * (len(digits) - 10) + digits[-4:]
        return match.group(0)

    return CARD_PATTERN.sub(repl, text)


def redact_text(text: str) -> str:
    """Strip URL credentials, bearer tokens, ``password=...`` pairs and card numbers."""
    text = _URL_USERINFO.sub(r"\g<scheme>", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _ASSIGNMENT.sub(lambda m: f"{m.group(1)}={MASK}", text)
    return mask_card_numbers(text) if any(c.isdigit() for c in text) else text


def redact(value: Any, masked_fields: Collection[str] = ()) -> Any:
    """A JSON value with secret-named and listed fields masked and strings redacted."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            name = str(key)
            lowered = name.lower()
            if lowered in SECRET_KEY_NAMES or lowered in masked_fields or name in masked_fields:
                out[name] = MASK
            else:
                out[name] = redact(item, masked_fields)
        return out
    if isinstance(value, list | tuple):
        return [redact(item, masked_fields) for item in value]
    return value


#: query parameters whose values never leave the process (matched as substrings, lowercase)
SECRET_PARAM_PARTS = (
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "signature",
    "sig",
    "auth",
    "credential",
    "code",
)


def redact_url(url: str | httpx.URL, secret_params: Iterable[str] = ()) -> str:
    """The URL without user info, and with secret-looking query values replaced by ``***``."""
    text = str(url)
    try:
        parts = urlsplit(text)
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc.rsplit("@", 1)[-1]
    extra = {p.lower() for p in secret_params}
    query = [
        (name, MASK if _is_secret(name, extra) else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*{}"), ""))


def _is_secret(name: str, extra: set[str]) -> bool:
    lowered = name.lower()
    return lowered in extra or any(part in lowered for part in SECRET_PARAM_PARTS)
