"""One compile: every stage's problems at once, expressions compiled once per run and handed to
the components, and two sinks on one resource refused by `engine validate`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import pytest
from click.testing import CliRunner

from engine.cli.main import cli
from engine.config.compile import compile_path, compile_text
from engine.errors import ConfigError
from engine.mapping.expression import counting_compiles
from engine.pipeline import compile_file, run
from engine.runtime.observer import NullObserver

EVERY_TRANSFORM = """\
[pipeline]
name = "once"

[sources.src]
type = "file"
path = "in.jsonl"

[transforms.shape]
type = "map"
inputs = ["src"]
fields = { sku = "upper(sku)", qty = { expr = "to_number(q)", required = true }, n = "q" }

[transforms.keep]
type = "filter"
inputs = ["shape"]
condition = "qty > `1`"

[transforms.split]
type = "route"
inputs = ["keep"]
routes = { big = "qty > `5`", odd = "qty > `1`" }

[transforms.whole]
type = "map"
inputs = ["split.big"]
expression = "{sku: sku, twice: multiply(qty, `2`)}"

[sinks.big]
type = "file"
inputs = ["whole"]
path = "big.jsonl"

[sinks.rest]
type = "file"
inputs = ["split.odd", "split._unmatched"]
path = "rest.jsonl"
"""

EXPRESSIONS = {
    "upper(sku)",
    "to_number(q)",
    "q",
    "qty > `1`",  # the filter and a route share it: compiled once
    "qty > `5`",
    "{sku: sku, twice: multiply(qty, `2`)}",
}


def test_every_expression_is_compiled_once_per_run(tmp_path: Path) -> None:
    rows = [{"sku": "a", "q": "1"}, {"sku": "b", "q": "3"}, {"sku": "c", "q": "9"}]
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "p.toml"
    path.write_text(EVERY_TRANSFORM)
    with counting_compiles() as compiles:
        plan = compile_file(path, env={})
        summary = anyio.run(lambda: run(plan, observer=NullObserver()))
    assert summary.ok, summary.error
    assert set(compiles) == EXPRESSIONS
    assert all(count == 1 for count in compiles.values()), compiles
    big = [json.loads(line) for line in (tmp_path / "big.jsonl").read_text().splitlines()]
    assert big == [{"sku": "C", "twice": 18}]
    rest = (tmp_path / "rest.jsonl").read_text().splitlines()
    assert [json.loads(line)["sku"] for line in rest] == ["B", "C"]


def test_the_plan_hands_each_component_its_own_compiled_expressions(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text("")
    plan = compile_text(EVERY_TRANSFORM, env={}, path=tmp_path / "p.toml")
    keep = plan.expressions_of("keep")
    assert len(keep) == 1
    assert keep.get(("condition",), "qty > `1`") is plan.expressions[("keep", ("condition",))]
    assert keep.get(("condition",), "qty > `1`") is plan.expressions[("split", ("routes", "odd"))]
    assert len(plan.expressions_of("src")) == 0


def test_problems_of_every_stage_are_raised_together(tmp_path: Path) -> None:
    text = EVERY_TRANSFORM.replace('condition = "qty > `1`"', 'condition = "qty >"').replace(
        'path = "rest.jsonl"', 'path = "big.jsonl"'
    )
    text = text.replace('[transforms.whole]\ntype = "map"', '[transforms.whole]\ntype = "mapp"')
    with pytest.raises(ConfigError) as info:
        compile_text(text, env={}, path=tmp_path / "p.toml")
    codes = [d.code for d in info.value.errors]
    assert codes == ["E027", "E050", "E043"], info.value.errors
    # a file that passes the model stages gets the graph, expression and resource stages at once
    text = EVERY_TRANSFORM.replace('inputs = ["whole"]', 'inputs = ["wholly"]')
    text = text.replace('condition = "qty > `1`"', 'condition = "qty >"')
    text = text.replace('path = "rest.jsonl"', 'path = "./big.jsonl"')
    with pytest.raises(ConfigError) as info:
        compile_path(_write(tmp_path, text), env={})
    codes = [d.code for d in info.value.errors]
    assert codes == ["E040", "E050", "E043"], info.value.errors


def _write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _validate(path: Path) -> tuple[int, str]:
    """`engine validate FILE` in a child process: its exit code and stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "engine", "validate", str(path)],
        capture_output=True,
        text=True,
        cwd=path.parent,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stderr


HEAD = """\
[pipeline]
name = "two"

[sources.src]
type = "file"
path = "in.jsonl"
"""

SINK_PAIRS = {
    "file": (
        'type = "file"\npath = "out/all.jsonl"',
        'type = "file"\npath = "{folder}/out/all.jsonl"',
        "path",
        "both write out/all.jsonl",
    ),
    "sql": (
        'type = "sql"\nurl = "sqlite:///warehouse.db"\ntable = "orders"',
        'type = "sql"\nurl = "sqlite:///{folder}/warehouse.db"\ntable = "ORDERS"',
        "table",
        "both write table orders of sqlite:",
    ),
    "sftp": (
        'type = "sftp"\nhost = "files.example"\nuser = "a"\npath = "/in/{{date}}.jsonl"',
        'type = "sftp"\nhost = "files.example"\nuser = "b"\npath = "/in/./{{date}}.jsonl"',
        "path",
        "both write sftp://a@files.example:22/in/{date}.jsonl",
    ),
    "amqp": (
        'type = "amqp"\nurl = "amqp://u:secret@mq.example/"\nrouting_key = "orders"',
        'type = "amqp"\nurl = "amqp://v:other@mq.example/"\nrouting_key = "orders"',
        "routing_key",
        "with routing key 'orders'",
    ),
}


@pytest.mark.parametrize("kind", sorted(SINK_PAIRS))
def test_two_sinks_on_one_resource_fail_validate_naming_both(tmp_path: Path, kind: str) -> None:
    first, second, key, said = SINK_PAIRS[kind]
    (tmp_path / "in.jsonl").write_text('{"n": 1}\n')
    text = (
        HEAD
        + '\n[sinks.one]\ninputs = ["src"]\n'
        + first.format(folder=tmp_path)
        + '\n\n[sinks.two]\ninputs = ["src"]\n'
        + second.format(folder=tmp_path)
        + "\n"
    )
    path = _write(tmp_path, text)
    lines = text.splitlines()
    start = lines.index("[sinks.one]")
    one = next(i for i, line in enumerate(lines[start:], start) if line.startswith(f"{key} ")) + 1
    two = next(i for i, line in enumerate(lines[one:], one) if line.startswith(f"{key} ")) + 1
    code, err = _validate(path)
    assert code == 78, err
    assert f"{path}:{two}:1: error[E043]:" in err
    assert f"sinks.one ({path}:{one}:1) and sinks.two ({path}:{two}:1)" in err
    assert said in err
    assert "secret" not in err and "other" not in err


def test_sinks_on_different_resources_are_valid(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"n": 1}\n')
    text = (
        HEAD
        + '\n[sinks.one]\ninputs = ["src"]\ntype = "sql"\nurl = "sqlite:///w.db"\ntable = "a"\n'
        + '\n[sinks.two]\ninputs = ["src"]\ntype = "sql"\nurl = "sqlite:///w.db"\ntable = "b"\n'
        + '\n[sinks.three]\ninputs = ["src"]\ntype = "file"\npath = "out/{date}.jsonl"\n'
        + '\n[sinks.four]\ninputs = ["src"]\ntype = "file"\npath = "out/{time}.jsonl"\n'
    )
    code, err = _validate(_write(tmp_path, text))
    assert code == 0, err


CASES = """\
[pipeline]
name = "cases"
[sources.src]
type = "file"
path = "missing-on-purpose.jsonl"
[transforms.shape]
type = "map"
inputs = ["src"]
fields = { id = "sku", qty = "to_number(q)" }
[sinks.out]
type = "file"
inputs = ["shape"]
path = "out.jsonl"

[[tests]]
name = "case"
[tests.inputs.src]
records = [{ sku = "A", q = "2" }]
[tests.expect.out]
conditions = ["qty > `1`", "id == 'A'"]
"""


def test_engine_test_compiles_its_conditions_once_too(tmp_path: Path) -> None:
    path = _write(tmp_path, CASES)
    with counting_compiles() as compiles:
        result = CliRunner().invoke(cli, ["test", "--format", "json", str(path)])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)[0]["ok"] is True
    assert set(compiles) == {"sku", "to_number(q)", "qty > `1`", "id == 'A'"}
    assert all(count == 1 for count in compiles.values()), compiles
