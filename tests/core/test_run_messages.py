"""Run-time messages name the record and speak of JSON types and files, not Python classes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.mapping.compiler import batch, fallback
from engine.mapping.expression import parse
from tests.support.cli import invoke

PIPELINE = """\
[pipeline]
name = "messages"
[sources.src]
type = "file"
path = "in.csv"
[transforms.keep]
type = "filter"
inputs = ["src"]
condition = "{condition}"
on_error = "dead_letter"
[sinks.out]
type = "file"
inputs = ["keep"]
path = "{sink}"
[dead_letter]
path = "dead.jsonl"
max_rejected = "100%"
"""


@pytest.mark.parametrize(
    ("condition", "reason"),
    [
        ("b > `1`", "cannot compare a string with a number using >"),
        ("to_number(b) > `1`", None),
    ],
)
def test_a_rejected_record_is_named_in_the_engine_words(
    tmp_path: Path, condition: str, reason: str | None
) -> None:
    (tmp_path / "in.csv").write_text("a,b\n1,x\n2,3\n")
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(condition=condition, sink="out.jsonl"))
    code, _, err = invoke("run", "--no-audit", str(path))
    assert code == 0, err
    dead = tmp_path / "dead.jsonl"
    if reason is None:
        assert not dead.exists()
        return
    entries = [json.loads(line) for line in dead.read_text().splitlines()]
    assert [e["location"] for e in entries] == ["in.csv record 1", "in.csv record 2"]
    assert all(reason in e["reason"] and "not supported" not in e["reason"] for e in entries)


@pytest.mark.parametrize(
    ("source", "said"),
    [
        ("b > `1`", "cannot compare a string with a number using >"),
        ("`1` <= b", "cannot compare a number with a string using <="),
    ],
)
def test_generated_and_interpreted_filters_say_the_same(source: str, said: str) -> None:
    records = [{"b": "x"}]
    ast = parse(source)
    generated = batch.generate_filter(source, ast)(records)[1]
    interpreted = fallback.interpreted_filter(source, ast)(records)[1]
    assert [r.reason for r in generated] == [r.reason for r in interpreted]
    assert said in generated[0].reason


def test_an_os_error_of_a_sink_names_the_path_not_the_exception(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("a,b\n1,2\n")
    (tmp_path / "blocker").write_text("a file where a folder should be\n")
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(condition="a", sink="blocker/sub/out.jsonl"))
    code, _, err = invoke("run", "--no-audit", str(path))
    assert code == 1
    assert "Errno" not in err and "Error:" not in err
    assert "blocker" in err
