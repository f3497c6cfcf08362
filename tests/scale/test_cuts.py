"""Byte-range cuts of one input: every cut is a record start, whatever the quoting."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from pathlib import Path
from typing import Any

from engine.codecs.base import CodecConfig, line_starts
from engine.codecs.csv import CsvCodec
from engine.codecs.jsonl import JsonlCodec
from engine.components.sources.file import _FileRanges, range_count, range_targets


def _ranges(path: Path, codec: CodecConfig, step: int | None, workers: int) -> list[dict[str, Any]]:
    """Every partition of one file, as the file source plans them."""
    planned = _FileRanges.plan(path, codec, step, workers)
    return [planned[i] for i in range(planned.count)]


def records(codec: CsvCodec, data: bytes) -> list[dict[str, object]]:
    return [r for chunk in codec.decode(io.BytesIO(data), source="t") for r in chunk.records]


def test_csv_cuts_never_fall_inside_a_quoted_field(tmp_path: Path) -> None:
    rng = random.Random(3)
    text = io.StringIO(newline="")
    out = csv.writer(text)
    out.writerow(["id", "note"])
    for i in range(1500):
        note = rng.choice(['"', '""\n"', "\n", "\r\n,", "a,b", 'x"y\nz', "c\rd"] * 2 + [""]) * 3
        out.writerow([i, note])
    data = text.getvalue().encode()
    path = tmp_path / "in.csv"
    path.write_bytes(data)
    codec = CsvCodec()
    whole = records(codec, data)
    breaks = re.compile(rb"\r\n|\r|\n")
    for step, workers in [(50, 1), (1000, 1), (4096, 1), (1000, 3)]:
        parts = _ranges(path, codec, step, workers)
        assert len(parts) > 1
        found = []
        for part in parts:
            piece = data[part.get("start", 0) : part.get("end", len(data))]
            if part.get("start"):
                piece = ",".join(part["names"]).encode() + b"\r\n" + piece
            found.extend(records(codec, piece))
            # the lines before it, for locations: CRLF, CR and LF breaks alike
            assert part["line"] == len(breaks.findall(data[: part["start"]]))
        assert found == whole


def test_a_big_file_is_cut_into_even_ranges_a_multiple_of_the_workers(tmp_path: Path) -> None:
    lines = [json.dumps({"i": i}) for i in range(20_000)]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    size = path.stat().st_size  # about 250 KB
    line = len(lines[-1]) + 1
    # many short ranges too: a cut past its place (a line's length at most) moves no other
    for step, workers, count in [
        (64 << 10, 2, 4),
        (64 << 10, 3, 6),
        (100 << 10, 2, 4),
        (100, 2, 2490),
    ]:
        parts = _ranges(path, JsonlCodec(), step, workers)
        lengths = [p["end"] - p["start"] for p in parts]
        assert len(parts) == count
        assert sum(lengths) == size
        assert max(lengths) <= step + line
        assert max(lengths) - min(lengths) <= 2 * line
        assert [p["line"] for p in parts] == [
            path.read_bytes()[: p["start"]].count(b"\n") for p in parts
        ]


def test_jsonl_cuts_at_line_starts(tmp_path: Path) -> None:
    lines = [json.dumps({"i": i, "pad": "x" * (i % 17)}) for i in range(500)]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    parts = _ranges(path, JsonlCodec(), 512, 1)
    data = path.read_bytes()
    assert parts[0]["start"] == 0
    assert all(data[p["start"] - 1 : p["start"]] == b"\n" for p in parts[1:])
    assert [p["line"] for p in parts] == [data[: p["start"]].count(b"\n") for p in parts]
    assert sum(p["end"] - p["start"] for p in parts) == len(data)


def reference_starts(data: bytes, step: int, quote: bytes | None) -> list[tuple[int, int]]:
    """Cuts as the definition says them, the slow way: after a LF where the quotes since
    the last cut are even, at least ``step`` bytes on; CRLF, CR and LF each one break."""
    cuts = [0]
    while cuts[-1] + step < len(data):
        brk = data.find(b"\n", cuts[-1] + step)
        while brk >= 0 and quote and data.count(quote, cuts[-1], brk) % 2:
            brk = data.find(b"\n", brk + 1)
        if brk < 0 or brk + 1 >= len(data):
            break
        cuts.append(brk + 1)
    breaks = re.compile(rb"\r\n|\r|\n")
    return [(cut, len(breaks.findall(data[:cut]))) for cut in cuts]


def test_cuts_and_line_counts_do_not_depend_on_the_reads(tmp_path: Path) -> None:
    """Quotes, CR and LF fall on both sides of every read's end: the result is the same."""
    rng = random.Random(11)
    noise = b"".join(rng.choice([b'"', b"\n", b"\r", b"\r\n", b"a", b"bc,"]) for _ in range(3000))
    path = tmp_path / "in.csv"
    # the last two: a break at the very end is no cut
    for data, steps in [(noise, (1, 7, 100, 1000)), (b"a\nb\n", (1, 2, 3)), (b'"\n"\n', (1,))]:
        path.write_bytes(data)
        for step in steps:
            expected = reference_starts(data, step, b'"')
            for block in (1, 2, 3, 16, 1 << 22):
                found = line_starts(io.BytesIO(data), step, b'"', crlf=True, block=block)
                assert found == expected
                with path.open("rb", buffering=0) as f:  # its size known: it stops early
                    assert line_starts(f, step, b'"', crlf=True, block=block) == expected


def test_unset_the_size_gives_two_ranges_per_worker_of_8_to_64_mib() -> None:
    mib = 1 << 20
    # (file size, workers): ranges
    expected = {
        (15 * mib, 2): 1,  # under 16 MiB: not cut
        (17 * mib, 2): 2,  # two of 8.5 MiB, not four of 4
        (30 * mib, 3): 3,
        (86 * mib, 2): 4,  # two per worker
        (86 * mib, 3): 6,
        (300 * mib, 2): 6,  # 64 MiB at most: a multiple of the workers above 300/64
        (10_000 * mib, 2): 158,
    }
    assert {(size, w): range_count(size, None, w) for size, w in expected} == expected
    assert range_count(86 * mib, 16 * mib, 2) == 6  # set: at most that long, a multiple of 2
    assert range_count(16 * mib, 16 * mib, 2) == 1


def test_unset_the_size_makes_each_workers_last_range_half_as_long(tmp_path: Path) -> None:
    lines = [json.dumps({"i": i}) for i in range(20_000)]
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(lines) + "\n")
    size = path.stat().st_size
    line = len(lines[-1]) + 1
    targets = range_targets(size, 4, 2)
    assert targets == [0, size // 3, 2 * size // 3, 5 * size // 6, size]
    assert range_targets(600, 3) == range_targets(600, 3, 3) == [0, 200, 400, 600]  # even
    assert range_targets(600, 4, 3) == [0, 150, 300, 450, 600]  # not whole rounds: even
    # as a file of 16 MiB and more is planned for two workers
    planned = _FileRanges(path, 4, JsonlCodec().record_cuts(), size, None, targets)
    parts = [planned[i] for i in range(4)]
    lengths = [p["end"] - p["start"] for p in parts]
    assert sum(lengths) == size
    for length, share in zip(lengths, [2, 2, 1, 1], strict=True):
        assert abs(length - share * size // 6) <= line
