"""The ``edi`` codec (ANSI X12): one record per transaction set, and back.

Record shape::

    {"interchange": {"sender_qualifier": "ZZ", "sender_id": "ACME", "receiver_qualifier": "ZZ",
                     "receiver_id": "SHOP", "date": "240131", "time": "1200",
                     "control_number": "000000001", "version": "00401", "usage": "P",
                     "ack_requested": "0", "authorization_qualifier": "00", "authorization": "",
                     "security_qualifier": "00", "security": ""},
     "group": {"functional_id": "PO", "sender": "ACME", "receiver": "SHOP", "date": "20240131",
               "time": "1200", "control_number": "1", "agency": "X", "version": "004010"},
     "transaction_set": "850", "control_number": "0001",
     "segments": [{"id": "BEG", "BEG01": "00", ...},
                  {"loop": "PO1", "segments": [{"id": "PO1", ...}, {"id": "PID", ...}]}]}

ST and SE are not in ``segments`` (ST03 is ``implementation`` when present); loops follow
:mod:`engine.codecs.edi.schemas`, and segment values follow :mod:`engine.codecs.edi.loops`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import BinaryIO, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from engine.codecs.base import CodecConfig, Encoder, known_encoding
from engine.codecs.edi.tokenizer import Delimiters
from engine.records import Chunk

__all__ = ["EdiCodec"]


class EdiCodec(CodecConfig):
    """ANSI X12 interchanges; separators are read from each ISA header when decoding."""

    extensions: ClassVar[Mapping[str, Mapping[str, object]]] = {"edi": {}, "x12": {}}
    type: Literal["edi"] = "edi"
    standard: Literal["x12"] = Field(default="x12", description="The EDI standard (X12 only).")
    strict: bool = Field(
        default=True,
        description=(
            "Refuse an interchange whose counts (SE01, GE01, IEA01) or control numbers do not "
            "match, whose trailers are missing or that holds an empty segment (`~~`): it is "
            "rejected whole, as X12 text, and routed by `on_error`; reading goes on with the "
            "next interchange. When false its records are delivered with the problems listed "
            "under `errors`."
        ),
    )
    loops: bool = Field(
        default=True,
        description=(
            "Nest segments into loops for known sets (810, 830, 846, 850, 855, 856, 997); "
            "false keeps `segments` flat."
        ),
    )
    emit: Literal["transactions", "acknowledgments"] = Field(
        default="transactions",
        description=(
            "`acknowledgments`: decode to one 997 record per functional group received "
            "(problems become rejections) instead of the transaction sets."
        ),
    )
    encoding: str = Field(default="utf-8", description="Text encoding of the interchange.")
    # -- encoding options -----------------------------------------------------------------
    element_separator: str = Field(default="*", min_length=1, max_length=1)
    component_separator: str = Field(default=">", min_length=1, max_length=1)
    repetition_separator: str = Field(
        default="^", min_length=1, max_length=1, description="ISA11 for versions 00402 and up."
    )
    segment_terminator: str = Field(default="~", min_length=1, max_length=1)
    newline: bool = Field(default=True, description="Write a line break after each segment.")
    sender_qualifier: str = Field(default="ZZ", max_length=2)
    sender_id: str = Field(
        default="", max_length=15, description="ISA06 unless the record has one."
    )
    receiver_qualifier: str = Field(default="ZZ", max_length=2)
    receiver_id: str = Field(
        default="", max_length=15, description="ISA08 unless the record has one."
    )
    application_sender: str | None = Field(default=None, description="GS02; default sender_id.")
    application_receiver: str | None = Field(default=None, description="GS03; default receiver_id.")
    version: str = Field(default="00401", pattern=r"^[0-9]{5}$", description="ISA12.")
    group_version: str = Field(default="004010", description="GS08.")
    usage: Literal["P", "T", "I"] = Field(default="P", description="ISA15: production or test.")
    ack_requested: bool = Field(default=False, description="ISA14.")
    control_number: int = Field(
        default=1, ge=1, le=999_999_999, description="First generated ISA13 and GS06."
    )

    @model_validator(mode="after")
    def _distinct_delimiters(self) -> EdiCodec:
        chars = [
            self.element_separator,
            self.component_separator,
            self.repetition_separator,
            self.segment_terminator,
        ]
        if len(set(chars)) != 4 or any(c.isalnum() or c == " " for c in chars):
            raise ValueError(f"separators must be four distinct non-alphanumerics, got {chars}")
        return self

    def delimiters(self) -> Delimiters:
        return Delimiters(
            self.element_separator,
            self.component_separator,
            self.repetition_separator if self.version >= "00402" else None,
            self.segment_terminator,
        )

    _known_encoding = field_validator("encoding")(known_encoding)

    # -- reading and writing: engine.codecs.edi.reader and .writer, imported on first use --

    def decode(self, stream: BinaryIO, *, source: str, batch_size: int = 1000) -> Iterator[Chunk]:
        """Records per transaction set (and TA1); a strict interchange with problems is
        rejected whole and reading goes on with the next one."""
        from engine.codecs.edi.reader import decode

        return decode(self, stream, source=source, batch_size=batch_size)

    def encoder(self, stream: BinaryIO) -> Encoder:
        from engine.codecs.edi.writer import X12Encoder

        return X12Encoder(self, stream)
