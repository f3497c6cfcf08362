"""`engine test`: a pipeline's own cases pass, fail with a reason, and are validated."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from engine.cli.main import cli

BASE = """\
[pipeline]
name = "t"
[sources.src]
type = "file"
path = "missing-on-purpose.jsonl"
[transforms.shape]
type = "map"
inputs = ["src"]
on_error = "skip"
fields = {{ id = "sku", qty = {{ expr = "to_number(q)", required = true }} }}
[sinks.out]
type = "file"
inputs = ["shape"]
path = "out.jsonl"

[[tests]]
name = "case"
[tests.inputs.src]
records = [{{ sku = "A", q = "2" }}, {{ sku = "B", q = "x" }}]
[tests.expect.{target}]
{expect}
"""


def run_test(tmp_path: Path, target: str, expect: str) -> tuple[int, str, str]:
    path = tmp_path / "t.toml"
    path.write_text(BASE.format(target=target, expect=expect))
    result = CliRunner().invoke(cli, ["test", "--format", "json", str(path)])
    return result.exit_code, result.stdout, result.stderr


def test_passing_case(tmp_path: Path) -> None:
    code, out, _ = run_test(tmp_path, "out", 'records = [{ id = "A", qty = 2 }]')
    assert code == 0, out
    assert json.loads(out) == [{"name": "case", "ok": True, "failures": [], "error": None}]
    assert not (tmp_path / "out.jsonl").exists()


def test_rejections_are_counted(tmp_path: Path) -> None:
    code, out, _ = run_test(tmp_path, "shape", "rejected = 1\ncount = 1")
    assert code == 0, out
    code, out, _ = run_test(tmp_path, "shape", "rejected = 0")
    assert code == 1
    assert json.loads(out)[0]["failures"] == ["shape: expected 0 rejected, got 1"]


def test_failing_case_says_why(tmp_path: Path) -> None:
    code, out, _ = run_test(tmp_path, "out", 'conditions = ["qty > `5`"]')
    assert code == 1
    [case] = json.loads(out)
    assert any("fail `qty > `5``" in f for f in case["failures"])


def test_unknown_component_in_expect_is_a_config_error(tmp_path: Path) -> None:
    code, _, err = run_test(tmp_path, "outt", "count = 1")
    assert code == 78
    assert "E061" in err and "did you mean 'out'" in err


def test_inputs_from_a_sample_file(tmp_path: Path) -> None:
    (tmp_path / "sample.jsonl").write_text('{"sku": "S", "q": "7"}\n')
    path = tmp_path / "t.toml"
    path.write_text(
        BASE.format(target="out", expect='records = [{ id = "S", qty = 7 }]').replace(
            'records = [{ sku = "A", q = "2" }, { sku = "B", q = "x" }]', 'file = "sample.jsonl"'
        )
    )
    result = CliRunner().invoke(cli, ["test", "--format", "json", str(path)])
    assert result.exit_code == 0, result.stdout
