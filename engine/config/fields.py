"""Which model field a path of the file lands in, and what its metadata says about secrets."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from engine.components.base import Role
from engine.config.located import models_in, union_tag
from engine.config.positions import Path_
from engine.model import DeadLetterSettings, PipelineMeta, TestCase
from engine.model.audit import AuditSettings
from engine.redact import KeyMaterial
from engine.registry import Registry

__all__ = ["FieldLookup"]

_TABLES: dict[str, type[BaseModel]] = {
    "pipeline": PipelineMeta,
    "audit": AuditSettings,
    "dead_letter": DeadLetterSettings,
}


class FieldLookup:
    """Finds the field of a path in a parsed (not yet interpolated) tree."""

    def __init__(self, tree: dict[str, Any], registry: Registry) -> None:
        self.tree = tree
        self.registry = registry

    def takes_key(self, path: Path_) -> bool:
        """The field takes a key or certificate: several lines are welcome."""
        info = self.field_at(path)
        return info is not None and any(isinstance(m, KeyMaterial) for m in info.metadata)

    def holds_secret(self, path: Path_) -> bool:
        """The field holds a key or a secret string (``SecretStr``)."""
        info = self.field_at(path)
        return info is not None and (self.takes_key(path) or _mentions(info.annotation, SecretStr))

    def field_at(self, path: Path_) -> FieldInfo | None:
        root = self._table_model(path)
        if root is None:
            return None
        model, depth = root
        return _field_at(model, path[depth:], _get(self.tree, path[:depth]))

    def _table_model(self, path: Path_) -> tuple[type[BaseModel], int] | None:
        if not path or not isinstance(path[0], str):
            return None
        if path[0] in _TABLES:
            return _TABLES[path[0]], 1
        if path[0] == "tests":
            return TestCase, 2
        role = next((r for r in Role if r.table == path[0]), None)
        if role is None or len(path) < 2:
            return None
        raw = _get(self.tree, path[:2])
        kind = raw.get("type") if isinstance(raw, dict) else None
        spec = self.registry.get(role, str(kind)) if kind is not None else None
        return (spec.config, 2) if spec is not None else None


def _field_at(model: type[BaseModel], loc: Path_, raw: Any) -> FieldInfo | None:
    models: list[type[BaseModel]] = [model]
    node, info = raw, None
    for part in loc:
        if isinstance(part, int):  # an item of a list: the same models
            node = node[part] if isinstance(node, list) and part < len(node) else None
            continue
        if len(models) > 1 and isinstance(node, dict):
            tagged = [m for m in models if union_tag(m) == node.get("type")]
            models = tagged or models
        info = next((m.model_fields[part] for m in models if part in m.model_fields), None)
        if info is None:
            return None
        models = models_in(info.annotation)
        node = node.get(part) if isinstance(node, dict) else None
    return info


def _get(tree: Any, path: Path_) -> Any:
    for part in path:
        if isinstance(tree, dict):
            tree = tree.get(part)
        elif isinstance(tree, list) and isinstance(part, int) and part < len(tree):
            tree = tree[part]
        else:
            return None
    return tree


def _mentions(annotation: Any, wanted: type) -> bool:
    """``wanted`` is the annotation or one of its (nested) arguments."""
    stack = [annotation]
    while stack:
        item = stack.pop()
        if item is wanted:
            return True
        stack.extend(getattr(item, "__args__", ()))
        if getattr(item, "__origin__", None) is not None and hasattr(item, "__metadata__"):
            stack.append(item.__origin__)
    return False
