"""Loading, interpolation and validation: every error located at file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.config.compile import compile_path
from engine.errors import ConfigError, Diagnostic

GOOD = """\
[pipeline]
name = "demo"

[sources.src]
type = "file"
path = "in.csv"
codec = { type = "csv", delimiter = ";" }

[transforms.shape]
type = "map"
inputs = ["src"]
[transforms.shape.fields]
id = "sku"

[sinks.out]
type = "file"
inputs = ["shape"]
path = "out.jsonl"
"""


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def errors_of(path: Path, env: dict[str, str] | None = None) -> list[Diagnostic]:
    with pytest.raises(ConfigError) as info:
        compile_path(path, env=env or {})
    return info.value.errors


def test_good_file_loads(tmp_path: Path) -> None:
    spec = compile_path(write(tmp_path, GOOD), env={}).spec
    assert spec.meta.name == "demo"
    assert set(spec.components) == {"src", "shape", "out"}
    codec = spec.components["src"].config.codec  # type: ignore[attr-defined]
    assert codec.delimiter == ";"


def test_unknown_key_is_located_and_lists_valid_keys(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('path = "in.csv"', 'path = "in.csv"\npaht = "x"'))
    [err] = errors_of(path)
    assert err.code == "E030"
    assert (err.file, err.line, err.column) == (str(path), 7, 1)
    assert "paht" in err.message
    assert err.hint is not None and "did you mean 'path'" in err.hint


def test_unknown_key_inside_inline_table(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('delimiter = ";"', 'delimter = ";"'))
    [err] = errors_of(path)
    assert err.line == 7
    assert err.column is not None and err.column > 10
    assert "delimter" in err.message


def test_wrong_type_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('id = "sku"', "id = 42"))
    [err] = errors_of(path)
    assert err.line == 13
    assert "fields.id" in err.message


def test_unknown_component_type_suggests(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('type = "map"', 'type = "mapp"'))
    [err] = errors_of(path)
    assert err.code == "E027"
    assert err.line == 10
    assert err.hint == "did you mean 'map'?"


def test_all_errors_reported_at_once(tmp_path: Path) -> None:
    text = GOOD.replace('type = "map"', 'type = "mapp"').replace("paht", "x")
    text = text.replace('path = "out.jsonl"', 'path = "out.jsonl"\ncolour = 1')
    errs = errors_of(write(tmp_path, text))
    assert {e.code for e in errs} == {"E027", "E030"}


def test_missing_env_var_names_variable_and_place(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('"in.csv"', '"${env:IN_DIR}/in.csv"'))
    [err] = errors_of(path)
    assert err.code == "E011"
    assert "IN_DIR" in err.message and "sources.src.path" in err.message
    assert err.line == 6


def test_env_default_and_file_interpolation(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("data\n")
    text = GOOD.replace('"in.csv"', '"${env:IN_DIR:-data}/${file:secret.txt}.csv"')
    spec = compile_path(write(tmp_path, text), env={}).spec
    assert spec.components["src"].config.path == "data/data.csv"  # type: ignore[attr-defined]


def test_interpolated_value_with_newline_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('"in.csv"', '"${env:BAD}"'))
    [err] = errors_of(path, {"BAD": "a\nb"})
    assert err.code == "E013"
    assert "a\nb" not in str(err)


def test_interpolation_never_injects_structure(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('"in.csv"', '"${env:X}"'))
    spec = compile_path(path, env={"X": '", type = "evil'}).spec
    assert spec.components["src"].config.path == '", type = "evil'  # type: ignore[attr-defined]


def test_escaped_reference_is_literal(tmp_path: Path) -> None:
    spec = compile_path(write(tmp_path, GOOD.replace('"in.csv"', '"$${env:X}.csv"')), env={}).spec
    assert spec.components["src"].config.path == "${env:X}.csv"  # type: ignore[attr-defined]


def test_broken_toml_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('name = "demo"', 'name = "demo'))
    [err] = errors_of(path)
    assert err.code == "E002"
    assert err.line == 2


def test_yaml_has_the_same_tree_and_positions(tmp_path: Path) -> None:
    text = """\
pipeline:
  name: demo
sources:
  src:
    type: file
    path: in.csv
    codec: {type: csv, delimitr: ";"}
sinks:
  out:
    type: stdout
    inputs: [src]
"""
    path = write(tmp_path, text, "p.yaml")
    [err] = errors_of(path)
    assert (err.line, err.code) == (7, "E030")
    assert "delimitr" in err.message


def test_broken_yaml_is_located(tmp_path: Path) -> None:
    path = write(tmp_path, "pipeline:\n  name: [demo\n", "p.yml")
    [err] = errors_of(path)
    assert err.code == "E002" and err.line is not None


def test_bad_pipeline_name(tmp_path: Path) -> None:
    [err] = errors_of(write(tmp_path, GOOD.replace('"demo"', '"Demo Pipeline"')))
    assert err.line == 2 and "pipeline.name" in err.message


def test_missing_file_is_an_error(tmp_path: Path) -> None:
    [err] = errors_of(tmp_path / "nope.toml")
    assert err.code == "E001"


def test_rules_file_is_validated_with_the_pipeline(tmp_path: Path) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rules]]\nid = "r1"\nname = "x"\nstandard = "CUSTOM"\nseverity = "INFO"\ncolour = 1\n'
    )
    path = write(
        tmp_path, GOOD.replace('name = "demo"', 'name = "demo"\n[audit]\nrules_file = "rules.toml"')
    )
    errs = errors_of(path)
    assert any(e.file == str(rules) and e.line is not None for e in errs), errs
    rules.write_text('[[rules]]\nid = "r1"\nname = "x"\nstandard = "CUSTOM"\nseverity = "INFO"\n')
    try:
        spec = compile_path(path, env={}).spec
    except ConfigError as exc:  # the rules file may need more fields: say which
        raise AssertionError(str(exc)) from None
    assert spec.audit.rules_file == str(rules)


def test_missing_rules_file(tmp_path: Path) -> None:
    path = write(
        tmp_path, GOOD.replace('name = "demo"', 'name = "demo"\n[audit]\nrules_file = "nope.toml"')
    )
    [err] = errors_of(path)
    assert err.code == "E121" and err.line == 4


@pytest.mark.parametrize(
    ("value", "code"),
    [
        ('"${env:UNSET_X:-${env:HOME}}"', "E010"),
        ('"${env:UNSET_X"', "E010"),
        ('"${env:UNSET_X:-a\\nb}"', "E013"),
    ],
)
def test_references_that_cannot_be_read(tmp_path: Path, value: str, code: str) -> None:
    path = write(tmp_path, GOOD.replace('"in.csv"', value))
    errs = errors_of(path)
    assert [e.code for e in errs] == [code] and errs[0].line == 6
