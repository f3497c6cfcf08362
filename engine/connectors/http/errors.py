"""httpx's exceptions and HTTP status codes mapped, in one place, into the engine's error tree.

Transient (retried by the runtime): 408, 425, 429, every 5xx, connection errors, timeouts.
Permanent (routed by ``on_error``): other 4xx, bad URLs, protocol misuse, undecodable bodies.
Messages name the method and a redacted URL, never credentials.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import httpx

from engine.errors import EngineError, PermanentError, TransientError
from engine.redact import redact_url

__all__ = [
    "EXCEPTION_MAP",
    "TRANSIENT_STATUS",
    "HttpPermanentError",
    "HttpTransientError",
    "error_for_status",
    "map_http_errors",
    "retry_after_seconds",
]

TRANSIENT_STATUS = frozenset({408, 425, 429})


class HttpTransientError(TransientError):
    """A retryable HTTP failure; ``status`` is None for connection errors and timeouts."""

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: float | None = None
    ) -> None:
        self.status = status
        super().__init__(message, retry_after=retry_after)


class HttpPermanentError(PermanentError):
    """An HTTP failure that retrying cannot fix (4xx other than 408/425/429, bad URL...)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


#: every exception class httpx exports -> the engine error it becomes (tested for completeness)
EXCEPTION_MAP: dict[type[Exception], type[EngineError]] = {
    httpx.TimeoutException: HttpTransientError,
    httpx.ConnectTimeout: HttpTransientError,
    httpx.ReadTimeout: HttpTransientError,
    httpx.WriteTimeout: HttpTransientError,
    httpx.PoolTimeout: HttpTransientError,
    httpx.NetworkError: HttpTransientError,
    httpx.ConnectError: HttpTransientError,
    httpx.ReadError: HttpTransientError,
    httpx.WriteError: HttpTransientError,
    httpx.CloseError: HttpTransientError,
    httpx.RemoteProtocolError: HttpTransientError,
    httpx.ProxyError: HttpTransientError,
    httpx.TransportError: HttpTransientError,
    httpx.RequestError: HttpTransientError,
    httpx.HTTPError: HttpTransientError,
    httpx.ProtocolError: HttpPermanentError,
    httpx.LocalProtocolError: HttpPermanentError,
    httpx.UnsupportedProtocol: HttpPermanentError,
    httpx.DecodingError: HttpPermanentError,
    httpx.TooManyRedirects: HttpPermanentError,
    httpx.HTTPStatusError: HttpPermanentError,  # refined by status in error_for_status
    httpx.InvalidURL: HttpPermanentError,
    httpx.CookieConflict: HttpPermanentError,
    httpx.StreamError: HttpPermanentError,
    httpx.StreamConsumed: HttpPermanentError,
    httpx.StreamClosed: HttpPermanentError,
    httpx.ResponseNotRead: HttpPermanentError,
    httpx.RequestNotRead: HttpPermanentError,
}


def _target(exc_type: type[BaseException]) -> type[EngineError]:
    for klass in exc_type.__mro__:
        target = EXCEPTION_MAP.get(klass)  # type: ignore[call-overload,unused-ignore]
        if target is not None:
            return target
    return HttpPermanentError


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or invalid."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _reason(response: httpx.Response) -> str:
    phrase = response.reason_phrase or ""
    return f"HTTP {response.status_code} {phrase}".rstrip()


def error_for_status(
    response: httpx.Response, secret_params: Iterable[str] = ()
) -> EngineError | None:
    """The error a response stands for, or None for 1xx-3xx."""
    status = response.status_code
    if status < 400:
        return None
    where = f"{response.request.method} {redact_url(response.request.url, secret_params)}"
    message = f"{where}: {_reason(response)}"
    if status in TRANSIENT_STATUS or status >= 500:
        retry_after = retry_after_seconds(response.headers.get("retry-after"))
        return HttpTransientError(message, status=status, retry_after=retry_after)
    return HttpPermanentError(message, status=status)


@contextmanager
def map_http_errors(
    method: str, url: str | httpx.URL, secret_params: Iterable[str] = ()
) -> Iterator[None]:
    """Turn any httpx exception raised inside into the mapped engine error."""
    try:
        yield
    except httpx.HTTPStatusError as exc:
        error = error_for_status(exc.response, secret_params)
        raise (error or HttpPermanentError(str(exc))) from None
    except (httpx.HTTPError, httpx.InvalidURL, httpx.CookieConflict, httpx.StreamError) as exc:
        target = _target(type(exc))
        # the class name and the OS-level reason; httpx messages can carry the full URL
        detail = type(exc).__name__
        cause = exc.__context__ or exc.__cause__
        if isinstance(cause, OSError) and cause.strerror:
            detail += f": {cause.strerror}"
        message = f"{method} {redact_url(url, secret_params)}: {detail}"
        if issubclass(target, TransientError):
            raise HttpTransientError(message) from None
        raise HttpPermanentError(message) from None
