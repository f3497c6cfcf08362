"""Editors' view of pipeline files: the schema's identity, references in scalar fields, and
every bundled file naming the schema and passing it (jsonschema, and Taplo for TOML)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from engine.schema import SCHEMA_ID
from tests.core.test_bundled_files import FILES, ROOT

SCHEMA_PATH = ROOT / "schemas" / "pipeline.schema.json"
SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def _tree(path: Path) -> Any:
    text = path.read_text()
    return yaml.safe_load(text) if path.suffix in (".yaml", ".yml") else tomllib.loads(text)


def _sftp(**fields: object) -> dict[str, Any]:
    source = {"type": "sftp", "host": "h", "user": "u", "path": "/in/*.csv", **fields}
    return {"pipeline": {"name": "p"}, "sources": {"a": source}}


def test_schema_is_valid_and_absolute() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["$id"] == SCHEMA_ID and SCHEMA_ID.startswith("https://")


@pytest.mark.parametrize(
    "fields",
    [
        {"port": "${env:SFTP_PORT}"},  # integer
        {"accept_unknown_host_key": "${env:TRUST:-false}"},  # boolean
        {"after_read": "${secret:sftp:after}"},  # enum
        {"timeout": "${file:timeout.txt}"},  # number
    ],
)
def test_a_reference_is_accepted_in_a_scalar_field(fields: dict[str, object]) -> None:
    assert list(VALIDATOR.iter_errors(_sftp(**fields))) == []


@pytest.mark.parametrize(
    "fields",
    [{"port": "22"}, {"port": True}, {"accept_unknown_host_key": "yes"}, {"after_read": "burn"}],
)
def test_a_plain_wrong_type_is_still_refused(fields: dict[str, object]) -> None:
    assert list(VALIDATOR.iter_errors(_sftp(**fields)))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_bundled_file_names_and_passes_the_schema(path: Path) -> None:
    relative = Path("..") / SCHEMA_PATH.relative_to(ROOT)
    first = path.read_text().splitlines()[0]
    if path.suffix == ".toml":
        assert first == f"#:schema {relative.as_posix()}"
    else:
        assert first == f"# yaml-language-server: $schema={relative.as_posix()}"
    assert (path.parent / relative).resolve() == SCHEMA_PATH
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(_tree(path))]
    assert errors == []


def _taplo(*files: Path) -> subprocess.CompletedProcess[str]:
    command = ["taplo", "check", "--no-auto-config", *map(str, files)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("taplo") is None, reason="taplo is not installed (dev extras)")
def test_taplo_checks_every_bundled_toml_file(tmp_path: Path) -> None:
    done = _taplo(*(p for p in FILES if p.suffix == ".toml"))
    assert done.returncode == 0, done.stderr
    # Taplo follows the schema line: a wrong type in a port fails the same check
    bad = tmp_path / "bad.toml"
    bad.write_text(
        f'#:schema {SCHEMA_PATH.as_uri()}\n[pipeline]\nname = "p"\n[sources.a]\n'
        'type = "sftp"\nhost = "h"\nuser = "u"\npath = "/in"\nport = "twenty-two"\n'
    )
    done = _taplo(bad)
    assert done.returncode != 0 and "bad.toml:4" in done.stderr, done.stderr
