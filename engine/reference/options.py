"""A config model's options as rows: dotted name, type, default in TOML form, description.

Nested models are expanded (``batch.size``), the variants of a tagged union each under their
tag (``auth.token`` when ``type = "bearer"``), and codec fields point to the codec page
instead of repeating every codec's options.
"""

from __future__ import annotations

import enum
import json
import re
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePath
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, SecretStr
from pydantic.fields import FieldInfo

from engine.codecs.base import CodecConfig

__all__ = ["Option", "options", "toml_value"]

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_SCALARS: Mapping[type[Any], str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Decimal: "number",
    SecretStr: "string (secret)",
    datetime: "datetime",
    date: "date",
    time: "time",
    timedelta: "seconds",
    PurePath: "path",
}


@dataclass(frozen=True, slots=True)
class Option:
    """One row of the reference."""

    name: str
    type: str
    required: bool
    default: str
    description: str
    examples: tuple[str, ...] = ()
    when: str = ""


def options(model: type[BaseModel], skip: Sequence[str] = ()) -> list[Option]:
    """Every option of ``model`` (but ``skip``), nested ones expanded after their parent; an
    option several variants of a union share alike is one row naming them all."""
    rows: dict[tuple[object, ...], Option] = {}
    for row in _rows(model, "", "", frozenset(skip), (model,)):
        key = (row.name, row.type, row.required, row.default, row.description, row.examples)
        first = rows.get(key)
        if first is not None and first.when and row.when:
            row = replace(first, when=f"{first.when} | {row.when.split(' = ', 1)[1]}")
        rows[key] = row
    return list(rows.values())


def _rows(
    model: type[BaseModel],
    prefix: str,
    when: str,
    skip: frozenset[str],
    seen: tuple[type[BaseModel], ...],
) -> Iterator[Option]:
    for name, info in model.model_fields.items():
        if name in skip or (prefix and name == "type" and _tag(model) is not None):
            continue
        dotted = f"{prefix}{name}"
        yield Option(
            dotted,
            type_text(info.annotation),
            info.is_required(),
            _default_text(info),
            " ".join((info.description or "").split()),
            tuple(toml_value(e) for e in info.examples or ()),
            when,
        )
        models, keyed = _nested(info.annotation)
        models = [m for m in models if m not in seen]
        tagged = len(models) > 1 or any(_tag(m) is not None for m in models)
        inner = f"{dotted}.*." if keyed else f"{dotted}."
        for sub in models:
            tag = _tag(sub)
            sub_when = f'{dotted}.type = "{tag}"' if tagged and tag is not None else when
            yield from _rows(sub, inner, sub_when, frozenset(), (*seen, sub))


def _tag(model: type[BaseModel]) -> str | None:
    field = model.model_fields.get("type")
    values = get_args(field.annotation) if field is not None else ()
    if field is not None and get_origin(field.annotation) is Literal and len(values) == 1:
        return str(values[0])
    return None


def _strip(annotation: Any) -> Any:
    """An annotation without ``Annotated`` metadata."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _members(annotation: Any) -> list[Any]:
    annotation = _strip(annotation)
    if get_origin(annotation) in (Union, types.UnionType):
        return [m for a in get_args(annotation) for m in _members(a)]
    return [annotation]


def _is_model(item: Any) -> bool:
    return isinstance(item, type) and issubclass(item, BaseModel)


def _is_codec(annotation: Any) -> bool:
    members = [m for m in _members(annotation) if m is not type(None)]
    return bool(members) and all(_is_model(m) and issubclass(m, CodecConfig) for m in members)


def _nested(annotation: Any) -> tuple[list[type[BaseModel]], bool]:
    """The models an option holds (none for a codec), and whether they sit under keys."""
    if _is_codec(annotation):
        return [], False
    found: list[type[BaseModel]] = []
    keyed = False
    for member in _members(annotation):
        if _is_model(member):
            found.append(member)
        elif get_origin(member) in (dict, Mapping) and len(get_args(member)) == 2:
            inner = [m for m in _members(get_args(member)[1]) if _is_model(m)]
            if inner:
                found.extend(inner)
                keyed = True
    return found, keyed


def type_text(annotation: Any) -> str:
    """A reader's name for an annotation: ``string``, ``array of string``, ``"a" | "b"``."""
    if _is_codec(annotation):
        return "codec"
    accepted = _input_type(annotation)
    if accepted is not None:
        return type_text(accepted)
    members = _members(annotation)
    tags = [_tag(m) if _is_model(m) else None for m in members if m is not type(None)]
    if len(tags) > 1 and all(t is not None for t in tags):
        return "table (type = " + " | ".join(f'"{t}"' for t in tags) + ")"
    texts: list[str] = []
    for member in members:
        if member is type(None):
            continue
        text = _one_type(member)
        if text not in texts:
            texts.append(text)
    return " or ".join(texts) if texts else "any"


def _input_type(annotation: Any) -> Any:
    """What a before-validator accepts in the file (``"100/s"`` or a table), if it says."""
    for member in [annotation, *get_args(annotation)]:
        if get_origin(member) is Annotated:
            for meta in get_args(member)[1:]:
                accepted = getattr(meta, "json_schema_input_type", Any)
                if accepted is not Any:
                    return accepted
    return None


def _one_type(item: Any) -> str:
    origin = get_origin(item)
    if origin is Literal:
        return " | ".join(toml_value(v) for v in get_args(item))
    if origin in (list, tuple, set, frozenset, Sequence):
        args = [a for a in get_args(item) if a is not Ellipsis]
        return f"array of {type_text(args[0])}" if args else "array"
    if origin in (dict, Mapping):
        pair = get_args(item)
        return f"table of {type_text(pair[1])}" if len(pair) == 2 else "table"
    if item is Any:
        return "any"
    if isinstance(item, type):
        if issubclass(item, enum.Enum):
            return " | ".join(toml_value(m.value) for m in item)
        if issubclass(item, BaseModel):
            tag = _tag(item)
            return f'table (type = "{tag}")' if tag is not None else "table"
        for base, text in _SCALARS.items():
            if issubclass(item, base) and not (base is int and issubclass(item, bool)):
                return text
    return getattr(item, "__name__", str(item))


def _default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)
    return "none" if value is None else toml_value(value)


def toml_value(value: Any) -> str:
    """``value`` as TOML writes it inline: ``true``, ``"x"``, ``{ size = 500 }``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return toml_value(value.value)
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        if value != value:
            return "nan"
        if value in (float("inf"), float("-inf")):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, SecretStr):
        return '"***"'
    if isinstance(value, PurePath):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, timedelta):
        return toml_value(value.total_seconds())
    if isinstance(value, CodecConfig):
        options = value.model_dump(exclude_defaults=True, exclude={"type"})
        if not options:
            return toml_value(value.type)
        return toml_value({"type": value.type, **options})
    if isinstance(value, BaseModel):
        return toml_value(value.model_dump(exclude_none=True))
    if isinstance(value, Mapping):
        if not value:
            return "{}"
        items = ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items() if v is not None)
        return f"{{ {items} }}"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return json.dumps(str(value), ensure_ascii=False)


def _key(key: object) -> str:
    text = str(key)
    return text if _BARE_KEY.match(text) else json.dumps(text, ensure_ascii=False)
