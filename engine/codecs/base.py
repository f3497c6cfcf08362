"""The codec contract: bytes to records (streaming) and records to bytes."""

from __future__ import annotations

import codecs
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, BinaryIO

from pydantic import BaseModel, ConfigDict

from engine.errors import DataError
from engine.records import Batch, Chunk

__all__ = ["CodecConfig", "CodecError", "Encoder", "known_encoding"]


def known_encoding(value: str) -> str:
    """Validate a codec's ``encoding`` option: a text encoding Python knows."""
    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(f"unknown text encoding {value!r}") from None
    return value


class CodecError(DataError):
    """Bad input to a codec, with a stable ``code`` (``json.non-finite``) beside the location.

    Without a source (an encoder does not know its file) the record number leads instead
    of a placeholder: ``record 3: cannot encode as JSON: ... [json.unencodable]``; the
    sink running the encoder adds its own name and path.
    """

    def __init__(self, code: str, message: str, **where: Any) -> None:
        self.code = code
        super().__init__(message, **where)

    def _render(self) -> str:
        if self.source is None:
            where = f"record {self.record}: " if self.record is not None else ""
            text = where + self.reason
        else:
            text = super()._render()
        return f"{text} [{self.code}]"


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
