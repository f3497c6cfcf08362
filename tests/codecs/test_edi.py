"""The edi codec reading X12: separators, envelopes, loops, located errors, real samples."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import pytest

from engine.codecs.edi import EdiCodec, element_labels, schema_for
from engine.codecs.edi.schemas import LoopSpec
from engine.codecs.edi.tokenizer import Tokenizer
from engine.errors import DataError
from engine.records import Rejected

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "testdata" / "edi"
GOLDEN = Path(__file__).resolve().parent / "golden"

needs_samples = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"shared EDI samples not found at {SAMPLES}"
)


def decode(data: bytes, batch_size: int = 1000, **options: Any) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    codec = EdiCodec(**options)
    for chunk in codec.decode(io.BytesIO(data), source="in.edi", batch_size=batch_size):
        records.extend(chunk.records)
    return records


def refused(data: bytes, **options: Any) -> Rejected:
    """The one interchange a strict reader rejects (it raises nothing)."""
    rejected: list[Rejected] = []
    for chunk in EdiCodec(**options).decode(io.BytesIO(data), source="in.edi"):
        assert chunk.records == []
        rejected.extend(chunk.rejected)
    [rejection] = rejected
    return rejection


def golden(name: str, value: Any) -> None:
    """Compare ``value`` with a golden JSON file; UPDATE_GOLDEN=1 rewrites it."""
    path = GOLDEN / name
    text = json.dumps(value, indent=1, ensure_ascii=False) + "\n"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        path.write_text(text, encoding="utf-8")
    assert path.is_file(), f"missing golden file {path}; run with UPDATE_GOLDEN=1"
    assert json.loads(path.read_text(encoding="utf-8")) == value


def isa(version: str = "00401", rep: str = "U", comp: str = ">", sep: str = "*") -> str:
    fields = ["ISA", "00", " " * 10, "00", " " * 10, "ZZ", "SENDER".ljust(15), "ZZ"]
    fields += ["RECEIVER".ljust(15), "240131", "1200", rep, version, "000000001", "0", "P", comp]
    return sep.join(fields)


def interchange(body: list[str], term: str = "~", sep: str = "*", **isa_kw: str) -> str:
    segs = [
        isa(sep=sep, **isa_kw),
        "GS*PO*SENDER*RECEIVER*20240131*1200*7*X*004010",
        "ST*850*0001",
        *body,
        f"SE*{len(body) + 2}*0001",
        "GE*1*7",
        "IEA*1*000000001",
    ]
    return term.join(s.replace("*", sep) for s in segs) + term


PO = ["BEG*00*SA*PO1**20240131", "PO1*1*2*EA*3.5**BP*SKU1", "PID*F****THING", "CTT*1"]

# -- every shared sample decodes or fails with a located error ----------------------------

DECODES = {
    "210_staedi_wrapped_80char_lines.edi": ["210"],
    "214_staedi_ellipsis_segment_terminator.edi": ["214"],
    "810_850_staedi_dual_groups.edi": ["810", "810", "850"],
    "850_node-x12.edi": ["850"],
    "850_node-x12_newline_terminator.edi": ["850"],
    "856_node-x12.edi": ["856"],
    "997_staedi_simple.edi": ["997"],
    "997_staedi_multiple_interchanges.edi": ["997", "997", "997"],
}
FAILS = {
    "830_pyedi830_loblaws_forecast.edi": (
        34,
        "segment 34 (SE), element SE01: declares 4366 segments but there are 32",
    ),
    "997_staedi_invalid_min.edi": (
        2,
        "segment 2 (GS), element GS04: date 'BAD_DATE' is not CCYYMMDD",
    ),
}


@needs_samples
def test_every_sample_is_covered() -> None:
    assert sorted(p.name for p in SAMPLES.glob("*.edi")) == sorted([*DECODES, *FAILS])


@needs_samples
@pytest.mark.parametrize("name", sorted(DECODES))
def test_sample_decodes(name: str) -> None:
    records = decode((SAMPLES / name).read_bytes())
    assert [r["transaction_set"] for r in records] == DECODES[name]
    assert all("errors" not in r for r in records)
    golden(name.replace(".edi", ".json"), records)


@needs_samples
@pytest.mark.parametrize("name", sorted(FAILS))
def test_sample_is_rejected_located(name: str) -> None:
    line, message = FAILS[name]
    rejection = refused((SAMPLES / name).read_bytes())
    assert rejection.location == f"in.edi:{line}"
    assert rejection.reason.startswith(message)
    # the dead letter holds the interchange as X12 text
    assert isinstance(rejection.record, str) and rejection.record.startswith("ISA")


@needs_samples
def test_lenient_mode_reads_the_truncated_830_with_its_errors() -> None:
    records = decode((SAMPLES / "830_pyedi830_loblaws_forecast.edi").read_bytes(), strict=False)
    assert len(records) == 1
    assert records[0]["errors"] == [
        "segment 34 (SE), element SE01: declares 4366 segments but there are 32"
    ]
    golden("830_pyedi830_loblaws_forecast.lenient.json", records)
    lins = [i for i in records[0]["segments"] if i.get("loop") == "LIN"]
    assert len(lins) == 2
    fst = [i for i in lins[0]["segments"] if i.get("loop") == "FST"]
    assert [s["id"] for s in fst[0]["segments"]] == ["FST", "SDQ", "SDQ", "SDQ"]


@needs_samples
def test_invalid_997_lists_every_envelope_problem_when_lenient() -> None:
    records = decode((SAMPLES / "997_staedi_invalid_min.edi").read_bytes(), strict=False)
    assert records[0]["errors"] == [
        "segment 2 (GS), element GS04: date 'BAD_DATE' is not CCYYMMDD",
        "segment 2 (GS), element GS05: time '295335' is not HHMM[SS[dd]]",
        "segment 7 (GE), element GE02: control number '<TOO_LONG_AND_NOT_NUMERIC>' does not "
        "match GS06 '000005'",
    ]


@needs_samples
def test_wrapped_lines_are_joined() -> None:
    record = decode((SAMPLES / "210_staedi_wrapped_80char_lines.edi").read_bytes())[0]
    assert record["interchange"]["time"] == "0224"  # ISA10 is wrapped as "022\n4"
    n9 = [s for s in record["segments"] if s.get("id") == "N9"]
    assert n9[0] == {"id": "N9", "N901": "PO", "N902": "721295"}


@needs_samples
def test_dual_groups_keep_their_own_envelopes() -> None:
    records = decode((SAMPLES / "810_850_staedi_dual_groups.edi").read_bytes())
    assert [r["group"]["functional_id"] for r in records] == ["IN", "IN", "PO"]
    assert [r["control_number"] for r in records] == ["000000001", "000000002", "000191240"]
    assert {r["interchange"]["control_number"] for r in records} == {"000000020"}
    it1 = [i for i in records[0]["segments"] if i.get("loop") == "IT1"]
    assert len(it1) == 7
    assert it1[0]["segments"][1] == {"loop": "PID", "segments": [
        {"id": "PID", "PID01": "F", "PID05": "CRUNCHY CHIPS LSS"}
    ]}  # fmt: skip


@needs_samples
def test_856_hierarchy_nests_by_parent() -> None:
    record = decode((SAMPLES / "856_node-x12.edi").read_bytes())[0]
    shipment = record["segments"][1]
    assert shipment["segments"][0]["HL03"] == "S"
    order = [i for i in shipment["segments"] if i.get("loop") == "HL"]
    assert [o["segments"][0]["HL01"] for o in order] == ["2"]
    items = [i for i in order[0]["segments"] if i.get("loop") == "HL"]
    assert [i["segments"][0]["HL01"] for i in items] == ["3", "4"]
    assert record["segments"][-1]["id"] == "CTT"


@pytest.mark.parametrize("name", ["846_inventory", "855_ack"])
def test_crafted_sets_decode(name: str) -> None:
    records = decode((GOLDEN / f"{name}.edi").read_bytes())
    golden(f"{name}.json", records)


def test_846_loops() -> None:
    record = decode((GOLDEN / "846_inventory.edi").read_bytes())[0]
    lin = [i for i in record["segments"] if i.get("loop") == "LIN"]
    assert len(lin) == 2
    qty = [i for i in lin[0]["segments"] if i.get("loop") == "QTY"]
    assert [[s["id"] for s in q["segments"]] for q in qty] == [["QTY", "SCH"], ["QTY"]]


# -- separators and layout ---------------------------------------------------------------


def test_separators_come_from_the_isa() -> None:
    text = interchange(PO, term="!", sep="|", comp="\\")
    text = text.replace("BP|SKU1", "BP|A\\B")
    record = decode(text.encode())[0]
    po1 = record["segments"][1]["segments"][0]
    assert po1["PO107"] == ["A", "B"]


def test_repetition_separator_in_00402_and_later() -> None:
    body = ["BEG*00*SA*PO1**20240131", "REF*ZZ*A^B:C", "CTT*0"]
    record = decode(interchange(body, version="00501", rep="^", comp=":").encode())[0]
    assert record["segments"][1]["REF02"] == {"repeats": ["A", ["B", "C"]]}
    old = decode(interchange(body, version="00401", rep="U", comp=":").encode())[0]
    assert old["segments"][1]["REF02"] == ["A^B", "C"]


def test_bom_crlf_indentation_and_no_final_terminator() -> None:
    text = interchange(PO, term="~\r\n    ")
    data = b"\xef\xbb\xbf" + text.rstrip(" \r\n~").encode()
    records = decode(data)
    assert records[0]["segments"][0]["BEG03"] == "PO1"
    assert records[0]["segments"][-1] == {
        "loop": "CTT",
        "segments": [{"id": "CTT", "CTT01": "1"}],
    }


def test_carriage_return_terminator() -> None:
    records = decode(interchange(PO, term="\r\n").encode())
    assert records[0]["segments"][0]["id"] == "BEG"


def test_several_interchanges_with_different_separators() -> None:
    data = (interchange(PO) + "\n" + interchange(PO, term="'", sep="+")).encode()
    records = decode(data, batch_size=1)
    assert len(records) == 2
    assert records[0]["segments"] == records[1]["segments"]


def test_segment_positions_and_lines() -> None:
    segments = list(Tokenizer(io.BytesIO(interchange(PO, term="~\n").encode()), source="x"))
    assert [s.position for s in segments[:3]] == [1, 2, 3]
    assert [s.line for s in segments[:3]] == [1, 2, 3]


# -- envelope errors ----------------------------------------------------------------------


def test_se_count_mismatch_is_refused_whole() -> None:
    text = interchange(PO).replace("SE*6*0001", "SE*9*0001")
    rejection = refused(text.encode())
    assert rejection.reason == "segment 8 (SE), element SE01: declares 9 segments but there are 6"
    assert rejection.record == text


def test_control_number_mismatches() -> None:
    text = interchange(PO).replace("SE*6*0001", "SE*6*0002")
    assert "SE02: control number '0002' does not match ST02" in refused(text.encode()).reason
    text = interchange(PO).replace("IEA*1*000000001", "IEA*1*000000009")
    assert "IEA02: control number '000000009' does not match" in refused(text.encode()).reason


def test_ge_and_iea_counts() -> None:
    reason = refused(interchange(PO).replace("GE*1*7", "GE*2*7").encode()).reason
    assert "GE01: declares 2 transaction sets but there are 1" in reason
    reason = refused(interchange(PO).replace("IEA*1*", "IEA*3*").encode()).reason
    assert "IEA01: declares 3 functional groups but there are 1" in reason


def test_bad_interchange_is_rejected_whole_and_reading_goes_on() -> None:
    good = interchange(PO, term="~\n")
    bad = interchange(PO, term="~\n").replace("IEA*1*", "IEA*3*")
    got: list[dict[str, Any]] = []
    rejected: list[Rejected] = []
    data = (good + bad + good).encode()
    for chunk in EdiCodec().decode(io.BytesIO(data), source="x", batch_size=1):
        got.extend(chunk.records)
        rejected.extend(chunk.rejected)
    assert len(got) == 2  # the first and third interchanges, never a part of the second
    [rejection] = rejected
    assert "IEA01" in rejection.reason
    assert rejection.location == "x:20"  # the second interchange's IEA
    assert rejection.record == bad.replace("\n", "")


def test_missing_trailers() -> None:
    text = interchange(PO).replace("SE*6*0001~", "")
    assert "has no SE trailer" in refused(text.encode()).reason
    truncated = interchange(PO).split("GE*")[0]
    assert "no IEA" in refused(truncated.encode()).reason


def test_structure_errors_are_located() -> None:
    with pytest.raises(DataError, match=r"expected an ISA interchange header") as info:
        decode(b"\n\nGS*PO*A*B~")
    assert info.value.line == 3
    with pytest.raises(DataError, match="truncated ISA"):
        decode(isa()[:60].encode())
    with pytest.raises(DataError, match=r"segment 2 \(ST\) outside a functional group"):
        decode((isa() + "~ST*850*1~SE*2*1~IEA*0*000000001~").encode())
    with pytest.raises(DataError, match=r"not a segment id") as info:
        decode(interchange(["BEG*00", "bad seg*1"], term="~\n").encode())
    assert info.value.line == 5


def test_terminator_must_follow_isa16() -> None:
    with pytest.raises(DataError, match="segment terminator 'G'"):
        decode((isa() + "GS*PO").encode())


def test_undecodable_bytes_name_the_offset() -> None:
    data = interchange(PO).replace("THING", "TH\xffNG").encode("latin-1")
    with pytest.raises(DataError, match="byte offset"):
        decode(data)
    assert (
        decode(data, encoding="latin-1")[0]["segments"][1]["segments"][1]["segments"][0]["PID05"]
        == "TH\xffNG"
    )


def test_flat_segments_and_batches() -> None:
    data = ("".join(interchange(PO) for _ in range(5))).encode()
    chunks = list(EdiCodec(loops=False).decode(io.BytesIO(data), source="x", batch_size=2))
    assert [len(c.records) for c in chunks] == [2, 2, 1]
    assert [s["id"] for s in chunks[0].records[0]["segments"]] == ["BEG", "PO1", "PID", "CTT"]


# -- schemas and pyedi830 labels -----------------------------------------------------------


def test_830_schema_uses_pyedi830_forecast_loops() -> None:
    pytest.importorskip("pyedi830")
    spec = schema_for("830")
    assert spec is not None
    lin = spec.child_by_trigger["LIN"]
    assert "PO4" in lin.members
    assert "SDQ" in lin.child_by_trigger["FST"].members

    def segments(loop: LoopSpec) -> set[str]:
        return {loop.trigger, *loop.members}.union(*(segments(c) for c in loop.children))

    # pyedi830 builds its 830 on its 810: the invoice segments are not the 830's
    assert not {"BIG", "IT1", "TDS", "ISS"} & segments(spec)
    assert {"BFR", "LIN", "FST", "SDQ", "CTT", "N1"} <= segments(spec)
    labels = element_labels()
    assert labels["FST01"] == "Qty"
    assert labels["BFR01"]


def test_unknown_sets_decode_flat() -> None:
    assert schema_for("204") is None
