"""Delivering a batch one request per record, with bounded concurrency and no resends.

The runtime retries a sink's ``write(batch)`` as a whole on a transient error. This class
remembers which records of the batch in hand were already delivered, so a retried write
sends only the rest: a 429 in the middle of a batch does not duplicate its first half.
On a transient error workers stop taking new records (the endpoint asked us to slow down);
on a permanent one the other records are still delivered before the error is raised.
"""

from __future__ import annotations

import hashlib
import io
import string
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import quote

import anyio
import orjson

from engine.codecs import CodecConfig, JsonCodec, JsonlCodec
from engine.codecs.json import dump_default
from engine.errors import DataError, EngineError, PermanentError, TransientError
from engine.records import Batch, Record

__all__ = ["RecordDelivery", "UrlTemplate", "content_type", "encode_batch", "encode_record"]


class UrlTemplate:
    """``https://api/items/{sku}``: fields (dotted paths allowed) filled from each record."""

    def __init__(self, template: str) -> None:
        self.template = template
        self.fields = tuple(
            name for _, name, _, _ in string.Formatter().parse(template) if name is not None
        )
        for name in self.fields:
            if not name or any(c in name for c in "!:[]"):
                raise ValueError(f"invalid URL template field {{{name}}} in {template!r}")

    @property
    def static(self) -> bool:
        return not self.fields

    def render(self, record: Record) -> str:
        if not self.fields:
            return self.template
        values: dict[str, str] = {}
        for name in self.fields:
            value: Any = record
            for part in name.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if value is None:
                raise PermanentError(f"URL template field {{{name}}} is missing in the record")
            values[name] = quote(str(value), safe="")
        # str.format would read dotted names as attributes: substitute literally
        out = self.template
        for name, value in values.items():
            out = out.replace("{" + name + "}", value)
        return out


def content_type(codec: CodecConfig | None) -> str:
    kind = codec.type if codec is not None else "json"
    return {
        "json": "application/json",
        "jsonl": "application/x-ndjson",
        "csv": "text/csv",
        "xml": "application/xml",
    }.get(kind, "application/octet-stream")


def encode_record(codec: CodecConfig | None, record: Record) -> bytes:
    """One record as a request body: a JSON object for json, the codec's bytes otherwise."""
    if codec is None or isinstance(codec, JsonCodec | JsonlCodec):
        try:
            return orjson.dumps(record, default=dump_default)
        except TypeError as exc:
            raise DataError(f"record cannot be encoded as JSON: {exc}") from None
    return encode_batch(codec, [record])


def encode_batch(codec: CodecConfig | None, batch: Batch) -> bytes:
    buffer = io.BytesIO()
    encoder = (codec or JsonCodec()).encoder(buffer)
    encoder.write(batch)
    encoder.finish()
    return buffer.getvalue()


def idempotency_value(method: str, url: str, body: bytes) -> str:
    """The same request always gets the same key, so a retried delivery is recognised."""
    digest = hashlib.sha256(method.encode() + b" " + url.encode() + b"\n" + body)
    return digest.hexdigest()[:40]


class RecordDelivery:
    """Sends each record of a batch once, ``concurrency`` at a time."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self._batch: Batch | None = None
        self._done: set[int] = set()

    async def deliver(self, batch: Batch, send: Callable[[Record], Awaitable[None]]) -> None:
        if batch is not self._batch:
            self._batch, self._done = batch, set()
        pending = iter([i for i in range(len(batch)) if i not in self._done])
        errors: list[EngineError] = []
        halt = False

        async def worker() -> None:
            nonlocal halt
            for index in pending:  # one shared iterator: each record is taken once
                if halt:
                    return
                try:
                    await send(batch[index])
                except TransientError as exc:
                    errors.append(exc)
                    halt = True
                    return
                except EngineError as exc:
                    errors.append(exc)
                else:
                    self._done.add(index)

        workers = min(self.concurrency, len(batch) - len(self._done))
        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(worker)
        if errors:
            raise _worst(errors)
        self._batch, self._done = None, set()

    @property
    def delivered(self) -> int:
        return len(self._done)


def _worst(errors: list[EngineError]) -> EngineError:
    """A permanent error wins (retrying cannot help); else the longest-waiting transient one."""
    permanent = [e for e in errors if not isinstance(e, TransientError)]
    if permanent:
        first = permanent[0]
        if len(permanent) > 1:
            return PermanentError(f"{first} (and {len(permanent) - 1} more records failed)")
        return first
    transient = [e for e in errors if isinstance(e, TransientError)]
    return max(transient, key=lambda e: e.retry_after or 0.0)
