"""`engine validate` reports what `run` and `dry-run` would fail on, located in the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import cli


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


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
