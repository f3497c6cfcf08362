"""`--log-level` and `--log-format`: on the `engine` group, and again on `run` and `serve`.

The most specific choice wins: the command's option, then the group's, then `-v`/`-q`, then
ENGINE_LOG_LEVEL / ENGINE_LOG_FORMAT. In JSON mode nothing but JSON lines reaches stderr: what
a command would print there for people is logged instead (``engine.cli``).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any, TypeVar, cast

import click

from engine.cli.environment import current_settings
from engine.cli.output import err_console
from engine.logs import LEVELS, LogFormat, configure, parse_level

__all__ = ["log_options", "setup_logging"]

F = TypeVar("F", bound=Callable[..., Any])

_GROUP_KEY = "engine.log"
log = logging.getLogger("engine.cli")


def log_options(fn: F) -> F:
    """The two options, on a group or a command."""
    fn = click.option(
        "--log-format",
        type=click.Choice(["text", "json"], case_sensitive=False),
        default=None,
        help="Log lines as text, or as one JSON object per line on stderr "
        "(default: ENGINE_LOG_FORMAT, else text).",
    )(fn)
    fn = click.option(
        "--log-level",
        type=click.Choice(LEVELS, case_sensitive=False),
        default=None,
        help="Least severe log record shown (default: ENGINE_LOG_LEVEL, else info).",
    )(fn)
    return fn


def setup_logging(
    level: str | None = None,
    fmt: str | None = None,
    *,
    verbose: bool = False,
    quiet: bool = False,
) -> int:
    """Configure the logs of this command; returns the level in force."""
    ctx = click.get_current_context(silent=True)
    chosen: dict[str, str | None] = {}
    if ctx is not None:
        chosen = ctx.find_root().meta.setdefault(_GROUP_KEY, {"level": None, "format": None})
        if ctx.parent is None:  # the group itself: remember for the command
            chosen.update(level=level, format=fmt)
    settings = current_settings()
    flags = "debug" if verbose else "warning" if quiet else None
    final_level = (level or chosen.get("level") or flags or settings.engine_log_level).lower()
    final_format = cast(
        LogFormat, (fmt or chosen.get("format") or settings.engine_log_format).lower()
    )
    configure(final_level, final_format)
    # rich writes to stderr what a command says to people: in JSON mode it becomes records
    err_console.file = _LogLines() if final_format == "json" else None  # type: ignore[assignment]
    return parse_level(final_level)


class _LogLines(io.TextIOBase):
    """A text stream whose every line becomes a record of ``engine.cli``."""

    def __init__(self) -> None:
        super().__init__()
        self._pending = ""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            if line.strip():
                log.log(_level_of(line), line.strip())
        return len(text)

    def flush(self) -> None:
        if self._pending.strip():
            line, self._pending = self._pending, ""
            log.log(_level_of(line), line.strip())


def _level_of(line: str) -> int:
    head = line.lstrip().lower()
    if head.startswith(("error", "internal error")):
        return logging.ERROR
    if head.startswith("warning"):
        return logging.WARNING
    return logging.INFO
