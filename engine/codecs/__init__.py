"""Codecs turn bytes into records and back; ``CodecSpec`` is the config field that picks one."""

from __future__ import annotations

import io
from os import PathLike
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field

from engine.codecs.base import CodecConfig, Encoder
from engine.codecs.csv import CsvCodec
from engine.codecs.json import JsonCodec
from engine.codecs.jsonl import JsonlCodec
from engine.codecs.registry import default_codecs
from engine.records import Chunk

__all__ = [
    "CodecConfig",
    "CodecSpec",
    "CsvCodec",
    "Encoder",
    "JsonCodec",
    "JsonlCodec",
    "codec_for_path",
    "decode_bytes",
]

#: Every registered codec (built-in and installed): each is valid wherever ``CodecSpec`` is.
_CODECS: tuple[type[CodecConfig], ...] = tuple(kind.config for kind in default_codecs())

_NAMES: tuple[str, ...] = tuple(kind.type for kind in default_codecs())


def _shorthand(value: Any) -> Any:
    """Accept ``codec = "csv"`` as ``codec = { type = "csv" }``."""
    return {"type": value} if isinstance(value, str) else value


if TYPE_CHECKING:
    CodecSpec = CodecConfig
else:
    _Union = Annotated[Union[_CODECS], Field(discriminator="type")]  # noqa: UP007
    CodecSpec = Annotated[
        _Union,
        BeforeValidator(
            _shorthand,
            json_schema_input_type=Union[Literal[_NAMES], _Union],  # noqa: UP007
        ),
    ]


def codec_for_path(path: str | PathLike[str]) -> CodecConfig | None:
    """Guess the codec from a file name's extension; None when it says nothing known."""
    return default_codecs().for_path(path)


def decode_bytes(codec: CodecConfig, data: bytes, source: str = "<bytes>") -> Chunk:
    """Decode a whole byte string into one chunk, for tests and dry-run samples."""
    result = Chunk([])
    for chunk in codec.decode(io.BytesIO(data), source=source, batch_size=10_000):
        result.records.extend(chunk.records)
        result.rejected.extend(chunk.rejected)
    return result
