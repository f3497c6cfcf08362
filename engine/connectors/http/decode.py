"""Response bodies to records: JSON through a JMESPath `records` path, other formats by codec."""

from __future__ import annotations

from typing import Any

import orjson

from engine.codecs import CodecConfig, JsonCodec, decode_bytes
from engine.errors import DataError
from engine.mapping import Expression
from engine.records import Chunk, Rejected

__all__ = ["decode_body", "split_records"]


def split_records(value: Any, source: str) -> Chunk:
    """A list of objects (or one object) as a chunk; anything else is rejected with its place."""
    if value is None:
        return Chunk([])
    items = value if isinstance(value, list) else [value]
    chunk = Chunk([])
    for index, item in enumerate(items):
        if isinstance(item, dict):
            chunk.records.append(item)
        else:
            chunk.rejected.append(
                Rejected(
                    item, f"expected an object, got {type(item).__name__}", f"{source}[{index}]"
                )
            )
    return chunk


def decode_body(
    data: bytes, codec: CodecConfig | None, records: Expression | None, source: str
) -> tuple[Any, Chunk]:
    """(document, chunk): the document is the parsed JSON for pagination, None for other codecs."""
    if codec is None or isinstance(codec, JsonCodec):
        if not data.strip():
            return None, Chunk([])
        try:
            document = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise DataError(f"response is not JSON: {exc}", source=source) from None
        selected = records.search(document) if records is not None else document
        return document, split_records(selected, source)
    return None, decode_bytes(codec, data, source=source)
