"""Webhook request bodies to records: JSON, form-encoded, raw text, or a codec.

``content = "auto"`` (the default) reads ``application/x-www-form-urlencoded`` bodies as forms
and every other body as JSON. A form whose only field is ``payload`` carries a JSON document
(GitHub's form content type, Slack's interactive payloads); any other form is one record of its
fields (Slack slash commands), a repeated field becoming a list. ``content = "text"`` makes the
whole body one record ``{"body": TEXT, "content_type": HEADER}``.
"""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import parse_qsl

import orjson
from jmespath.exceptions import JMESPathError

from engine.codecs import CodecConfig, decode_bytes
from engine.connectors.http.decode import split_records
from engine.errors import DataError
from engine.mapping import Expression
from engine.records import Batch

__all__ = ["BodyKind", "decode_request_body"]

BodyKind = Literal["auto", "json", "form", "text"]

FORM = "application/x-www-form-urlencoded"


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _text(body: bytes, what: str, where: str) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        reason = f"request body is not UTF-8 {what}"
        raise DataError(reason, source=where, offset=exc.start) from None


def _json(data: bytes | str, where: str, content_type: str | None) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        sent = f" (Content-Type: {content_type})" if content_type else ""
        raise DataError(
            f"request body is not JSON{sent}: {exc.msg}", source=where, offset=exc.pos
        ) from None


def _form(body: bytes, where: str, content_type: str | None) -> Any:
    text = _text(body, "form data", where)
    fields: dict[str, Any] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        if name in fields:
            previous = fields[name]
            fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            fields[name] = value
    payload = fields.get("payload")
    if len(fields) == 1 and isinstance(payload, str):
        return _json(payload, f"{where} payload", content_type)
    return fields


def _select(records: Expression | None, document: Any, where: str) -> Any:
    if records is None:
        return document
    try:
        return records.search(document)
    except JMESPathError as exc:  # a function given a value of the wrong type
        reason = f"request body: `records` cannot select from it: {exc}"
        raise DataError(reason, source=where) from None


def decode_request_body(
    body: bytes,
    content_type: str | None,
    *,
    kind: BodyKind,
    codec: CodecConfig | None,
    records: Expression | None,
    where: str,
) -> Batch:
    """The records of one request; a body that cannot be read raises a DataError."""
    if codec is not None:
        chunk = decode_bytes(codec, body, source=where)
    else:
        if kind == "auto":
            kind = "form" if _media_type(content_type) == FORM else "json"
        if kind == "text":
            return [{"body": _text(body, "text", where), "content_type": content_type}]
        if not body.strip():
            return []
        document = (
            _form(body, where, content_type) if kind == "form" else _json(body, where, content_type)
        )
        chunk = split_records(_select(records, document, where), where)
    if chunk.rejected:
        first = chunk.rejected[0]
        raise DataError(f"request body: {first.reason}", source=first.location or where)
    return chunk.records
