"""The edi codec writing X12: envelopes, counts, control numbers, 997s and round trips."""

from __future__ import annotations

import copy
import io
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine.codecs.edi import EdiCodec, acknowledgments
from engine.errors import DataError

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "edi"
GOLDEN = Path(__file__).resolve().parent / "golden"
ENVELOPE = {
    "interchange": {"date": "240131", "time": "1200", "sender_id": "ACME", "receiver_id": "SHOP"},
    "group": {"date": "20240131", "time": "1200"},
}

needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"shared EDI samples not found at {SAMPLES}"
)


def encode(records: list[dict[str, Any]], **options: Any) -> bytes:
    out = io.BytesIO()
    encoder = EdiCodec(**options).encoder(out)
    encoder.write(records)
    encoder.finish()
    return out.getvalue()


def decode(data: bytes, **options: Any) -> list[dict[str, Any]]:
    codec = EdiCodec(**options)
    return [r for c in codec.decode(io.BytesIO(data), source="out.edi") for r in c.records]


def record(ts: str, segments: list[Any], **extra: Any) -> dict[str, Any]:
    return {**copy.deepcopy(ENVELOPE), "transaction_set": ts, "segments": segments, **extra}


def golden_edi(name: str, data: bytes) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_bytes(data)
    assert path.is_file(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    assert path.read_bytes() == data


PO_SEGMENTS = [
    {"id": "BEG", "BEG01": "00", "BEG02": "SA", "BEG03": "PO-1", "BEG05": "20240131"},
    {"loop": "N1", "segments": [{"id": "N1", "N101": "ST", "N102": "STORE 12"}]},
    {
        "loop": "PO1",
        "segments": [
            {"id": "PO1", "PO101": "1", "PO102": 2, "PO103": "EA", "PO104": 3.5, "PO107": "SKU"},
            {"loop": "PID", "segments": [{"id": "PID", "PID01": "F", "PID05": "BLUE WIDGET"}]},
        ],
    },
    {"loop": "CTT", "segments": [{"id": "CTT", "CTT01": "1"}]},
]


def test_writes_a_valid_850_interchange() -> None:
    data = encode([record("850", PO_SEGMENTS)])
    golden_edi("850_written.edi", data)
    lines = data.decode().splitlines()
    assert lines[0] == (
        "ISA*00*          *00*          *ZZ*ACME           *ZZ*SHOP           *240131*1200*U*"
        "00401*000000001*0*P*>~"
    )
    assert lines[1] == "GS*PO*ACME*SHOP*20240131*1200*1*X*004010~"
    assert lines[2] == "ST*850*0001~"
    assert lines[3] == "BEG*00*SA*PO-1**20240131~"
    assert lines[-3:] == ["SE*7*0001~", "GE*1*1~", "IEA*1*000000001~"]
    assert len(lines[0]) == 106


def test_groups_and_interchanges_by_envelope() -> None:
    inv = record("810", [{"id": "BIG", "BIG01": "20240131", "BIG02": "INV-1"}])
    other = record("850", PO_SEGMENTS)
    other["interchange"]["receiver_id"] = "ELSEWHERE"
    data = encode([record("850", PO_SEGMENTS), record("850", PO_SEGMENTS), inv, other])
    text = data.decode()
    assert text.count("ISA*") == 2
    assert text.count("GS*") == 3
    assert "ST*850*0002~" in text
    assert "GE*2*1~" in text and "GE*1*2~" in text and "GE*1*3~" in text
    assert "IEA*2*000000001~" in text and "IEA*1*000000002~" in text
    records = decode(data)  # strict: every count and control number checks out
    assert [r["transaction_set"] for r in records] == ["850", "850", "810", "850"]


@pytest.mark.parametrize("name", ["846_inventory", "855_ack"])
def test_decode_encode_reproduces_the_interchange(name: str) -> None:
    original = (GOLDEN / f"{name}.edi").read_bytes()
    records = decode(original)
    sample = records[0]["interchange"]
    codec_options = {"version": sample["version"], "component_separator": ":"}
    if name == "855_ack":
        codec_options["component_separator"] = ">"
    assert encode(records, **codec_options) == original


@needs_samples
@pytest.mark.parametrize(
    "name", ["810_850_staedi_dual_groups.edi", "856_node-x12.edi", "850_node-x12.edi"]
)
def test_samples_round_trip_through_the_writer(name: str) -> None:
    records = decode((SAMPLES / name).read_bytes())
    version = records[0]["interchange"]["version"]
    again = decode(encode(records, version=version))
    assert again == records


@needs_samples
def test_written_856_matches_golden() -> None:
    records = decode((SAMPLES / "856_node-x12.edi").read_bytes())
    golden_edi("856_written.edi", encode(records, version="00406", repetition_separator="-"))


def test_846_written_golden() -> None:
    records = decode((GOLDEN / "846_inventory.edi").read_bytes())
    for r in records:
        r["interchange"].pop("control_number")
        r["group"].pop("control_number")
        r.pop("control_number")
    data = encode(records, version="00501", control_number=900)
    golden_edi("846_written.edi", data)
    assert b"ISA*00*" in data and b"*000000900*" in data and b"GE*1*900~" in data


def test_810_written_golden() -> None:
    segments = [
        {"id": "BIG", "BIG01": "20240131", "BIG02": "INV-9", "BIG04": "PO-1"},
        {"loop": "IT1", "segments": [
            {"id": "IT1", "IT102": "2", "IT103": "EA", "IT104": "3.50", "IT106": "BP",
             "IT107": "SKU"},
        ]},
        {"id": "TDS", "TDS01": "700"},
        {"loop": "CTT", "segments": [{"id": "CTT", "CTT01": "1"}]},
    ]  # fmt: skip
    data = encode([record("810", segments)], newline=False)
    golden_edi("810_written.edi", data)
    assert data.count(b"\n") == 0
    assert decode(data)[0]["segments"] == segments


def test_composites_and_repeats() -> None:
    segs = [
        {"id": "REF", "REF01": "ZZ", "REF02": {"repeats": ["A", ["B", "C"]]}, "REF04": ["X", "Y"]}
    ]
    data = encode([record("850", segs)], version="00501", component_separator=":")
    assert b"REF*ZZ*A^B:C**X:Y~" in data
    assert decode(data)[0]["segments"] == segs
    with pytest.raises(DataError, match="repeated elements need an interchange version"):
        encode([record("850", segs)])


@pytest.mark.parametrize(
    ("segments", "message"),
    [
        ([{"id": "REF", "REF01": "A*B"}], r"segments\[0\] \(REF\), element REF01: value 'A\*B' "
         r"contains the delimiter '\*'"),
        ([{"id": "REF", "REF01": True}], r"REF01: True is not a text or number value"),
        ([{"id": "REF", "XX01": "A"}], r"key 'XX01' is not an element of segment REF"),
        ([{"id": "lower case"}], r"segment needs an `id`"),
        ([{"loop": "N1"}], r"segments\[0\]: a loop needs a `segments` list"),
        (["REF*A"], r"expected a segment or loop object"),
    ],
)  # fmt: skip
def test_bad_records_name_record_segment_and_element(segments: list[Any], message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        encode([record("850", PO_SEGMENTS), record("850", segments)])
    assert info.value.record == 2


def test_bad_envelopes() -> None:
    with pytest.raises(DataError, match="3-digit X12 id"):
        encode([record("85", [])])
    with pytest.raises(DataError, match="no functional group id known for 123"):
        encode([record("123", [])])
    long_id = record("850", [])
    long_id["interchange"]["sender_id"] = "X" * 16
    with pytest.raises(DataError, match="sender_id 'XXXXXXXXXXXXXXXX' is longer than 15"):
        encode([long_id])


def test_codec_options_are_checked() -> None:
    with pytest.raises(ValidationError, match="distinct"):
        EdiCodec(element_separator="~")
    with pytest.raises(ValidationError):
        EdiCodec(version="4010")


def test_empty_output() -> None:
    assert encode([]) == b""


# -- 997 acknowledgments -----------------------------------------------------------------


@needs_samples
def test_997_for_received_interchange() -> None:
    data = (SAMPLES / "810_850_staedi_dual_groups.edi").read_bytes()
    acks = list(acknowledgments(io.BytesIO(data), source="in.edi"))
    assert len(acks) == 2
    first = acks[0]
    assert first["transaction_set"] == "997"
    assert first["interchange"]["receiver_id"] == "SENDERISA"
    assert first["segments"][0] == {"id": "AK1", "AK101": "IN", "AK102": "1"}
    assert first["segments"][1] == {"loop": "AK2", "segments": [
        {"id": "AK2", "AK201": "810", "AK202": "000000001"}, {"id": "AK5", "AK501": "A"}
    ]}  # fmt: skip
    assert first["segments"][-1] == {
        "id": "AK9", "AK901": "A", "AK902": "2", "AK903": "2", "AK904": "2"
    }  # fmt: skip
    for ack in acks:
        ack["interchange"].update(date="240201", time="0800")
        ack["group"].update(date="20240201", time="0800")
    written = encode(acks, version="00401", control_number=5)
    golden_edi("997_for_810_850.edi", written)
    assert [r["transaction_set"] for r in decode(written)] == ["997", "997"]


@needs_samples
def test_997_rejects_bad_counts() -> None:
    data = (SAMPLES / "830_pyedi830_loblaws_forecast.edi").read_bytes()
    [ack] = decode(data, emit="acknowledgments")
    assert ack["segments"][1]["segments"][1] == {"id": "AK5", "AK501": "R", "AK502": "4"}
    assert ack["segments"][-1] == {
        "id": "AK9", "AK901": "R", "AK902": "1", "AK903": "1", "AK904": "0"
    }  # fmt: skip
    assert ack["segments"][0]["AK103"] == "005010VICS"


@needs_samples
def test_997_group_errors() -> None:
    data = (SAMPLES / "997_staedi_invalid_min.edi").read_bytes()
    [ack] = list(acknowledgments(io.BytesIO(data)))
    assert ack["segments"][-1] == {
        "id": "AK9", "AK901": "R", "AK902": "1", "AK903": "1", "AK904": "1",
        "AK905": "1", "AK906": "4",
    }  # fmt: skip


# -- round trip ---------------------------------------------------------------------------

_text = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .-/#&'()", min_size=1, max_size=12)
_value = st.one_of(
    _text,
    st.lists(_text, min_size=2, max_size=3),
    st.lists(st.one_of(_text, st.lists(_text, min_size=2, max_size=2)), min_size=2, max_size=3).map(
        lambda reps: {"repeats": reps}
    ),
)


@st.composite
def _segment(draw: st.DrawFn, tag: str) -> dict[str, Any]:
    positions = draw(st.lists(st.integers(1, 12), min_size=1, max_size=6, unique=True))
    seg: dict[str, Any] = {"id": tag}
    for p in sorted(positions):
        seg[f"{tag}{p:02d}"] = draw(_value)
    return seg


@st.composite
def _846(draw: st.DrawFn) -> dict[str, Any]:
    segments: list[Any] = [draw(_segment("BIA")), *draw(st.lists(_segment("REF"), max_size=2))]
    for _ in range(draw(st.integers(0, 3))):
        lin: list[Any] = [draw(_segment("LIN")), *draw(st.lists(_segment("PID"), max_size=2))]
        for _ in range(draw(st.integers(0, 2))):
            lin.append({"loop": "QTY", "segments": [draw(_segment("QTY"))]})
        segments.append({"loop": "LIN", "segments": lin})
    segments.append({"loop": "CTT", "segments": [draw(_segment("CTT"))]})
    return record("846", segments)


@settings(max_examples=150, deadline=None)
@given(st.lists(_846(), min_size=1, max_size=3))
def test_round_trip(records: list[dict[str, Any]]) -> None:
    data = encode(records, version="00501", component_separator=":")
    again = decode(data)
    for r in again:
        for key in ("interchange", "group"):
            r[key] = {k: v for k, v in r[key].items() if k in ENVELOPE[key]}
        assert r.pop("control_number")
    assert again == records
