"""The engine's logs: one handler, text or JSON lines, and the run a line belongs to.

:func:`configure` installs one handler on the root logger, so the engine's loggers and every
library's (aio_pika, httpx, sqlalchemy, uvicorn, ...) come out in the same format, on
stderr, redacted. Libraries speak at WARNING and above (their INFO too at ``debug``): their
per-request and per-statement chatter is not the engine's output. aio_pika and aiormq are
quieter still: the engine reports their reconnects itself, once per episode, so their own
records show only at ``debug``. A traceback is one ``exc`` line unless the level is ``debug``.

:func:`log_context` binds ``run_id``, ``pipeline`` and ``component`` to what runs inside it
(context variables: each asyncio task sees the values of the task that started it), and
every record logged there carries them.
"""

from __future__ import annotations

import logging
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

from engine.redact import redact, redact_text

__all__ = [
    "LEVELS",
    "LIBRARIES",
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "bound",
    "configure",
    "is_json",
    "log_context",
    "parse_level",
    "reset",
]

LogFormat = Literal["text", "json"]
LEVELS = ("debug", "info", "warning", "error", "critical")

#: the libraries whose loggers the engine's handler takes in (any other logger is, too: this
#: list is what gets a level of its own)
LIBRARIES = (
    "aio_pika",
    "aiormq",
    "asyncio",
    "asyncmy",
    "asyncssh",
    "gql",
    "httpcore",
    "httpx",
    "psycopg",
    "redis",
    "sqlalchemy",
    "starlette",
    "uvicorn",
)
#: libraries whose failures the engine reports in its own words (a reconnect episode)
_REPORTED_BY_ENGINE = ("aio_pika", "aiormq")

_FIELDS = ("run_id", "pipeline", "component")
_run_id: ContextVar[str | None] = ContextVar("engine_run_id", default=None)
_pipeline: ContextVar[str | None] = ContextVar("engine_pipeline", default=None)
_component: ContextVar[str | None] = ContextVar("engine_component", default=None)
_VARS = {"run_id": _run_id, "pipeline": _pipeline, "component": _component}

# the attributes every LogRecord has: anything else on a record came as ``extra``
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


@contextmanager
def log_context(**values: str | None) -> Iterator[None]:
    """Bind ``run_id``, ``pipeline`` and/or ``component`` to the records logged inside."""
    tokens = [(_VARS[name], _VARS[name].set(value)) for name, value in values.items()]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bound() -> dict[str, str]:
    """The context bound here, for a callback that logs later from another task."""
    return {name: value for name, var in _VARS.items() if (value := var.get()) is not None}


def parse_level(level: str | int) -> int:
    """One of :data:`LEVELS` (any case; the CLI and the settings check it) or a number ->
    the logging level."""
    if isinstance(level, int):
        return level
    return logging.getLevelNamesMapping()[level.upper()]


def _context_of(record: logging.LogRecord) -> dict[str, str]:
    """The record's run, pipeline and component: given as ``extra``, else the context's."""
    out: dict[str, str] = {}
    for name in _FIELDS:
        value = getattr(record, name, None) or _VARS[name].get()
        if value is not None:
            out[name] = str(value)
    return out


def _exc_text(record: logging.LogRecord, full: bool) -> str | None:
    """The record's exception: its traceback, or its last line; a filter that masked the
    record's values (engine.redact.masked_logs) left the masked traceback in ``exc_text``."""
    if not record.exc_info or record.exc_info[1] is None:
        return None
    error = record.exc_info[1]
    text = record.exc_text or "".join(traceback.format_exception(error)).rstrip()
    if full:
        return redact_text(text)
    line = f"{type(error).__name__}: {error}"
    if record.exc_text and line not in record.exc_text:  # the message was masked
        line = record.exc_text.strip().splitlines()[-1]
    return redact_text(" ".join(line.split()))


class _Formatter(logging.Formatter):
    def __init__(self, *, full_tracebacks: bool = False) -> None:
        super().__init__()
        self.full_tracebacks = full_tracebacks


class TextFormatter(_Formatter):
    """``LEVEL logger: component: message``; a traceback only when ``full_tracebacks``."""

    def format(self, record: logging.LogRecord) -> str:
        component = _context_of(record).get("component")
        where = f"{component}: " if component else ""
        text = f"{record.levelname} {record.name}: {where}{redact_text(record.getMessage())}"
        exc = _exc_text(record, self.full_tracebacks)
        if exc is not None:
            text += f"\n{exc}" if self.full_tracebacks else f" ({exc})"
        return text


class JsonFormatter(_Formatter):
    """One JSON object per record, on one line: ``ts``, ``level``, ``logger``, ``msg``, the
    run's context, the record's ``extra`` fields and ``exc`` (the full traceback, in the
    string, only when ``full_tracebacks``)."""

    def format(self, record: logging.LogRecord) -> str:
        import orjson

        ts = datetime.fromtimestamp(record.created, UTC)
        out: dict[str, Any] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": redact_text(record.getMessage()),
            **_context_of(record),
        }
        extra = {k: v for k, v in vars(record).items() if k not in _STANDARD and k not in _FIELDS}
        out.update(redact(extra))
        exc = _exc_text(record, self.full_tracebacks)
        if exc is not None:
            out["exc"] = exc
        return orjson.dumps(out, default=str).decode()


class _LibraryFilter(logging.Filter):
    """Lets a library's record through only at the engine's level for libraries; the
    libraries whose failures the engine reports itself only at ``debug``."""

    def __init__(self, level: int, library_level: int) -> None:
        super().__init__()
        self.level = level
        self.library_level = library_level

    def filter(self, record: logging.LogRecord) -> bool:
        name = record.name
        if name == "engine" or name.startswith("engine."):
            return True
        if name.split(".", 1)[0] in _REPORTED_BY_ENGINE:
            return self.level <= logging.DEBUG
        return record.levelno >= self.library_level


class _Stderr(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is when a record comes (a progress display or a
    test may have replaced it since the handler was made)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


@dataclass
class _Installed:
    """What :func:`configure` put in place, for the next call and :func:`reset`."""

    format: LogFormat = "text"
    handler: logging.Handler | None = None


_installed = _Installed()


def is_json() -> bool:
    """Whether the handler writes JSON lines (then nothing else may write to stderr)."""
    return _installed.format == "json"


def configure(level: str | int = "info", fmt: LogFormat = "text") -> None:
    """Send every logger's records through one stderr handler, in ``fmt``, from ``level``."""
    value = parse_level(level)
    debug = value <= logging.DEBUG
    library_level = logging.INFO if debug else max(value, logging.WARNING)
    handler = _Stderr()
    formatter = JsonFormatter if fmt == "json" else TextFormatter
    handler.setFormatter(formatter(full_tracebacks=debug))
    handler.addFilter(_LibraryFilter(value, library_level))
    root = logging.getLogger()
    if _installed.handler is not None:
        root.removeHandler(_installed.handler)
    root.addHandler(handler)
    root.setLevel(min(value, library_level))
    engine = logging.getLogger("engine")
    engine.handlers.clear()
    engine.propagate = True
    engine.setLevel(value)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith("engine.") and isinstance(logger, logging.Logger):
            logger.setLevel(logging.NOTSET)  # one level for the whole engine: this one
    for name in LIBRARIES:
        # a library logger that set its own level or handlers (uvicorn does) follows ours
        logger = logging.getLogger(name)
        logger.setLevel(library_level)
        logger.handlers.clear()
        logger.propagate = True
    _installed.format, _installed.handler = fmt, handler


def reset() -> None:
    """Undo :func:`configure`: its handler removed, the levels it set back to unset."""
    root = logging.getLogger()
    if _installed.handler is not None:
        root.removeHandler(_installed.handler)
    root.setLevel(logging.WARNING)
    for name in ("engine", *LIBRARIES):
        logging.getLogger(name).setLevel(logging.NOTSET)
    logging.getLogger("engine.run").setLevel(logging.NOTSET)
    _installed.format, _installed.handler = "text", None
