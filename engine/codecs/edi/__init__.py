"""ANSI X12 EDI: tokenizer, envelopes, loops, writer, 997 acknowledgments and the codec.

The codec's options load with this package; the rest is imported on first use (PEP 562),
so a pipeline that reads no EDI does not pay for it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from engine.codecs.edi.codec import EdiCodec

if TYPE_CHECKING:
    from engine.codecs.edi.ack997 import acknowledge, acknowledgments
    from engine.codecs.edi.schemas import element_labels, schema_for

__all__ = ["EdiCodec", "acknowledge", "acknowledgments", "element_labels", "schema_for"]

_HOME = {
    "acknowledge": "engine.codecs.edi.ack997",
    "acknowledgments": "engine.codecs.edi.ack997",
    "element_labels": "engine.codecs.edi.schemas",
    "schema_for": "engine.codecs.edi.schemas",
}


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.codecs.edi' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
