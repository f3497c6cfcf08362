"""``--env-file``: dotenv syntax, its errors, and its place under the real environment."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from engine.cli.main import cli
from engine.config.dotenv import parse_env_text
from engine.errors import ConfigError

PIPELINE = """\
[pipeline]
name = "envfile"

[sources.src]
type = "file"
path = "${env:IN_FILE}"

[sinks.out]
type = "file"
inputs = ["src"]
path = "${env:OUT_FILE:-out.jsonl}"
"""


def test_dotenv_syntax() -> None:
    text = (
        "# a comment\n"
        "\n"
        "export PLAIN = some value  # trailing comment\n"
        "HASH=a#b\n"
        "SINGLE='kept \\n as is'\n"
        'DOUBLE="tab\\there \\"quoted\\""\n'
        'PEM="-----BEGIN KEY-----\n'
        "abc\n"
        '-----END KEY-----"\n'
        "EMPTY=\n"
    )
    assert parse_env_text(text) == {
        "PLAIN": "some value",
        "HASH": "a#b",
        "SINGLE": "kept \\n as is",
        "DOUBLE": 'tab\there "quoted"',
        "PEM": "-----BEGIN KEY-----\nabc\n-----END KEY-----",
        "EMPTY": "",
    }


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("A=1\njust words\n", 2, "expected KEY=value"),
        ("A=1\nB='open\nC=2\n", 2, "B: the ' is never closed"),
        ('A="x" y\n', 1, "text after the closing"),
    ],
)
def test_a_bad_line_names_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_env_text(text, "deploy.env")
    [problem] = info.value.diagnostics
    assert (problem.code, problem.file, problem.line) == ("E016", "deploy.env", line)
    assert words in problem.message


def test_every_command_that_reads_a_pipeline_takes_env_file() -> None:
    commands = ("run", "validate", "dry-run", "test", "graph", "serve")
    context = click.Context(cli)
    for name in commands:
        command = cli.get_command(context, name)
        assert command is not None, name
        assert any(
            isinstance(p, click.Option) and "--env-file" in p.opts for p in command.params
        ), name


def test_env_file_feeds_references_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "in.jsonl").write_text('{"id": 1}\n')
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(PIPELINE)
    env_file = tmp_path / ".env"
    env_file.write_text(f'IN_FILE="{tmp_path / "in.jsonl"}"\nOUT_FILE=from-file.jsonl\n')
    runner = CliRunner()

    result = runner.invoke(cli, ["validate", str(pipeline)])
    assert result.exit_code == 78 and "IN_FILE is not set" in result.stderr

    result = runner.invoke(cli, ["run", "--env-file", str(env_file), "-q", str(pipeline)])
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "from-file.jsonl").read_text() == '{"id":1}\n'

    result = runner.invoke(
        cli,
        ["run", "--env-file", str(env_file), "-q", str(pipeline)],
        env={"OUT_FILE": "from-env.jsonl"},
    )
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "from-env.jsonl").exists()


def test_a_bad_env_file_stops_the_command(tmp_path: Path) -> None:
    pipeline = tmp_path / "p.toml"
    pipeline.write_text(PIPELINE)
    env_file = tmp_path / "bad.env"
    env_file.write_text("IN_FILE=x\nENGINE_HOME\n")
    result = CliRunner().invoke(cli, ["validate", "--env-file", str(env_file), str(pipeline)])
    assert result.exit_code == 78
    assert f"{env_file}:2:1" in result.stderr and "E016" in result.stderr
