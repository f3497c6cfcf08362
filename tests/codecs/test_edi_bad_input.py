"""X12 input the strict reader must not drop or crash on: empty segments, TA1, UTF-16."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from engine.cli.main import cli
from engine.codecs.base import CodecError
from engine.codecs.edi import EdiCodec
from engine.records import Chunk, Rejected

ISA = (
    "ISA*00*          *00*          *ZZ*SENDER         *ZZ*RECEIVER       *240131*1200*U*00401"
    "*{number}*0*P*>"
)


def interchange(body: list[str], number: int = 1, acks: tuple[str, ...] = ()) -> str:
    segments = [
        ISA.format(number=f"{number:09d}"),
        *acks,
        "GS*PO*SENDER*RECEIVER*20240131*1200*7*X*004010",
        "ST*850*0001",
        *body,
        f"SE*{len(body) + 2}*0001",
        "GE*1*7",
        f"IEA*1*{number:09d}",
    ]
    return "~\n".join(segments) + "~\n"


PO = ["BEG*00*SA*PO1**20240131", "PO1*1*2*EA*3.5**BP*SKU1", "CTT*1"]


def read(data: bytes, **options: Any) -> Chunk:
    result = Chunk([])
    for chunk in EdiCodec(**options).decode(io.BytesIO(data), source="in.edi"):
        result.records.extend(chunk.records)
        result.rejected.extend(chunk.rejected)
    return result


def test_an_empty_segment_rejects_the_interchange_when_strict() -> None:
    text = interchange(PO).replace("PO1*1", "~PO1*1")
    chunk = read(text.encode())
    assert chunk.records == []
    [rejection] = chunk.rejected
    assert rejection.location == "in.edi:5"
    assert rejection.reason == "segment 5: empty segment: two segment terminators in a row"


def test_an_empty_segment_is_listed_under_errors_when_lenient() -> None:
    text = interchange(PO).replace("PO1*1", "~PO1*1")
    [record] = read(text.encode(), strict=False).records
    assert record["errors"] == ["segment 5: empty segment: two segment terminators in a row"]
    assert [s.get("loop") or s["id"] for s in record["segments"]] == ["BEG", "PO1", "CTT"]


def test_an_empty_segment_between_groups_is_an_interchange_problem() -> None:
    text = interchange(PO).replace("GE*1*7~\n", "GE*1*7~\n~\n")
    assert "empty segment" in read(text.encode()).rejected[0].reason


def test_ta1_interchange_acknowledgments_decode() -> None:
    ta1 = "TA1*000000077*240130*1159*A*000"
    chunk = read(interchange(PO, acks=(ta1,)).encode())
    assert chunk.rejected == []
    ack, order = chunk.records
    assert (ack["transaction_set"], ack["control_number"], ack["group"]) == (
        "TA1",
        "000000077",
        None,
    )
    assert ack["segments"] == [
        {"id": "TA1", "TA101": "000000077", "TA102": "240130", "TA103": "1159", "TA104": "A",
         "TA105": "000"}
    ]  # fmt: skip
    assert ack["interchange"] == order["interchange"]
    assert order["transaction_set"] == "850"


def test_an_interchange_of_only_a_ta1_decodes() -> None:
    text = "~\n".join(
        [ISA.format(number="000000002"), "TA1*000000077*240130*1159*R*022", "IEA*0*000000002"]
    )
    [ack] = read((text + "~").encode()).records
    assert ack["segments"][0]["TA104"] == "R"


@pytest.mark.parametrize("encoding", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_byte_order_mark_is_located(encoding: str) -> None:
    data = interchange(PO).encode(encoding)
    with pytest.raises(CodecError) as info:
        read(data, encoding="utf-16")
    assert (info.value.source, info.value.offset, info.value.code) == ("in.edi", 0, "x12.encoding")
    assert "utf-16-le or utf-16-be" in str(info.value)
    with pytest.raises(CodecError, match="UTF-16 text"):
        read(data)  # read as UTF-8: NUL bytes between the letters
    assert len(read(data, encoding=encoding).records) == 1
    assert len(read(interchange(PO).encode("utf-16"), encoding="utf-16").records) == 1


def test_an_unknown_encoding_is_a_config_error() -> None:
    with pytest.raises(ValidationError, match="unknown text encoding 'klingon'"):
        EdiCodec(encoding="klingon")


def test_a_run_dead_letters_the_bad_interchange_and_delivers_the_others(tmp_path: Path) -> None:
    bad = interchange(PO, number=2).replace("SE*5*0001", "SE*9*0001")
    (tmp_path / "in.edi").write_text(interchange(PO, 1) + bad + interchange(PO, 3))
    (tmp_path / "p.toml").write_text(
        '[pipeline]\nname = "x12"\n[dead_letter]\npath = "dead.jsonl"\n'
        '[sources.orders]\ntype = "file"\npath = "in.edi"\non_error = "dead_letter"\n'
        '[sinks.out]\ntype = "file"\npath = "out.jsonl"\ninputs = ["orders"]\n'
    )
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "p.toml")])
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["interchange"]["control_number"] for r in out] == ["000000001", "000000003"]
    [dead] = [json.loads(line) for line in (tmp_path / "dead.jsonl").read_text().splitlines()]
    assert dead["record"] == bad.replace("\n", "")
    assert "declares 9 segments but there are 5" in dead["reason"]
    assert result.exit_code == 0, result.output
    failing = (tmp_path / "p.toml").read_text().replace('"dead_letter"', '"fail"')
    (tmp_path / "p.toml").write_text(failing)
    run = [sys.executable, "-m", "engine", "run", str(tmp_path / "p.toml")]
    failed = subprocess.run(run, capture_output=True, text=True, check=False)
    assert failed.returncode != 0
    assert "in.edi:16: segment 16 (SE), element SE01: declares 9 segments" in failed.stderr


def test_rejections_are_plain_rejected_items() -> None:
    text = interchange(PO).replace("IEA*1*", "IEA*4*")
    [rejection] = read(text.encode()).rejected
    assert isinstance(rejection, Rejected)
    assert rejection.record == text.replace("\n", "")
