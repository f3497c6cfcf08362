"""The JSON Schema of pipeline files, generated from the models into ``schemas/``.

Editors (Taplo for TOML, yaml-language-server for YAML) read it. Interpolation runs before the
models see a value, so every constrained scalar (number, integer, boolean, enum, a string with
a pattern or a length) also accepts a string holding a ``${env:...}``, ``${file:...}`` or
``${secret:...}`` reference; a plain value of the wrong type is still refused.
"""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from engine.config.interpolate import REFERENCE_PATTERN
from engine.model import pipeline_model
from engine.registry import Registry, default_registry

__all__ = ["SCHEMA_FILE", "SCHEMA_ID", "packaged_schema", "render_schema"]

SCHEMA_FILE = Path("schemas") / "pipeline.schema.json"
#: the schema's absolute identifier: a name, not a download location (editors are pointed at
#: the file itself, see README.md)
SCHEMA_ID = "https://engine.example/schemas/pipeline.schema.json"

_REFERENCE_DEF = "Interpolation"
_REFERENCE = {"$ref": f"#/$defs/{_REFERENCE_DEF}"}
#: keywords that describe a value rather than constrain it; they stay beside the ``anyOf``
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "deprecated"})
#: keywords whose value is one subschema, a list of them, or a mapping of names to them
_ONE = ("additionalProperties", "items", "not", "if", "then", "else", "contains")
_MANY = ("anyOf", "oneOf", "allOf", "prefixItems")
_NAMED = ("properties", "$defs", "patternProperties")


def packaged_schema() -> Traversable:
    """The schema installed with the package. In a checkout, ``engine/schemas/`` links to the
    committed file, so the wheel ships exactly what ``engine schema --check`` checks."""
    return files("engine") / "schemas" / "pipeline.schema.json"


def render_schema(registry: Registry | None = None) -> str:
    model = pipeline_model(registry or default_registry())
    schema = model.model_json_schema(mode="validation")
    _accept_references(schema)
    schema["$defs"][_REFERENCE_DEF] = {
        "description": "A value given by `${env:NAME}`, `${file:path}` or `${secret:NAME:key}`, "
        "replaced before the value is checked.",
        "pattern": REFERENCE_PATTERN,
        "type": "string",
    }
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = SCHEMA_ID
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def _accept_references(node: dict[str, Any]) -> None:
    """Let every constrained scalar under ``node`` (itself included) take a reference."""
    for key in _ONE:
        if isinstance(node.get(key), dict):
            _accept_references(node[key])
    for key in _MANY:
        for item in node.get(key, ()):
            _accept_references(item)
        if key == "anyOf" and key in node:
            node[key] = _flat(node[key])
    for key in _NAMED:
        for item in node.get(key, {}).values():
            _accept_references(item)
    if _constrained_scalar(node):
        value = {k: v for k, v in node.items() if k not in _ANNOTATIONS}
        for k in value:
            del node[k]
        node["anyOf"] = [value, _REFERENCE]


def _constrained_scalar(node: dict[str, Any]) -> bool:
    if "const" in node:  # a kind's `type` tag: the engine reads it before interpolation
        return False
    if "enum" in node or node.get("type") in ("integer", "number", "boolean"):
        return True
    constraints = ("pattern", "minLength", "maxLength")
    return node.get("type") == "string" and any(k in node for k in constraints)


def _flat(branches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An ``anyOf`` with its bare ``anyOf`` branches spliced in and the reference once, last."""
    out: list[dict[str, Any]] = []
    reference = False
    for branch in branches:
        for item in branch["anyOf"] if set(branch) == {"anyOf"} else [branch]:
            if item == _REFERENCE:
                reference = True
            elif item not in out:
                out.append(item)
    return [*out, _REFERENCE] if reference else out
