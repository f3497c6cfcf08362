"""Joining the pieces partitions hand over: as they come in, in partition order, into the
bytes one process writes; nothing is published when a join fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.errors import PermanentError
from engine.partitions.publish import Outputs, publish_outputs
from engine.partitions.spec import PartitionResult

#: JSON arrays: drop "[" from every piece but the first, "]\n" from every piece but the
#: last, and put "," between two
ARRAY = [1, b",".hex(), 2]


def handed(tmp_path: Path, index: int, body: bytes, records: int, framing: Any) -> PartitionResult:
    """A partition's result with one piece of ``out.json``, as a file sink hands it over."""
    tmp = tmp_path / f".out.json.run-{index:04d}.1.tmp"
    tmp.write_bytes(body)
    piece = {"final": str(tmp_path / "out.json"), "tmp": str(tmp), "records": records}
    result = PartitionResult(f"{index:04d}", index, "success")
    result.outputs["out"] = [{**piece, "framing": framing}]
    return result


def test_pieces_join_as_they_come_in_whatever_the_order(tmp_path: Path) -> None:
    pieces = [(b"[1,2]\n", 2), (b"[]\n", 0), (b"[3]\n", 1), (b"[]\n", 0), (b"[4,5]\n", 2)]
    results = [handed(tmp_path, i, body, n, ARRAY) for i, (body, n) in enumerate(pieces)]
    first = tmp_path / ".out.json.run-0000.1.tmp"
    outputs = Outputs()
    for i in (3, 1, 4, 0):  # the order they finish in
        outputs.add(results[i])
    assert first.read_bytes() == b"[1,2]\n"  # 0 and 1 joined; 3 and 4 wait for 2
    outputs.add(results[2])
    assert first.read_bytes() == b"[1,2,3,4,5]\n"  # nothing is left to join at the end
    assert outputs.publish() == 1
    assert (tmp_path / "out.json").read_bytes() == b"[1,2,3,4,5]\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # every piece is gone


def test_the_first_piece_with_records_is_the_one_the_others_join(tmp_path: Path) -> None:
    results = [
        handed(tmp_path, 0, b"[]\n", 0, ARRAY),
        handed(tmp_path, 1, b"[7]\n", 1, ARRAY),
        handed(tmp_path, 2, b"[8]\n", 1, ARRAY),
    ]
    assert publish_outputs(results) == 1
    assert (tmp_path / "out.json").read_bytes() == b"[7,8]\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_no_piece_with_records_publishes_the_first_as_it_is(tmp_path: Path) -> None:
    results = [handed(tmp_path, i, b"[]\n", 0, ARRAY) for i in range(3)]
    assert publish_outputs(results) == 1
    assert (tmp_path / "out.json").read_bytes() == b"[]\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_a_codec_that_cannot_join_publishes_nothing(tmp_path: Path) -> None:
    results = [handed(tmp_path, i, b"ISA*...~", 1, None) for i in range(2)]
    outputs = Outputs()
    for result in results:
        outputs.add(result)
    with pytest.raises(PermanentError, match=r"cannot join .* put \{partition\}"):
        outputs.publish()
    assert list(tmp_path.iterdir()) == []  # neither published nor left behind


def test_a_failed_partition_stops_the_join_and_discard_removes_every_piece(
    tmp_path: Path,
) -> None:
    results = [handed(tmp_path, i, b"[1]\n", 1, ARRAY) for i in range(3)]
    results[1].outcome = "failure"
    outputs = Outputs()
    for result in results:
        outputs.add(result)
    assert (tmp_path / ".out.json.run-0000.1.tmp").read_bytes() == b"[1]\n"  # 2 waits for 1
    outputs.discard()
    assert list(tmp_path.iterdir()) == []
