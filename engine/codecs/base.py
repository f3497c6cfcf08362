"""The codec contract: bytes to records (streaming) and records to bytes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import BinaryIO

from pydantic import BaseModel, ConfigDict

from engine.records import Batch, Chunk

__all__ = ["CodecConfig", "Encoder"]


class Encoder(ABC):
    """Writes records to a binary stream; ``finish`` writes any trailer (e.g. ``]``)."""

    @abstractmethod
    def write(self, records: Batch) -> None: ...

    def finish(self) -> None:  # noqa: B027 - an optional hook: most encoders have no trailer
        pass


class CodecConfig(BaseModel, ABC):
    """A codec's options; ``type`` names the codec. Decoding streams: memory stays flat."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str

    @abstractmethod
    def decode(self, stream: BinaryIO, *, source: str, batch_size: int = 1000) -> Iterator[Chunk]:
        """Yield chunks of at most ``batch_size`` records.

        A record that cannot be decoded but leaves the stream readable (a malformed CSV row)
        goes into ``Chunk.rejected`` with its location; an error that leaves the rest
        unreadable raises :class:`engine.errors.DataError` naming ``source`` and the
        line or byte offset. Records already yielded stay delivered.
        """

    @abstractmethod
    def encoder(self, stream: BinaryIO) -> Encoder: ...

    def file_extension(self) -> str:
        return self.type
