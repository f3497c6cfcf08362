"""What a connector needs from the component that runs it, as narrow protocols.

Connectors sit below components: they take these protocols, never
:class:`engine.components.base.ComponentContext` itself, which satisfies them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from engine.settings import EngineSettings

__all__ = ["NULL_METER", "ConnectorContext", "CursorStore", "Meter"]

T = TypeVar("T")


class CursorStore(Protocol):
    """Values a component keeps between runs (the workspace's state store)."""

    def get(self, pipeline: str, component: str, key: str, default: Any = None) -> Any: ...

    def set(self, pipeline: str, component: str, key: str, value: Any) -> None: ...


class Meter(Protocol):
    """Where a connector reports what only it sees, for the metrics: cheap, never raises."""

    def response(self, status: int) -> None:
        """An HTTP response arrived with this status code."""
        ...

    def backlog(self, records: int) -> None:
        """This many messages wait at the source (a queue's depth): how far it lags."""
        ...


class _NullMeter:
    def response(self, status: int) -> None:
        pass

    def backlog(self, records: int) -> None:
        pass


#: the meter of a component no metrics watch
NULL_METER: Meter = _NullMeter()


class ConnectorContext(Protocol):
    """Who the connection belongs to, and the runtime's hooks for its calls and events."""

    @property
    def component_id(self) -> str: ...

    @property
    def pipeline(self) -> str: ...

    @property
    def dry_run(self) -> bool: ...

    @property
    def state(self) -> CursorStore | None: ...

    @property
    def settings(self) -> EngineSettings:
        """The environment's settings (INTEGRATION_TIMEOUT, INTEGRATION_REDIS_URL, ...)."""
        ...

    @property
    def timeout(self) -> float | None:
        """The component's `timeout`: seconds one request or connect may take (None: unset)."""
        ...

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one operation under the runtime's timeout, retry policy and audit."""
        ...

    def emit(self, action: str, level: str = "INFO", **details: object) -> None:
        """Report a connection event (circuit opened, token refreshed) to the audit trail."""
        ...

    @property
    def meter(self) -> Meter:
        """Where response codes and backlog go (the runtime's metrics)."""
        ...

    def resolve(self, path: str | Path) -> Path:
        """A path from the pipeline file, relative to the file's folder."""
        ...
