"""Codecs turn bytes into records and back; ``CodecSpec`` is the config field that picks one."""

from __future__ import annotations

import io
from os import PathLike
from pathlib import PurePath
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from pydantic import BeforeValidator, Field

from engine.codecs.base import CodecConfig, Encoder
from engine.codecs.csv import CsvCodec
from engine.codecs.edi import EdiCodec
from engine.codecs.json import JsonCodec
from engine.codecs.jsonl import JsonlCodec
from engine.codecs.xml import XmlCodec
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

#: Every codec kind; add one entry here to make a new codec valid wherever ``CodecSpec`` is.
_CODECS: tuple[type[CodecConfig], ...] = (JsonCodec, JsonlCodec, CsvCodec, XmlCodec, EdiCodec)

_NAMES: tuple[str, ...] = tuple(c.model_fields["type"].default for c in _CODECS)


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
    suffix = PurePath(path).suffix.lower()
    if suffix == ".json":
        return JsonCodec()
    if suffix in (".jsonl", ".ndjson"):
        return JsonlCodec()
    if suffix == ".csv":
        return CsvCodec()
    if suffix == ".tsv":
        return CsvCodec(delimiter="\t")
    if suffix == ".xml":
        return XmlCodec()
    if suffix in (".edi", ".x12"):
        return EdiCodec()
    return None


def decode_bytes(codec: CodecConfig, data: bytes, source: str = "<bytes>") -> Chunk:
    """Decode a whole byte string into one chunk, for tests and dry-run samples."""
    result = Chunk([])
    for chunk in codec.decode(io.BytesIO(data), source=source, batch_size=10_000):
        result.records.extend(chunk.records)
        result.rejected.extend(chunk.rejected)
    return result
