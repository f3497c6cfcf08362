"""`engine validate` reports what `run` and `dry-run` would fail on, located in the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.support.cli import invoke, write

SQL = """\
[pipeline]
name = "sqlurl"
[sources.db]
type = "sql"
url = "{url}"
table = "t"
[sinks.out]
type = "stdout"
inputs = ["db"]
"""


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("postgresql://app:hunter2@db:5x32/erp", "port"),
        ("postgresql://app:hunter2@db:/erp", "port"),
        ("postgresql://app:hunter2@db:70000/erp", "port"),
        ("not a url", "not a valid SQLAlchemy URL"),
    ],
)
@pytest.mark.parametrize("command", ["validate", "dry-run", "run"])
def test_a_malformed_sql_url_is_a_located_validate_error(
    tmp_path: Path, url: str, reason: str, command: str
) -> None:
    path = write(tmp_path, SQL.format(url=url))
    code, out, err = invoke(command, str(path))
    assert code == 78, out + err
    assert f"{path}:5:1: error[E032]: sources.db.url:" in err
    assert reason in err
    assert "hunter2" not in out + err
    assert "internal error" not in out + err


TWO_SINKS = """\
[pipeline]
name = "twosinks"
[sources.src]
type = "file"
path = "in.jsonl"
[sinks.a]
type = "file"
inputs = ["src"]
path = "out/all.jsonl"
[sinks.b]
type = "file"
inputs = ["src"]
path = "out/../out/all.jsonl"
"""


def test_two_sinks_writing_one_path_is_an_error_naming_both(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"n": 1}\n')
    path = write(tmp_path, TWO_SINKS)
    code, _, err = invoke("validate", str(path))
    assert code == 78
    assert f"{path}:13:1: error[E043]:" in err
    assert f"sinks.a ({path}:9:1)" in err and f"sinks.b ({path}:13:1)" in err
    code, _, err = invoke("run", str(path))
    assert code == 78 and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("read", "found"),
    [
        ("out/all.jsonl", "error[E044]"),
        ("./out/all.jsonl", "error[E044]"),
        ("out/*.jsonl", "warning[W014]"),
    ],
)
def test_a_sink_that_writes_a_source_input_is_refused(
    tmp_path: Path, read: str, found: str
) -> None:
    text = TWO_SINKS.replace('path = "in.jsonl"', f'path = "{read}"').replace(
        '[sinks.b]\ntype = "file"\ninputs = ["src"]\npath = "out/../out/all.jsonl"\n', ""
    )
    path = write(tmp_path, text)
    code, _, err = invoke("validate", "--strict", str(path))
    assert code == 78
    assert f"{path}:9:1: {found}: sink 'a' writes out/all.jsonl, which source 'src'" in err


MAPPED = """\
[pipeline]
name = "tmpl"
[sources.src]
type = "file"
path = "in.jsonl"
[transforms.shape]
type = "map"
inputs = ["src"]
fields = {{ category = "cat", id = "id" }}
[transforms.keep]
type = "filter"
inputs = ["shape"]
condition = "id > `0`"
[transforms.whole]
type = "map"
inputs = ["src"]
expression = "{{category: cat, id: id}}"
[sinks.out]
type = "file"
inputs = ["{upstream}"]
path = "{template}"
"""


@pytest.mark.parametrize(
    ("upstream", "template", "warned"),
    [
        ("keep", "out/{categry}.jsonl", True),
        ("shape", "out/{date}/{categry}-{run_id}.jsonl", True),
        ("keep", "out/{category}.jsonl", False),
        ("src", "out/{categry}.jsonl", False),  # a raw source's fields are not known
        ("whole", "out/{categry}.jsonl", True),
        ("whole", "out/{category}.jsonl", False),
    ],
)
def test_a_path_field_nothing_upstream_produces_is_warned(
    tmp_path: Path, upstream: str, template: str, warned: bool
) -> None:
    (tmp_path / "in.jsonl").write_text('{"cat": "a", "id": 1}\n')
    path = write(tmp_path, MAPPED.format(upstream=upstream, template=template))
    code, _, err = invoke("validate", str(path))
    assert code == 0, err
    assert ("W011" in err) is warned
    if warned:
        assert f"{path}:21:1: warning[W011]: sink 'out': path field {{categry}}" in err
        assert "did you mean {category}?" in err
        code, _, err = invoke("validate", "--strict", str(path))
        assert code == 78


FILES = """\
[pipeline]
name = "files"
[sources.src]
type = "file"
path = "{source}"
[sinks.out]
type = "file"
inputs = ["src"]
path = "{sink}"
"""


@pytest.mark.parametrize(
    ("source", "sink", "code", "line"),
    [
        ("missing.jsonl", "out.jsonl", "W012", 5),
        ("data/*.csv", "out.jsonl", "W012", 5),
        ("notes.txt", "out.jsonl", "W010", 5),
        ("in.jsonl", "blocker/sub/out.jsonl", "W013", 9),
        ("in.jsonl", "out.data", "W010", 9),
    ],
)
def test_what_run_would_fail_on_is_a_warning_and_an_error_under_strict(
    tmp_path: Path, source: str, sink: str, code: str, line: int
) -> None:
    (tmp_path / "in.jsonl").write_text('{"n": 1}\n')
    (tmp_path / "notes.txt").write_text("hello\n")
    (tmp_path / "blocker").write_text("a file where a folder should be\n")
    path = write(tmp_path, FILES.format(source=source, sink=sink))
    exit_code, _, err = invoke("validate", str(path))
    assert exit_code == 0, err
    assert f"{path}:{line}:1: warning[{code}]:" in err
    exit_code, out, _ = invoke("validate", "--strict", "--format", "json", str(path))
    assert exit_code == 78
    assert [d["code"] for d in json.loads(out)["diagnostics"]] == [code]
    exit_code, _, err = invoke("run", str(path))
    assert exit_code == 1, err


@pytest.mark.skipif(os.access("/proc/sys", os.W_OK), reason="/proc/sys is writable here")
def test_an_output_folder_that_cannot_be_written_is_warned(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"n": 1}\n')
    path = write(tmp_path, FILES.format(source="in.jsonl", sink="/proc/sys/engine-out/o.jsonl"))
    code, _, err = invoke("validate", "--strict", str(path))
    assert code == 78 and "W013" in err and "cannot write to folder /proc/sys" in err


def test_a_clean_pipeline_has_no_file_warnings(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"n": 1}\n')
    path = write(tmp_path, FILES.format(source="in.jsonl", sink="new/{run_id}/out.jsonl"))
    code, _, err = invoke("validate", "--strict", str(path))
    assert code == 0 and "warning" not in err, err
