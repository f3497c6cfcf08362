"""``stdout`` sink: records to standard output, JSON Lines by default."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from engine.codecs import CodecSpec, JsonlCodec
from engine.codecs.base import Encoder
from engine.components.base import Sink, SinkConfig
from engine.records import Batch

if TYPE_CHECKING:
    from engine.registry import Registry

__all__ = ["StdoutSink", "StdoutSinkConfig"]


class StdoutSinkConfig(SinkConfig):
    """Prints records to standard output."""

    type: Literal["stdout"] = "stdout"
    codec: CodecSpec = Field(default_factory=JsonlCodec, description="How to encode.")

    def resource(self) -> str | None:
        return "stdout"


class StdoutSink(Sink[StdoutSinkConfig]):
    _encoder: Encoder | None = None

    async def write(self, batch: Batch) -> None:
        if self._encoder is None:
            self._encoder = self.config.codec.encoder(sys.stdout.buffer)
        self._encoder.write(batch)
        sys.stdout.buffer.flush()

    async def close(self, *, success: bool) -> None:
        if self._encoder is not None and success:
            self._encoder.finish()
            sys.stdout.buffer.flush()


def register(registry: Registry) -> None:
    registry.register(StdoutSinkConfig, StdoutSink)
