"""The `engine` command as users call it: exit codes, located messages, JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import invoke

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
[pipeline]
name = "c"
[sources.src]
type = "file"
path = "in.jsonl"
[transforms.keep]
type = "filter"
inputs = ["src"]
condition = "n > `1`"
[sinks.out]
type = "file"
inputs = ["keep"]
path = "out.jsonl"
"""


@pytest.fixture
def pipeline(tmp_path: Path) -> Path:
    (tmp_path / "in.jsonl").write_text('{"n": 1}\n{"n": 2}\n{"n": 3}\n')
    path = tmp_path / "c.toml"
    path.write_text(GOOD)
    return path


def test_validate_good_file(pipeline: Path) -> None:
    code, _, err = invoke("validate", str(pipeline))
    assert code == 0 and "valid" in err


def test_validate_bad_file_exits_78_with_located_json(pipeline: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        GOOD.replace('condition = "n > `1`"', 'condition = "n >"').replace(
            'path = "out.jsonl"', 'path = "out.jsonl"\ncolor = 1'
        )
    )
    code, out, _ = invoke("validate", "--format", "json", str(pipeline), str(bad))
    assert code == 78
    payload = json.loads(out)
    assert payload["valid"] is False
    assert [f["valid"] for f in payload["files"]] == [True, False]
    codes = {d["code"]: d for d in payload["diagnostics"]}
    assert set(codes) == {"E030", "E050"}
    assert codes["E030"]["line"] == 14 and codes["E030"]["file"] == str(bad)
    assert codes["E050"]["line"] == 9 and codes["E050"]["column"] == 1
    assert set(codes["E030"]) == {"code", "severity", "message", "file", "line", "column", "hint"}


def test_validate_text_names_file_line_col(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('type = "filter"', 'type = "filtr"'))
    code, _, err = invoke("validate", str(bad))
    assert code == 78
    assert f"{bad}:7:1" in err and "did you mean 'filter'" in err


def test_run_then_dry_run_leaves_output_untouched(pipeline: Path) -> None:
    code, out, err = invoke("run", "--no-audit", "--format", "json", str(pipeline))
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ok"] and summary["components"]["out"]["records_in"] == 2
    output = pipeline.parent / "out.jsonl"
    before = output.stat().st_mtime_ns, output.read_bytes()
    code, out, _ = invoke("dry-run", "--format", "json", str(pipeline))
    assert code == 0
    assert json.loads(out)["sinks"]["out"] == [{"n": 2}, {"n": 3}]
    assert (output.stat().st_mtime_ns, output.read_bytes()) == before


def test_run_failure_exits_1(pipeline: Path) -> None:
    (pipeline.parent / "in.jsonl").unlink()
    code, _, err = invoke("run", "--no-audit", str(pipeline))
    assert code == 1 and "src: " in err


def test_run_invalid_exits_78(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(GOOD.replace('path = "in.jsonl"', 'path = "${env:NOPE_NOT_SET}"'))
    code, _, err = invoke("run", str(bad))
    assert code == 78 and "NOPE_NOT_SET" in err


def test_graph_and_components(pipeline: Path) -> None:
    code, out, _ = invoke("graph", "--format", "dot", str(pipeline))
    assert code == 0 and '"src" -> "keep";' in out
    code, out, _ = invoke("components", "--format", "json")
    kinds = {(c["role"], c["type"]) for c in json.loads(out)}
    assert {("source", "file"), ("transform", "map"), ("sink", "stdout")} <= kinds


@pytest.mark.parametrize("command", ["schema", "docs"])
def test_generated_files_check_passes_on_what_is_committed(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "engine.cli", command, "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ},
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_schema_check_detects_drift(tmp_path: Path) -> None:
    stale = tmp_path / "schema.json"
    stale.write_text("{}\n")
    code, _, err = invoke("schema", "--check", "--output", str(stale))
    assert code == 1 and "out of date" in err
    code, _, _ = invoke("schema", "--output", str(stale))
    assert code == 0 and json.loads(stale.read_text())["title"] == "Pipeline file"


def test_usage_error_exits_2() -> None:
    code, _, _ = invoke("run")
    assert code == 2


def test_validate_connect_reports_an_unreachable_endpoint(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again on exit: nothing listens there
    path = tmp_path / "h.toml"
    path.write_text(
        '[pipeline]\nname = "h"\n[sources.api]\ntype = "http"\n'
        f'url = "http://127.0.0.1:{port}/items"\n'
        '[sinks.out]\ntype = "stdout"\ninputs = ["api"]\n'
    )
    code, _, _ = invoke("validate", str(path))
    assert code == 0
    code, out, _ = invoke("validate", "--connect", "--format", "json", str(path))
    assert code == 78
    [diag] = json.loads(out)["diagnostics"]
    assert diag["code"] == "E090" and diag["line"] == 3


def test_run_with_audit_then_verify_the_trail(pipeline: Path, tmp_path: Path) -> None:
    code, _, err = invoke("run", str(pipeline))
    assert code == 0, err
    assert "audit: chain pipeline:c now holds" in err
    workspace = os.environ["ENGINE_HOME"]
    code, out, _ = invoke("audit", "verify", "--workspace", workspace, "--format", "json")
    assert code == 0, out
    assert json.loads(out)["ok"] is True
