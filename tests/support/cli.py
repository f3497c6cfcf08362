"""Helpers of the CLI tests: call `engine` in-process, write a pipeline file."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from engine.cli.main import cli


def invoke(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``engine ARGS...``."""
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path
