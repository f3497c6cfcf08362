"""ANSI X12 EDI: tokenizer, envelopes, loops, writer, 997 acknowledgments and the codec.

The codec's options load with this package; the rest is imported on first use (PEP 562),
so a pipeline that reads no EDI does not pay for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.codecs.edi.codec import EdiCodec
from engine.exports import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _HOME, __all__)
