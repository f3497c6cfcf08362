"""Pipeline files are read as YAML 1.2, and deep or exploding files are located errors."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from engine.config.compile import compile_path
from engine.config.loader import parse_document
from engine.errors import ConfigError

YAML = """\
pipeline:
  name: demo
sources:
  src:
    type: file
    path: in.csv
    codec: csv
transforms:
  shape:
    type: map
    inputs: [src]
    fields:
      flag: {expr: flag, default: NO}
      on: sku
sinks:
  out:
    type: file
    inputs: [shape]
    path: out.jsonl
"""

LAUGHS = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]"
            for p, c in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)


def test_yaml_12_keeps_no_and_on_as_strings(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(YAML)
    spec = compile_path(path, env={}).spec
    fields = spec.components["shape"].config.fields  # type: ignore[attr-defined]
    assert fields["flag"].default == "NO"
    assert "on" in fields
    assert spec.document.where(("transforms", "shape", "fields", "on")) == (14, 7)


def test_yaml_error_on_an_on_key_is_reported_on_its_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(YAML.replace("    path: out.jsonl", "    path: out.jsonl\n    on: 1"))
    with pytest.raises(ConfigError) as info:
        compile_path(path, env={})
    [err] = info.value.errors
    assert err.code == "E030" and "'on'" in err.message
    assert (err.line, err.column) == (20, 5)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("v: yes", "yes"),
        ("v: Off", "Off"),
        ("v: 0o17", 15),
        ("v: 0x1f", 31),
        ("v: 1_000", "1_000"),
        ("v: 2024-01-02", "2024-01-02"),
        ("v: ~", None),
        ("v: True", True),
        ("v: 1.5e3", 1500.0),
        ("v: '12'", "12"),
        ("v: !!str 12", "12"),
    ],
)
def test_plain_scalars_resolve_by_the_core_schema(text: str, value: object) -> None:
    assert parse_document(text, fmt="yaml").tree["v"] == value


def test_billion_laughs_is_refused_at_once() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError) as info:
            parse_document(LAUGHS, fmt="yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    [err] = info.value.errors
    assert err.code == "E005" and err.line is not None
    assert peak < 100 * 1024 * 1024


def test_self_referencing_alias_is_located() -> None:
    with pytest.raises(ConfigError) as info:
        parse_document("pipeline:\n  name: x\nloop: &a\n  inner: *a\n", fmt="yaml")
    [err] = info.value.errors
    assert (err.code, err.line) == ("E005", 3)


def test_shared_alias_is_still_allowed() -> None:
    doc = parse_document("base: &b {x: 1}\none: *b\ntwo: *b\n", fmt="yaml")
    assert doc.tree["one"] == doc.tree["two"] == {"x": 1}


@pytest.mark.parametrize(
    ("fmt", "text", "line"),
    [
        ("toml", "[pipeline]\nname = 'x'\nv = " + "{a = " * 400 + "1" + "}" * 400, 3),
        ("toml", "v = " + "[" * 2000 + "]" * 2000, 1),
        ("yaml", "pipeline:\n  v: " + "[" * 2000 + "]" * 2000, 2),
        ("yaml", "v:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)), 65),
    ],
    ids=["toml-inline-tables", "toml-arrays", "yaml-flow", "yaml-block"],
)
def test_deep_nesting_is_a_located_error(fmt: str, text: str, line: int) -> None:
    with pytest.raises(ConfigError) as info:
        parse_document(text, fmt=fmt)
    [err] = info.value.errors
    assert (err.code, err.line) == ("E004", line)


def test_brackets_inside_toml_strings_are_not_nesting() -> None:
    text = 'a = "' + "[" * 100 + "\"\nb = '''\n" + "{" * 100 + "\n'''\n# " + "[" * 100
    assert parse_document(text, fmt="toml").tree["a"] == "[" * 100


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("loop.yaml", "pipeline:\n  name: x\nloop: &a [*a]\n"),
        ("deep.toml", "[pipeline]\nname = 'x'\nv = " + "{a = " * 400 + "1" + "}" * 400),
    ],
    ids=["alias-loop", "deep-toml"],
)
def test_cli_validate_exits_78_with_a_code(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 78, proc.stderr + proc.stdout
    assert "internal error" not in proc.stdout + proc.stderr
    assert f"{path}:3:" in proc.stdout + proc.stderr


def test_a_file_that_is_not_utf8_is_located(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_bytes(b'[pipeline]\nname = "caf\xe9"\n')
    with pytest.raises(ConfigError) as info:
        compile_path(path, env={})
    [err] = info.value.errors
    assert (err.code, err.line, err.column) == ("E001", 2, 12)
    assert "byte offset 22" in err.message
