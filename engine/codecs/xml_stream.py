"""Reading and writing XML for the ``xml`` codec (:mod:`engine.codecs.xml`): xmltodict on
expat, streamed, entity-safe. Imported when a pipeline reads or writes XML."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO, Literal, Protocol
from xml.parsers import expat

import xmltodict
from defusedxml.common import (
    DefusedXmlException,
    DTDForbidden,
    EntitiesForbidden,
    ExternalReferenceForbidden,
)

from engine.codecs.base import CodecError, Encoder, Framing
from engine.errors import DataError
from engine.records import Batch, Chunk, Record

__all__ = ["XmlEncoder", "XmlOptions", "decode"]

_READ_SIZE = 1 << 16
_ENCODING = re.compile(rb"""\s*<\?xml[^>]*?encoding\s*=\s*["']([^"']{0,40})""")


class XmlOptions(Protocol):
    """The options of the ``xml`` codec this module reads (met by ``XmlCodec``)."""

    @property
    def records(self) -> str: ...
    @property
    def attr_prefix(self) -> str: ...
    @property
    def text_key(self) -> str: ...
    @property
    def namespaces(self) -> Literal["keep", "strip"] | dict[str, str]: ...
    @property
    def force_list(self) -> tuple[str, ...]: ...
    @property
    def max_depth(self) -> int: ...
    @property
    def strip_whitespace(self) -> bool: ...
    @property
    def forbid_dtd(self) -> bool: ...
    @property
    def root(self) -> str: ...
    @property
    def item(self) -> str: ...
    @property
    def pretty(self) -> bool: ...
    @property
    def encoding(self) -> str: ...


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


def _path(options: XmlOptions) -> list[str]:
    return options.records.strip("/").split("/")


def decode(
    options: XmlOptions, stream: BinaryIO, *, source: str, batch_size: int = 1000
) -> Iterator[Chunk]:
    """The records of the XML document in ``stream``, in chunks of ``batch_size``."""
    want = _path(options)
    found: Batch = []

    def on_item(path: list[tuple[str, Any]], item: Any) -> bool:
        names = [name for name, _ in path]
        if all(w in ("*", n) for w, n in zip(want, names, strict=True)):
            found.append(_as_record(options, item))
        return True

    parser, handler = _parser(options, on_item)
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
                f"elements nested {exc.depth} deep, deeper than max_depth ({options.max_depth})",
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
            f"records = {options.records!r} matches no element of the document (it has"
            f" <{names}> at line {line}); check the path, or `namespaces`",
            source=source,
            line=line,
        )


def _as_record(options: XmlOptions, item: Any) -> Record:
    if isinstance(item, dict):
        return item
    if item is None:
        return {}
    return {options.text_key: item}


def _parser(
    options: XmlOptions, on_item: Callable[[list[tuple[str, Any]], Any], bool]
) -> tuple[Any, _StreamingHandler]:
    namespaces: dict[str, str] | None
    if options.namespaces == "keep":
        namespaces, separator = None, None
    elif options.namespaces == "strip":
        namespaces, separator = _StripAll(), ":"
    else:
        namespaces, separator = dict(options.namespaces), ":"
    handler = _StreamingHandler(
        want=_path(options),
        max_depth=options.max_depth,
        item_depth=len(_path(options)),
        item_callback=on_item,
        attr_prefix=options.attr_prefix,
        cdata_key=options.text_key,
        strip_whitespace=options.strip_whitespace,
        namespace_separator=":",
        namespaces=namespaces,
        force_list=set(options.force_list) or None,
    )
    parser = expat.ParserCreate(None, separator)
    parser.ordered_attributes = True
    parser.buffer_text = True
    parser.StartElementHandler = handler.startElement
    parser.EndElementHandler = handler.endElement
    parser.CharacterDataHandler = handler.characters
    if options.namespaces != "strip":
        parser.StartNamespaceDeclHandler = handler.startNamespaceDecl
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.EntityDeclHandler = _forbid_entity
    parser.UnparsedEntityDeclHandler = _forbid_unparsed_entity
    parser.ExternalEntityRefHandler = _forbid_external
    if options.forbid_dtd:
        parser.StartDoctypeDeclHandler = _forbid_dtd
    handler.line = lambda: int(parser.CurrentLineNumber)
    return parser, handler


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


class XmlEncoder(Encoder):
    """Writes ``<root>``, one ``<item>`` per record, then ``</root>`` on finish."""

    def __init__(self, config: XmlOptions, stream: BinaryIO) -> None:
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
