"""Validate a table of a parsed file against a pydantic model, each problem at file:line:col.

Shared by the pipeline file and the compliance rules file.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from engine.components.envelope import foreign_roles
from engine.config.loader import Document
from engine.config.positions import Path_
from engine.errors import Diagnostic

__all__ = ["models_in", "union_tag", "valid_keys_hint", "validate_model"]

M = TypeVar("M", bound=BaseModel)


def validate_model(
    doc: Document, model: type[M], raw: Any, path: Path_, problems: list[Diagnostic]
) -> M | None:
    if raw is None:
        problems.append(
            doc.diagnostic("E028", f"missing required table [{'.'.join(map(str, path))}]", path)
        )
        return None
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        seen: dict[tuple[str, tuple[str | int, ...]], Diagnostic] = {}
        for err in exc.errors(include_input=False, include_url=False):
            diag = _from_pydantic(doc, model, path, err, raw)
            key = (diag.code, _tree_loc(raw, tuple(err["loc"])))
            if key in seen:  # one value failing every branch of a union: say it once
                first = seen[key]
                merged = Diagnostic(
                    first.code,
                    f"{first.message}; or {diag.message.split(': ', 1)[-1]}",
                    first.file,
                    first.line,
                    first.column,
                    first.hint,
                    first.severity,
                )
                problems[problems.index(first)] = merged
                seen[key] = merged
                continue
            seen[key] = diag
            problems.append(diag)
        return None


def _tree_loc(raw: Any, loc: Sequence[str | int]) -> tuple[str | int, ...]:
    """The part of a pydantic error location that exists in the file (drops union tags)."""
    out: list[str | int] = []
    node = raw
    for part in loc:
        in_dict = isinstance(node, dict) and part in node
        if in_dict or (isinstance(node, list) and isinstance(part, int) and part < len(node)):
            node = node[part]
            out.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and node.get("type") == part:
            continue  # a discriminated union's tag
        elif node is not None and not isinstance(node, dict | list) and isinstance(part, str):
            continue  # a union branch name under a scalar (codec = "csv", x = 42)
        else:
            out.append(part)
            node = None
    return tuple(out)


def _from_pydantic(
    doc: Document, model: type[BaseModel], path: Path_, err: Mapping[str, Any], raw: Any
) -> Diagnostic:
    model_loc: tuple[str | int, ...] = tuple(err["loc"])
    loc = _tree_loc(raw, model_loc)
    where = ".".join(str(p) for p in (*path, *loc))
    kind = err["type"]
    if kind == "extra_forbidden":
        role = getattr(model, "kind_role", None)
        others = foreign_roles(role, str(loc[-1])) if role and len(loc) == 1 else ()
        if role and others:
            return doc.diagnostic(
                "E033",
                f"{loc[-1]!r} means nothing for a {role.value} ({'.'.join(map(str, path))})",
                (*path, *loc),
                f"only a {' or a '.join(r.value for r in others)} has it; remove it",
            )
        valid = _fields_at(model, model_loc[:-1])
        hint = valid_keys_hint(str(loc[-1]), valid) if valid else None
        return doc.diagnostic(
            "E030", f"unknown key {loc[-1]!r} in {_parent(path, loc)}", (*path, *loc), hint
        )
    if kind == "missing":
        return doc.diagnostic("E031", f"missing required key {where}", (*path, *loc))
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return doc.diagnostic(
            "E032",
            f"unknown type {ctx.get('tag')!r} at {where}",
            (*path, *loc),
            f"one of: {ctx.get('expected_tags')}",
        )
    message = str(err["msg"]).removeprefix("Value error, ")
    return doc.diagnostic("E032", f"{where}: {message}", (*path, *loc))


def _parent(path: Path_, loc: tuple[str | int, ...]) -> str:
    full = (*path, *loc[:-1])
    return ".".join(str(p) for p in full) if full else "the file"


def _fields_at(model: type[BaseModel], loc: Sequence[str | int]) -> list[str]:
    """Valid keys of the (sub)model at a pydantic error location, following union tags."""
    current: list[type[BaseModel]] = [model]
    for part in loc:
        if len(current) > 1:
            tagged = [m for m in current if union_tag(m) == part]
            if tagged:
                current = tagged
                continue
        if len(current) != 1:
            return []
        info = current[0].model_fields.get(str(part))
        if info is None:
            return []
        current = models_in(info.annotation)
    return sorted(current[0].model_fields) if len(current) == 1 else []


def union_tag(model: type[BaseModel]) -> Any:
    field = model.model_fields.get("type")
    return field.default if field is not None else None


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The models inside an annotation: itself, or the members of a (nested, annotated) union."""
    found: list[type[BaseModel]] = []
    stack = [annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            found.append(item)
            continue
        if getattr(item, "__metadata__", None) is not None:
            stack.append(item.__origin__)
            continue
        stack.extend(getattr(item, "__args__", ()))
    return found


def valid_keys_hint(key: str, valid: Sequence[str]) -> str:
    guess = difflib.get_close_matches(key, valid, n=1)
    text = f"valid keys: {', '.join(valid)}"
    return f"did you mean {guess[0]!r}? {text}" if guess else text
