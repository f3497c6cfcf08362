"""Edge cases found in review: each once lost records, wrote on a dry run or crashed the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from engine.config.compile import compile_path
from engine.errors import ConfigError
from engine.pipeline import compile_file, dry_run, run
from engine.runtime.observer import NullObserver
from tests.support.cli import invoke, write

HEAD = '[pipeline]\nname = "e"\n[sources.src]\ntype = "file"\npath = "in.jsonl"\n'


def test_reading_a_route_by_its_bare_id_is_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        HEAD + '[transforms.r]\ntype = "route"\ninputs = ["src"]\nroutes = { eu = "a" }\n'
        '[sinks.out]\ntype = "stdout"\ninputs = ["r"]\n',
    )
    with pytest.raises(ConfigError) as info:
        compile_path(path, env={})
    [err] = info.value.errors
    assert "read r.eu, r._unmatched" in err.message and err.line == 12


def test_file_sink_outputs_that_resolve_to_one_path_share_one_file(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text(
        '{"a": ".", "b": "x", "id": 1}\n{"a": "x", "b": ".", "id": 2}\n'
    )
    path = write(
        tmp_path,
        HEAD + '[sinks.out]\ntype = "file"\ninputs = ["src"]\npath = "o/{a}/{b}/f.jsonl"\n',
    )
    summary = anyio.run(lambda: run(compile_file(path, env={}), observer=NullObserver()))
    assert summary.ok, summary.error
    lines = (tmp_path / "o" / "x" / "f.jsonl").read_text().splitlines()
    assert sorted(json.loads(line)["id"] for line in lines) == [1, 2]


def test_a_failed_close_publishes_nothing_and_leaves_no_temp_files(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"k": "a"}\n{"k": "b"}\n{"k": "c"}\n')
    (tmp_path / "o" / "b.jsonl" / "keep").mkdir(parents=True)
    path = write(
        tmp_path, HEAD + '[sinks.out]\ntype = "file"\ninputs = ["src"]\npath = "o/{k}.jsonl"\n'
    )
    summary = anyio.run(lambda: run(compile_file(path, env={}), observer=NullObserver()))
    assert not summary.ok
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["b.jsonl"]


@pytest.mark.parametrize(
    "template",
    ["o/{a.b}.jsonl", "o/{x[0]}.jsonl", "o/{date:%Y}.jsonl", "o/{}.jsonl", "o/{k!r}.jsonl"],
)
def test_path_templates_take_plain_fields_only(tmp_path: Path, template: str) -> None:
    path = write(
        tmp_path, HEAD + f'[sinks.out]\ntype = "file"\ninputs = ["src"]\npath = "{template}"\n'
    )
    with pytest.raises(ConfigError) as info:
        compile_path(path, env={})
    assert info.value.errors[0].line == 9


def test_dry_run_limit_counts_rejected_rows_too(tmp_path: Path) -> None:
    (tmp_path / "in.csv").write_text("a,b\n1,2\nbad\n3,4\nbad\n5,6\n")
    path = write(
        tmp_path,
        '[pipeline]\nname = "e"\n[sources.src]\ntype = "file"\npath = "in.csv"\n'
        'on_error = "dead_letter"\n[sinks.out]\ntype = "stdout"\ninputs = ["src"]\n',
    )
    result = anyio.run(lambda: dry_run(compile_file(path, env={}), limit=2))
    assert len(result.sinks["out"]) + len(result.rejected) == 2


def test_messages_with_brackets_print_literally(tmp_path: Path) -> None:
    code, _, err = invoke("validate", str(write(tmp_path, "")))
    assert code == 78 and "[pipeline]" in err
    markup = write(tmp_path, HEAD.replace('path = "in.jsonl"\n', 'path = "in.jsonl"\n"[/x]" = 1\n'))
    code, _, err = invoke("validate", str(markup))
    assert code == 78 and "'[/x]'" in err


def test_yaml_ids_that_are_not_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path, "pipeline: {name: e}\nsources: {1: {type: file, path: a.jsonl}}\n", "p.yaml"
    )
    code, _, err = invoke("validate", str(path))
    assert code == 78 and "E022" in err


def test_positions_inside_arrays_of_tables(tmp_path: Path) -> None:
    cases = "".join(
        f'[[tests]]\nname = "t{i}"\n[tests.inputs.src]\nrecords = []\n[tests.expect.{target}]\n'
        "count = 0\n"
        for i, target in enumerate(["src", "nosuch"])
    )
    path = write(tmp_path, HEAD + '[sinks.out]\ntype = "stdout"\ninputs = ["src"]\n' + cases)
    with pytest.raises(ConfigError) as info:
        compile_path(path, env={})
    [err] = info.value.errors
    assert err.code == "E061" and err.line == 19
