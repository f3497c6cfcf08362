"""One error tree for the whole engine.

Every error a user can see derives from :class:`EngineError`. Connectors map their
library's exceptions into :class:`TransientError` (retried) or :class:`PermanentError`
(routed by ``on_error``) in one place each.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ConfigError",
    "DataError",
    "Diagnostic",
    "EngineError",
    "PartialWriteError",
    "PermanentError",
    "RegistrationError",
    "Rejected",
    "RunError",
    "SettingsError",
    "Severity",
    "TransientError",
]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """A located finding about a pipeline file: stable code, message, place and hint."""

    code: str
    message: str
    file: str | None = None
    line: int | None = None
    column: int | None = None
    hint: str | None = None
    severity: Severity = Severity.ERROR

    @property
    def location(self) -> str:
        parts = [self.file or "<pipeline>"]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "hint": self.hint,
        }

    def __str__(self) -> str:
        text = f"{self.location}: {self.severity.value}[{self.code}]: {self.message}"
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text


class EngineError(Exception):
    """Base of every error the engine raises on purpose."""


class FatalError(EngineError):
    """Stops the run whatever the component's `on_error` says: never routed to a dead letter,
    never retried (a compliance halt, a broken rules file, a misuse of the engine's API)."""


class RegistrationError(FatalError):
    """A component kind or codec registered wrongly: no ``type`` Literal, or a class of the
    wrong role (a sink registered for a source config)."""


class ConfigError(EngineError):
    """A pipeline file is invalid; carries every diagnostic found, not just the first."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        super().__init__("\n".join(str(d) for d in diagnostics))

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.diagnostics if d.severity is Severity.ERROR]


class SettingsError(EngineError):
    """Environment variables that do not parse: one line per variable, naming it and the
    problem (and the value, unless the variable holds a secret)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class DataError(EngineError):
    """Input data that cannot be read: names the file and the line, record or byte offset."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        column: int | None = None,
        offset: int | None = None,
        record: int | None = None,
    ) -> None:
        self.reason = message
        self.source = source
        self.line = line
        self.column = column
        self.offset = offset
        self.record = record
        super().__init__(self._render())

    @property
    def location(self) -> str:
        """``source:line:column``, as far as known."""
        where = self.source or "<data>"
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        return where

    def _render(self) -> str:
        where = self.location
        extra = []
        if self.offset is not None:
            extra.append(f"byte offset {self.offset}")
        if self.record is not None:
            extra.append(f"record {self.record}")
        suffix = f" ({', '.join(extra)})" if extra else ""
        return f"{where}: {self.reason}{suffix}"


class TransientError(EngineError):
    """A failure worth retrying: timeouts, 429/5xx, dropped connections."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class PermanentError(EngineError):
    """A failure that retrying cannot fix: bad request, constraint violation, bad data."""


@dataclass(slots=True)
class Rejected:
    """A record (or raw input) that could not be processed, with the reason and where.

    What ``on_error`` routes; it lives here, beside the errors that carry it, so that the error
    tree imports nothing above it (``engine.records`` re-exports it).
    """

    record: Any
    reason: str
    location: str | None = None


class PartialWriteError(PermanentError):
    """A sink delivered some records of a batch; ``rejected`` holds the ones it could not."""

    def __init__(self, message: str, rejected: list[Rejected]) -> None:
        self.rejected = rejected
        super().__init__(message)


@dataclass(slots=True)
class RunError(EngineError):
    """A pipeline run failed; names the component and the stage."""

    component: str
    message: str
    cause: BaseException | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        Exception.__init__(self, f"{self.component}: {self.message}")

    def __str__(self) -> str:
        return f"{self.component}: {self.message}"
