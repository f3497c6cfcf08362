"""The 830 decodes to the values pyedi830's own parser reads, element by element."""

from __future__ import annotations

import datetime
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.codecs.edi import EdiCodec

ENVELOPE = {"ISA", "GS", "ST", "SE", "GE", "IEA"}


def _typed(raw: str, data_type: str) -> Any:
    """A raw element as pyedi830 types it (its EDIParser.parse_segment rules)."""
    if data_type == "DT" and len(raw) in (6, 8):
        return datetime.datetime.strptime(raw, "%Y%m%d" if len(raw) == 8 else "%y%m%d")
    if data_type == "TM" and len(raw) in (4, 6):
        return datetime.datetime.strptime(raw, "%H%M" if len(raw) == 4 else "%H%M%S")
    if data_type == "N0" and raw:
        return int(raw)
    if data_type.startswith("N") and raw:
        return float(raw) / 10 ** int(data_type[-1])
    if data_type == "R" and raw:
        return float(raw)
    return raw.strip()


def _theirs(node: dict[str, Any], loops: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    """(loop path, segment id, {element: (value, data type)}) from pyedi830's output."""
    for key, item in node.items():
        value = item["value"]
        if isinstance(value, list):
            loop = item["symbol"].removeprefix("L_")
            for entry in value:
                yield from _theirs(entry, (*loops, loop))
        elif item["symbol"] not in ENVELOPE:
            yield loops, key, {k: (v["value"], v["data_type"]) for k, v in value.items()}


def _ours(items: list[dict[str, Any]], loops: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    for item in items:
        if "loop" in item:
            inner = item["segments"]
            yield (*loops, item["loop"]), inner[0]["id"], inner[0]
            yield from _ours(inner[1:], (*loops, item["loop"]))
        else:
            yield loops, item["id"], item


def _single_segment_loops(formats: Path) -> set[str]:
    """pyedi830 loops of one segment (a repeat, which the codec keeps in the parent loop)."""
    found: set[str] = set()

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            if item.get("type") == "loop":
                if len(item["segments"]) == 1:
                    found.add(item["segments"][0]["id"])
                walk(item["segments"])

    walk(json.loads((formats / "830_Forecast.json").read_text(encoding="utf-8")))
    return found


def test_830_values_and_loops_match_pyedi830(shared_testdata: Path) -> None:
    parser_module = pytest.importorskip("pyedi830.EDIParser")
    path = shared_testdata / "edi" / "830_pyedi830_loblaws_forecast.edi"
    parser = parser_module.EDIParser(
        edi_format="830_Forecast",
        segment_delimiter="~",
        use_child_detail=True,
        child_headers=["data_type"],
    )
    theirs = list(_theirs(parser.parse(str(path)), ()))
    # the sample's SE01 is wrong (4366): read it leniently, as pyedi830 does
    [chunk] = EdiCodec(strict=False).decode(io.BytesIO(path.read_bytes()), source=str(path))
    [record] = chunk.records
    ours = list(_ours(record["segments"], ()))

    assert [tag for _, tag, _ in ours] == [tag for _, tag, _ in theirs]
    assert len(ours) == 30  # ST and SE are not in `segments`
    repeats = _single_segment_loops(Path(parser_module.__file__).parent / "formats")
    for (our_loops, tag, segment), (their_loops, _, elements) in zip(ours, theirs, strict=True):
        assert our_loops == tuple(loop for loop in their_loops if loop not in repeats), tag
        for element, (value, data_type) in elements.items():
            assert _typed(segment.get(element, ""), data_type) == value, element
        assert set(segment) - {"id"} <= set(elements)
    lin = [loops for loops, tag, _ in ours if tag in ("LIN", "FST", "SDQ")]
    assert ("LIN", "FST") in lin
