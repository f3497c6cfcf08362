"""ANSI X12 EDI: tokenizer, envelopes, loops, writer, 997 acknowledgments and the codec."""

from engine.codecs.edi.ack997 import acknowledge, acknowledgments
from engine.codecs.edi.codec import EdiCodec
from engine.codecs.edi.schemas import element_labels, schema_for

__all__ = ["EdiCodec", "acknowledge", "acknowledgments", "element_labels", "schema_for"]
