"""The JSON Schema of pipeline files, generated from the models into ``schemas/``."""

from __future__ import annotations

import json
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from engine.model import pipeline_model
from engine.registry import Registry, default_registry

__all__ = ["SCHEMA_FILE", "packaged_schema", "render_schema"]

SCHEMA_FILE = Path("schemas") / "pipeline.schema.json"


def packaged_schema() -> Traversable:
    """The schema installed with the package. In a checkout, ``engine/schemas/`` links to the
    committed file, so the wheel ships exactly what ``engine schema --check`` checks."""
    return files("engine") / "schemas" / "pipeline.schema.json"


def render_schema(registry: Registry | None = None) -> str:
    model = pipeline_model(registry or default_registry())
    schema = model.model_json_schema(mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "pipeline.schema.json"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
