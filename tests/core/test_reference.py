"""The option reference: rendered from the models, committed, drift-checked; `engine components`
prints the same sections."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel, ConfigDict

from engine.codecs import CodecSpec
from engine.codecs.registry import default_codecs
from engine.components.base import Role
from engine.reference import component_section, render_reference
from engine.reference.options import options, toml_value
from engine.reference.pages import envelope_fields
from engine.registry import default_registry
from tests.support.cli import invoke

ROOT = Path(__file__).resolve().parents[2]


def test_docs_check_names_the_stale_pages(tmp_path: Path) -> None:
    out = tmp_path / "reference"
    code, _, err = invoke("docs", "--check", "--output", str(out))
    assert code == 1 and f"{out / 'sinks.md'} is out of date" in err
    assert invoke("docs", "--output", str(out))[0] == 0
    assert invoke("docs", "--check", "--output", str(out))[0] == 0
    (out / "sinks.md").write_text("# Sinks\n")
    (out / "gone.md").write_text("# a kind that was removed\n")
    code, _, err = invoke("docs", "--check", "--output", str(out))
    assert code == 1
    assert "sinks.md is out of date" in err and "gone.md is out of date" in err
    assert "sources.md" not in err
    assert invoke("docs", "--output", str(out))[0] == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "codecs.md",
        "sinks.md",
        "sources.md",
        "transforms.md",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (True, "true"),
        (None, "none"),
        ("x", '"x"'),
        ("\t", '"\\t"'),
        (1.0, "1.0"),
        ([], "[]"),
        ({"size": 500}, "{ size = 500 }"),
        ({"a b": ["x", 2]}, '{ "a b" = ["x", 2] }'),
        (Role.SINK, '"sink"'),
    ],
)
def test_values_are_written_as_toml(value: object, text: str) -> None:
    assert (toml_value(value) if value is not None else "none") == text


def test_defaults_are_toml_and_nested_models_are_expanded() -> None:
    spec = default_registry().get(Role.SOURCE, "file")
    assert spec is not None
    rows = {row.name: row for row in options(spec.config)}
    assert rows["batch"].default == "{ size = 1000, timeout = 1.0 }"
    assert rows["batch.size"].type == "integer" and rows["batch.size"].default == "1000"
    assert rows["on_error"].default == '"fail"'
    assert rows["path"].required and rows["path"].default == "required"
    http = default_registry().get(Role.SOURCE, "http")
    assert http is not None
    auth = {row.name: row for row in options(http.config)}
    assert auth["auth.token"].when == 'auth.type = "bearer"'
    assert auth["auth"].type.startswith('table (type = "api_key" | "bearer"')


def test_pages_hold_every_option_and_no_python_repr() -> None:
    pages = render_reference()
    registry = default_registry()
    for spec in registry:
        page = pages[f"{spec.role.table}.md"]
        assert f"## `{spec.type}`" in page
        for name in spec.config.model_fields:
            assert f"| `{name}` |" in page, (spec.type, name)
    for kind in default_codecs():
        for name in kind.config.model_fields.keys() - {"type"}:
            assert f"| `{name}` |" in pages["codecs.md"], (kind.type, name)
    for page in pages.values():
        for python in ("True", "False", "None", "Policy(", "Codec("):
            assert f"`{python}" not in page and f"| {python} |" not in page


def _examples(page: str) -> list[str]:
    return [block.split("```", 1)[0] for block in page.split("```toml\n")[1:]]


def test_component_examples_are_toml_with_every_required_option() -> None:
    pages = render_reference()
    for role in Role:
        examples = _examples(pages[f"{role.table}.md"])
        specs = [s for s in default_registry() if s.role is role]
        assert len(examples) == len(specs)
        for spec, example in zip(specs, examples, strict=True):
            table = tomllib.loads(example)[role.table]
            (entry,) = table.values()
            assert entry["type"] == spec.type
            required = {n for n, f in spec.config.model_fields.items() if f.is_required()}
            assert required <= set(entry), spec.type


class Holder(BaseModel):
    model_config = ConfigDict(extra="forbid")

    codec: CodecSpec


def test_codec_examples_validate() -> None:
    examples = _examples(render_reference()["codecs.md"])
    assert len(examples) == len(list(default_codecs()))
    for kind, example in zip(default_codecs(), examples, strict=True):
        source = tomllib.loads(example)["sources"]["in"]
        codec = Holder.model_validate({"codec": source["codec"]}).codec
        assert codec.type == kind.type
        assert default_codecs().for_path(source["path"]).type == kind.type  # type: ignore[union-attr]


def test_components_kind_prints_the_reference_section() -> None:
    spec = default_registry().get(Role.SINK, "stdout")
    assert spec is not None
    code, out, _ = invoke("components", "stdout")
    assert code == 0
    assert "\n".join(component_section(spec)[1:]) in out
    code, out, _ = invoke("components", "csv")
    assert code == 0 and '`.tsv` (`{ delimiter = "\\t" }`)' in out
    code, _, err = invoke("components", "nope")
    assert code == 2 and "kinds: amqp" in err


def test_components_json_has_types_and_toml_defaults() -> None:
    code, out, _ = invoke("components", "--format", "json")
    assert code == 0
    entries = {(e["role"], e["type"]): e for e in json.loads(out)}
    sink = entries[("sink", "file")]["options"]
    assert sink["segment.max_records"] == {
        "type": "integer",
        "required": False,
        "default": "100000",
        "description": "Records per segment.",
        "when": None,
    }
    assert set(envelope_fields(Role.SINK)).isdisjoint(sink)
    assert entries[("codec", "csv")]["extensions"] == ["csv", "tsv"]
