"""A pipeline whose connector's extra is not installed fails `engine validate`, located at the
component's ``type`` and naming the extra and the pip command that installs it (the module is
hidden in the child process only: tests/support/blocked.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from engine.components.extras import EXTRAS
from tests.support.blocked import engine_without

ROOT = Path(__file__).resolve().parents[2]

PIPELINE = """\
[pipeline]
name = "needs-extra"

[sources.orders]
{source}

[sinks.out]
type = "file"
inputs = ["orders"]
path = "out.jsonl"
"""

SQLITE = 'type = "sql"\nurl = "sqlite:///orders.db"\ntable = "orders"'
POSTGRES = 'type = "sql"\nurl = "postgresql://app:pw@db/erp"\ntable = "orders"'
HTTP = 'type = "http"\nurl = "https://api.example/orders"'


def _validate(path: Path, blocked: str, *args: str) -> subprocess.CompletedProcess[str]:
    return engine_without([blocked], "validate", *args, str(path), cwd=ROOT)


@pytest.mark.parametrize(
    ("source", "blocked", "extra"),
    [(SQLITE, "aiosqlite", "sql"), (POSTGRES, "psycopg", "postgres"), (HTTP, "httpx", "http")],
)
def test_a_missing_extra_is_a_located_validate_error(
    tmp_path: Path, source: str, blocked: str, extra: str
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(source=source))
    done = _validate(path, blocked)
    assert done.returncode == 78, done.stderr
    assert f"{path}:5:1: error[E045]" in done.stderr
    kind = source.split('"')[1]
    assert f"source 'orders' (type '{kind}') needs the `{extra}` extra" in done.stderr
    assert f"pip install 'engine[{extra}]'" in done.stderr
    # the same file with the module importable is valid
    assert _validate(path, "nothing-blocked").returncode == 0


def test_json_output_carries_the_extra_and_the_command(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(PIPELINE.format(source=SQLITE))
    done = _validate(path, "greenlet", "--format", "json")
    [diag] = json.loads(done.stdout)["diagnostics"]
    assert (diag["code"], diag["line"]) == ("E045", 5)
    assert "pip install 'engine[sql]'" in diag["hint"]


def test_every_extra_is_declared_in_pyproject() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["optional-dependencies"]
    assert set(EXTRAS) <= set(declared)
    everything = " ".join(declared["all"])
    assert all(extra in everything for extra in EXTRAS)
