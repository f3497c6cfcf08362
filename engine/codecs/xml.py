"""The ``xml`` codec: repeated elements to records (xmltodict), streamed, entity-safe."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any, BinaryIO, ClassVar, Literal
from xml.parsers import expat

import xmltodict
from defusedxml.common import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)
from pydantic import Field, field_validator

from engine.codecs.base import CodecConfig, CodecError, Encoder, Framing, known_encoding
from engine.errors import DataError
from engine.records import Batch, Chunk, Record

__all__ = ["XmlCodec"]

_READ_SIZE = 1 << 16
_ENCODING = re.compile(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']{0,40})""")
_NAME = re.compile(r"^[A-Za-z_][\w.\-]*(:[A-Za-z_][\w.\-]*)?$")


class _StreamingHandler(xmltodict._DictSAXHandler):  # type: ignore[misc]
    """xmltodict's SAX handler, keeping text beside attributes on streamed items.

    Upstream drops the text of an item at ``item_depth`` when the item also has
    attributes or children, and does not strip its whitespace; both are fixed here.
    """

    data: list[str]
    item: Any
    path: list[tuple[str, Any]]

    def __init__(self, *, want: list[str], max_depth: int, **options: Any) -> None:
        super().__init__(**options)
        self._want = want
        self._max_depth = max_depth
        #: the first element where the document leaves the records path, with its line
        self.diverged: tuple[str, int] | None = None
        self.line: Callable[[], int] = lambda: 0

    def startElement(self, full_name: str, attrs: Any) -> None:
        super().startElement(full_name, attrs)
        depth = len(self.path)
        if depth > self._max_depth:
            raise _TooDeep(depth)
        if self.diverged is None and depth <= len(self._want):
            names = [name for name, _ in self.path]
            if not all(w in ("*", n) for w, n in zip(self._want, names, strict=False)):
                self.diverged = ("/".join(names), self.line())

    def endElement(self, full_name: str) -> None:
        if len(self.path) == self.item_depth:
            text = self.cdata_separator.join(self.data) if self.data else None
            if text is not None and self.strip_whitespace:
                text = text.strip() or None
            if text is not None and self.item is not None:
                self.item = self.push_data(self.item, self.cdata_key, text)
                self.data = []
            elif text is not None:
                self.data = [text]
            else:
                self.data = []
        super().endElement(full_name)


class _TooDeep(Exception):
    """Raised from the parser's element handler past ``max_depth``."""

    def __init__(self, depth: int) -> None:
        self.depth = depth


class _StripAll(dict[str, str]):
    """A namespace map that turns every namespace URI into "no prefix"."""

    def __missing__(self, key: str) -> str:
        return ""


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

    # -- decoding -------------------------------------------------------------------------

    def _path(self) -> list[str]:
        return self.records.strip("/").split("/")

    def decode(self, stream: BinaryIO, *, source: str, batch_size: int = 1000) -> Iterator[Chunk]:
        want = self._path()
        found: Batch = []

        def on_item(path: list[tuple[str, Any]], item: Any) -> bool:
            names = [name for name, _ in path]
            if all(w in ("*", n) for w, n in zip(want, names, strict=True)):
                found.append(self._as_record(item))
            return True

        parser, handler = self._parser(on_item)
        error: DataError | None = None
        done = False
        matched = 0
        head = b""
        while not done:
            data = stream.read(_READ_SIZE)
            done = not data
            head = head or data
            try:
                parser.Parse(data, done)
            except _TooDeep as exc:
                error = CodecError(
                    "xml.depth",
                    f"elements nested {exc.depth} deep, deeper than max_depth ({self.max_depth})",
                    source=source,
                    line=parser.CurrentLineNumber,
                    column=parser.CurrentColumnNumber + 1,
                )
            except expat.ExpatError as exc:
                error = DataError(
                    f"malformed XML: {expat.ErrorString(exc.code)}",
                    source=source,
                    line=exc.lineno,
                    column=exc.offset + 1,
                )
            except DefusedXmlException as exc:
                error = DataError(
                    _refusal(exc),
                    source=source,
                    line=parser.CurrentLineNumber,
                    column=parser.CurrentColumnNumber + 1,
                )
            except (LookupError, ValueError) as exc:
                # Parse() looks up the declared encoding: unknown, or one expat cannot read.
                error = CodecError(
                    "xml.encoding",
                    f"cannot read the encoding the XML declaration names ({_declared(head)}):"
                    f" {exc} (expat reads UTF-8, UTF-16, ISO-8859-1, US-ASCII and one-byte"
                    " encodings)",
                    source=source,
                    line=parser.CurrentLineNumber or 1,
                )
            # Records completed before a fault are whole: deliver them, then raise.
            matched += len(found)
            while len(found) >= batch_size or (found and (done or error)):
                yield Chunk(records=found[:batch_size])
                del found[:batch_size]
            if error is not None:
                raise error
        if not matched and handler.diverged is not None:
            names, line = handler.diverged
            raise CodecError(
                "xml.no-records",
                f"records = {self.records!r} matches no element of the document (it has"
                f" <{names}> at line {line}); check the path, or `namespaces`",
                source=source,
                line=line,
            )

    def _as_record(self, item: Any) -> Record:
        if isinstance(item, dict):
            return item
        if item is None:
            return {}
        return {self.text_key: item}

    def _parser(
        self, on_item: Callable[[list[tuple[str, Any]], Any], bool]
    ) -> tuple[Any, _StreamingHandler]:
        namespaces: dict[str, str] | None
        if self.namespaces == "keep":
            namespaces, separator = None, None
        elif self.namespaces == "strip":
            namespaces, separator = _StripAll(), ":"
        else:
            namespaces, separator = dict(self.namespaces), ":"
        handler = _StreamingHandler(
            want=self._path(),
            max_depth=self.max_depth,
            item_depth=len(self._path()),
            item_callback=on_item,
            attr_prefix=self.attr_prefix,
            cdata_key=self.text_key,
            strip_whitespace=self.strip_whitespace,
            namespace_separator=":",
            namespaces=namespaces,
            force_list=set(self.force_list) or None,
        )
        parser = expat.ParserCreate(None, separator)
        parser.ordered_attributes = True
        parser.buffer_text = True
        parser.StartElementHandler = handler.startElement
        parser.EndElementHandler = handler.endElement
        parser.CharacterDataHandler = handler.characters
        if self.namespaces != "strip":
            parser.StartNamespaceDeclHandler = handler.startNamespaceDecl
        parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
        parser.EntityDeclHandler = _forbid_entity
        parser.UnparsedEntityDeclHandler = _forbid_unparsed_entity
        parser.ExternalEntityRefHandler = _forbid_external
        if self.forbid_dtd:
            parser.StartDoctypeDeclHandler = _forbid_dtd
        handler.line = lambda: int(parser.CurrentLineNumber)
        return parser, handler

    # -- encoding -------------------------------------------------------------------------

    def encoder(self, stream: BinaryIO) -> Encoder:
        return _XmlEncoder(self, stream)


def _declared(head: bytes) -> str:
    """The encoding an XML declaration at the start of ``head`` names, for messages."""
    match = _ENCODING.match(head)
    return repr(match.group(1).decode("ascii", "replace")) if match else "unknown"


def _forbid_entity(
    name: str,
    is_parameter: bool,
    value: str | None,
    base: str | None,
    sysid: str | None,
    pubid: str | None,
    notation: str | None,
) -> None:
    raise EntitiesForbidden(name, value, base, sysid, pubid, notation)


def _forbid_unparsed_entity(
    name: str, base: str | None, sysid: str, pubid: str | None, notation: str
) -> None:
    raise EntitiesForbidden(name, None, base, sysid, pubid, notation)


def _forbid_external(context: str, base: str | None, sysid: str | None, pubid: str | None) -> int:
    raise ExternalReferenceForbidden(context, base, sysid, pubid)


def _forbid_dtd(name: str, sysid: str | None, pubid: str | None, has_internal: bool) -> None:
    raise DTDForbidden(name, sysid, pubid)


def _refusal(exc: DefusedXmlException) -> str:
    if isinstance(exc, EntitiesForbidden):
        where = f" (external: {exc.sysid})" if exc.sysid else ""
        return (
            f"refused XML entity declaration {exc.name!r}{where}: entities are forbidden "
            "(entity expansion and external entity attacks)"
        )
    if isinstance(exc, ExternalReferenceForbidden):
        return f"refused external reference {exc.sysid!r}: external entities are forbidden"
    if isinstance(exc, DTDForbidden):
        return f"refused <!DOCTYPE {exc.name}>: DTDs are forbidden (forbid_dtd = true)"
    return f"refused unsafe XML: {exc}"  # pragma: no cover - defusedxml has no other kinds


class _XmlEncoder(Encoder):
    """Writes ``<root>``, one ``<item>`` per record, then ``</root>`` on finish."""

    def __init__(self, config: XmlCodec, stream: BinaryIO) -> None:
        self._config = config
        self._stream = stream
        self._started = False
        self._count = 0

    def _head(self) -> bytes:
        c = self._config
        return f'<?xml version="1.0" encoding="{c.encoding}"?>\n<{c.root}>'.encode(c.encoding)

    def _tail(self) -> bytes:
        c = self._config
        return (f"\n</{c.root}>\n" if c.pretty else f"</{c.root}>").encode(c.encoding)

    def _start(self) -> None:
        self._stream.write(self._head())
        self._started = True

    def write(self, records: Batch) -> None:
        if not self._started:
            self._start()
        c = self._config
        parts: list[str] = []
        for record in records:
            self._count += 1
            try:
                text = xmltodict.unparse(
                    {c.item: record},
                    full_document=False,
                    attr_prefix=c.attr_prefix,
                    cdata_key=c.text_key,
                    pretty=c.pretty,
                    indent="  ",
                    depth=1,  # indented inside the root; text content is left as it is
                    encoding=c.encoding,
                )
            except RecursionError:
                raise CodecError(
                    "xml.depth", "record nested too deeply to write as XML", record=self._count
                ) from None
            except (ValueError, TypeError, AttributeError) as exc:
                raise CodecError(
                    "xml.unencodable",
                    f"record cannot be written as XML: {exc}",
                    record=self._count,
                ) from None
            parts.append(("\n" + text.rstrip("\n")) if c.pretty else text)
        self._stream.write("".join(parts).encode(c.encoding, "xmlcharrefreplace"))

    def finish(self) -> None:
        if not self._started:
            self._start()
        self._stream.write(self._tail())

    def framing(self) -> Framing:
        return Framing(len(self._head()), b"", len(self._tail()))
