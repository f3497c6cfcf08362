"""Every codec on arbitrary and mutated bytes, and on arbitrary record values.

Decoding may deliver records, reject inputs (each with a location) or raise; encoding may
write or raise. Whatever goes wrong must be a :class:`DataError` that says where: the
source with a line or byte offset when decoding, the record number when encoding. Any
other exception (a RecursionError, a UnicodeError, a KeyError...) fails the test.
"""

from __future__ import annotations

import io
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.codecs import CodecConfig, CsvCodec, JsonCodec, JsonlCodec
from engine.codecs.edi import EdiCodec
from engine.codecs.xml import XmlCodec
from engine.errors import DataError, EngineError

# Derandomized: the same examples on every run, so CI is stable; bounded so the whole
# file runs in seconds.
FUZZ = settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
SOURCE = "fuzz.in"

ISA = (
    "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240131*1200*U*00401"
    "*000000001*0*P*>~"
)
SEEDS: dict[str, bytes] = {
    "csv": b'id,name,qty\n1,"Ann, ""A""",3\n2,Bob,4\r\n3,"multi\nline",5\n',
    "json": b'[{"a": 1, "b": [1.5, -2e3, {"c": "x\\u00e9"}]}, {"d": null, "e": true}]',
    "jsonl": b'{"a": 1}\n{"b": [1, {"c": "x"}]}\n\n{"d": "\xc3\xa9"}\n',
    "xml": (
        b'<?xml version="1.0" encoding="utf-8"?>\n<orders xmlns:x="urn:x">'
        b'<order id="1"><sku>A</sku><x:n>t<![CDATA[<c>]]></x:n></order>'
        b"<order><sku>B &amp; C</sku></order></orders>"
    ),
    "edi": (
        ISA + "\nGS*PO*SENDER*RECEIVER*20240131*1200*7*X*004010~\nST*850*0001~\n"
        "BEG*00*SA*PO1**20240131~\nPO1*1*2*EA*3.5**BP*SKU1~\nPID*F****A>B~\nCTT*1~\n"
        "SE*6*0001~\nGE*1*7~\nIEA*1*000000001~\n"
    ).encode(),
}
CODECS: dict[str, list[CodecConfig]] = {
    "csv": [CsvCodec(), CsvCodec(types={"qty": "int"}, null_values=("",), max_field_size=64)],
    "json": [JsonCodec(), JsonCodec(non_finite="null")],
    "jsonl": [JsonlCodec(), JsonlCodec(non_finite="null")],
    "xml": [XmlCodec(), XmlCodec(records="orders/order", namespaces="strip", max_depth=8)],
    "edi": [EdiCodec(), EdiCodec(strict=False), EdiCodec(emit="acknowledgments")],
}


def _located(exc: BaseException) -> None:
    assert isinstance(exc, DataError), f"{type(exc).__name__} escaped: {exc}"
    assert exc.source == SOURCE, str(exc)
    assert exc.line is not None or exc.offset is not None or exc.record is not None, str(exc)


def decode_all(codec: CodecConfig, data: bytes) -> int:
    """Decode everything; returns how many records and rejections came out."""
    count = 0
    try:
        for chunk in codec.decode(io.BytesIO(data), source=SOURCE, batch_size=3):
            for rejected in chunk.rejected:
                assert rejected.location and rejected.location.startswith(SOURCE), rejected
            count += len(chunk.records) + len(chunk.rejected)
    except EngineError as exc:
        _located(exc)
    return count


@st.composite
def mutated(draw: st.DrawFn, seed: bytes) -> bytes:
    """``seed`` with a few bytes replaced, inserted, deleted or a slice repeated."""
    data = bytearray(seed)
    interesting = st.sampled_from(
        [b'"', b",", b"\n", b"\r", b"~", b"*", b">", b"<", b"/", b"[", b"{", b"}", b"\x00",
         b"\xff", b"\xc3", b"NaN", b"1e400", b"&", b"]]>", b"<!DOCTYPE a>", b"\\", b"9" * 30]
    )  # fmt: skip
    for _ in range(draw(st.integers(1, 6))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "repeat"]))
        piece = draw(st.one_of(interesting, st.binary(min_size=1, max_size=4)))
        if action == "insert":
            data[at:at] = piece
        elif action == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif action == "replace":
            data[at : at + len(piece)] = piece
        else:
            end = min(len(data), at + draw(st.integers(1, 40)))
            data[at:at] = data[at:end] * draw(st.integers(2, 5))
    return bytes(data)


def _codec_params() -> list[Any]:
    return [
        pytest.param(kind, codec, id=f"{kind}-{i}")
        for kind, codecs in CODECS.items()
        for i, codec in enumerate(codecs)
    ]


@pytest.mark.parametrize(("kind", "codec"), _codec_params())
@FUZZ
@given(data=st.data())
def test_decoding_mutated_input_raises_only_located_data_errors(
    kind: str, codec: CodecConfig, data: st.DataObject
) -> None:
    decode_all(codec, data.draw(mutated(SEEDS[kind])))


@pytest.mark.parametrize(("kind", "codec"), _codec_params())
@FUZZ
@given(raw=st.binary(max_size=300))
def test_decoding_arbitrary_bytes_raises_only_located_data_errors(
    kind: str, codec: CodecConfig, raw: bytes
) -> None:
    decode_all(codec, raw)


def test_the_seeds_decode() -> None:
    for kind, codecs in CODECS.items():
        assert decode_all(codecs[0], SEEDS[kind]) > 0, kind


# -- encoding ------------------------------------------------------------------------------

_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=8)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=4),
    st.sampled_from([math.nan, math.inf, Decimal("1.10"), "a\nb", "<&>", "\x00", "~*>"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(_names, inner, max_size=3),
        st.tuples(inner, inner),
    ),
    max_leaves=12,
)
_records = st.lists(st.dictionaries(_names, _values, min_size=1, max_size=4), max_size=4)

ENCODERS: list[CodecConfig] = [
    CsvCodec(),
    CsvCodec(columns=("a", "b"), quoting="none", encoding="latin-1"),
    JsonCodec(),
    JsonCodec(pretty=True),
    JsonlCodec(),
    XmlCodec(),
    XmlCodec(pretty=True, encoding="ascii"),
    EdiCodec(),
]


def encode_all(codec: CodecConfig, records: list[dict[str, Any]]) -> bytes:
    out = io.BytesIO()
    try:
        encoder = codec.encoder(out)
        for record in records:
            encoder.write([record])
        encoder.finish()
    except EngineError as exc:
        assert isinstance(exc, DataError), f"{type(exc).__name__} escaped: {exc}"
        assert exc.record is not None or exc.line is not None, str(exc)
        assert "<data>" not in str(exc)
    return out.getvalue()


@pytest.mark.parametrize("codec", ENCODERS, ids=lambda c: f"{c.type}")
@FUZZ
@given(records=_records)
def test_encoding_arbitrary_values_raises_only_located_data_errors(
    codec: CodecConfig, records: list[dict[str, Any]]
) -> None:
    encode_all(codec, records)


_edi_segments = st.lists(
    st.fixed_dictionaries(
        {"id": st.sampled_from(["BEG", "PO1", "N1", "REF", "X", "", 3])},
        optional={"BEG01": _values, "PO101": _values, "N101": st.text(max_size=5), "ZZ9": _values},
    ),
    max_size=4,
)
_edi_records = st.lists(
    st.fixed_dictionaries(
        {"transaction_set": st.sampled_from(["850", "810", "8a0", "", None])},
        optional={
            "segments": st.one_of(_edi_segments, _values),
            "interchange": st.one_of(st.dictionaries(_names, _values, max_size=3), _values),
            "group": st.one_of(st.dictionaries(_names, _values, max_size=3), _values),
            "control_number": _values,
        },
    ),
    max_size=3,
)


@FUZZ
@given(records=_edi_records)
def test_encoding_x12_shaped_records_raises_only_located_data_errors(
    records: list[dict[str, Any]],
) -> None:
    encode_all(EdiCodec(), records)
