"""The ``xml`` codec: repeated elements to records (xmltodict), streamed, entity-safe."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import BinaryIO, ClassVar, Literal

from pydantic import Field, field_validator

from engine.codecs.base import CodecConfig, Encoder, known_encoding
from engine.records import Chunk

__all__ = ["XmlCodec"]

_NAME = re.compile(r"^[A-Za-z_][\w.\-]*(:[A-Za-z_][\w.\-]*)?$")


class XmlCodec(CodecConfig):
    """XML documents whose repeated elements are the records.

    ``<orders><order id="1"><sku>A</sku></order>...</orders>`` with ``records = "orders/order"``
    yields ``{"@id": "1", "sku": "A"}`` per order. Entity declarations and external
    references are refused (billion laughs, XXE); DTDs only when ``forbid_dtd``.
    """

    joinable: ClassVar[bool] = True
    extensions: ClassVar[Mapping[str, Mapping[str, object]]] = {"xml": {}}
    type: Literal["xml"] = "xml"
    records: str = Field(
        default="*/*",
        description=(
            "Slash-separated path of element names from the root to the repeated record "
            "element; `*` matches any name. `*/*` is every child of the root element."
        ),
        examples=["orders/order", "feed/*/item"],
    )
    attr_prefix: str = Field(default="@", description="Prefix of attribute keys in records.")
    text_key: str = Field(
        default="#text", description="Key of an element's text when it also has attributes."
    )
    namespaces: Literal["keep", "strip"] | dict[str, str] = Field(
        default="keep",
        description=(
            "`keep`: names as written (`ns:tag`, `@xmlns:ns` attributes kept); "
            "`strip`: local names only; or a map from namespace URI to the prefix to use."
        ),
        examples=["strip", {"http://example.com/ns": "ex"}],
    )
    force_list: tuple[str, ...] = Field(
        default=(),
        description="Element names that always decode to a list, even when they occur once.",
        examples=[["line"]],
    )
    max_depth: int = Field(
        default=256,
        ge=1,
        description=(
            "Deepest element nesting read; a deeper document stops at the element that"
            " passes it (records that deep cannot be written as JSON or XML either)."
        ),
    )
    strip_whitespace: bool = Field(
        default=True, description="Strip leading and trailing whitespace from text."
    )
    forbid_dtd: bool = Field(
        default=False,
        description=(
            "Refuse any `<!DOCTYPE>`. Entity declarations and external references are "
            "always refused."
        ),
    )
    root: str = Field(default="records", description="Root element name when encoding.")
    item: str = Field(default="record", description="Element name of each record when encoding.")
    pretty: bool = Field(default=False, description="Indent the encoded document.")
    encoding: str = Field(default="utf-8", description="Encoding of encoded documents.")

    @field_validator("records")
    @classmethod
    def _check_records(cls, value: str) -> str:
        parts = value.strip("/").split("/")
        if not value.strip("/") or any(p != "*" and not _NAME.match(p) for p in parts):
            raise ValueError(f"records must be a path of element names or `*`, got {value!r}")
        return value

    _known_encoding = field_validator("encoding")(known_encoding)

    @field_validator("root", "item")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a valid XML element name")
        return value

    # -- decoding and encoding: engine.codecs.xml_stream, imported on first use ----------

    def decode(self, stream: BinaryIO, *, source: str, batch_size: int = 1000) -> Iterator[Chunk]:
        from engine.codecs.xml_stream import decode

        return decode(self, stream, source=source, batch_size=batch_size)

    def encoder(self, stream: BinaryIO) -> Encoder:
        from engine.codecs.xml_stream import XmlEncoder

        return XmlEncoder(self, stream)
