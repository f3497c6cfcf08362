"""URLs safe to print: no user info, and secret-looking query values replaced by ``***``.

Kept apart from the httpx error map so that config validation can redact without httpx.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

if TYPE_CHECKING:
    import httpx

__all__ = ["SECRET_PARAM_PARTS", "redact_url"]

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
        (name, "***" if _is_secret(name, extra) else value)
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(query, safe="*{}"), ""))


def _is_secret(name: str, extra: set[str]) -> bool:
    lowered = name.lower()
    return lowered in extra or any(part in lowered for part in SECRET_PARAM_PARTS)
