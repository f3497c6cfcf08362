"""The sink a dry run puts in place of every sink: it keeps what it would have written."""

from __future__ import annotations

from typing import Any

from engine.components.base import ComponentContext, Sink
from engine.records import Batch

__all__ = ["CaptureSink"]


class CaptureSink(Sink[Any]):
    """Stands in for every sink in a dry run: keeps what it would have written."""

    def __init__(self, config: Any, context: ComponentContext, into: Batch) -> None:
        super().__init__(config, context)
        self.into = into

    def resource(self) -> str | None:
        return None

    async def write(self, batch: Batch) -> None:
        self.into.extend(batch)
