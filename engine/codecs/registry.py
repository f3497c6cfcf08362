"""The codec kinds: ``type`` -> options model, summary and the file extensions it claims.

A codec is declared once, on its options model: the ``type`` Literal names it, the first
line of its docstring is its summary and ``extensions`` lists the file extensions it claims
(each with the options that extension implies: ``.tsv`` is csv with a tab). The default
registry holds the built-in codecs and whatever installed packages add through the
``engine.codecs`` entry-point group; every extension lookup reads it.
"""

from __future__ import annotations

import builtins
import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from os import PathLike
from pathlib import PurePath
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel

from engine.codecs.base import CodecConfig
from engine.codecs.csv import CsvCodec
from engine.codecs.edi import EdiCodec
from engine.codecs.json import JsonCodec
from engine.codecs.jsonl import JsonlCodec
from engine.codecs.parquet import ParquetCodec
from engine.codecs.xml import XmlCodec
from engine.errors import RegistrationError

__all__ = ["CodecKind", "CodecRegistry", "declared_kind", "default_codecs"]

#: The entry-point group installed packages add codecs through.
ENTRY_POINT_GROUP = "engine.codecs"


def declared_kind(model: builtins.type[BaseModel]) -> tuple[str, str]:
    """A kind's ``type`` (its one-value ``type`` Literal) and summary (its docstring's first
    paragraph); raises :class:`RegistrationError` when the model does not declare a type."""
    field = model.model_fields.get("type")
    values = get_args(field.annotation) if field is not None else ()
    if field is None or get_origin(field.annotation) is not Literal or len(values) != 1:
        raise RegistrationError(
            f"{model.__qualname__}: declare the kind's name as its `type` field, "
            'e.g. type: Literal["name"] = "name"'
        )
    name = values[0]
    if not isinstance(name, str) or field.default != name:
        raise RegistrationError(
            f"{model.__qualname__}: `type` must be a string Literal defaulting to its one value"
        )
    doc = model.__dict__.get("__doc__") or ""
    return name, inspect.cleandoc(doc).split("\n\n", 1)[0].replace("\n", " ")


@dataclass(frozen=True, slots=True)
class CodecKind:
    """One registered codec."""

    type: str
    config: builtins.type[CodecConfig]
    summary: str
    #: extension (lower case, no dot) -> the options it implies
    extensions: Mapping[str, Mapping[str, Any]]

    def for_extension(self, extension: str) -> CodecConfig:
        return self.config.model_validate(dict(self.extensions[extension]))


class CodecRegistry:
    """Codecs by name and by the file extensions they claim."""

    def __init__(self, kinds: Mapping[str, CodecKind] | None = None) -> None:
        self._kinds: dict[str, CodecKind] = dict(kinds or {})

    def register(self, config: builtins.type[CodecConfig]) -> CodecKind:
        """Add a codec; its name, summary and extensions come from the model."""
        if not (isinstance(config, type) and issubclass(config, CodecConfig)):
            raise RegistrationError(f"{config!r} is not a CodecConfig subclass")
        if inspect.isabstract(config):
            raise RegistrationError(
                f"{config.__qualname__} does not implement {sorted(config.__abstractmethods__)}"
            )
        name, summary = declared_kind(config)
        extensions = {ext.lower().lstrip("."): opts for ext, opts in config.extensions.items()}
        for ext in extensions:
            owner = self.for_extension(ext)
            if owner is not None and owner.type != name:
                raise RegistrationError(
                    f"codec {name!r} claims .{ext}, which codec {owner.type!r} already claims"
                )
        kind = CodecKind(name, config, summary, extensions)
        self._kinds[name] = kind
        return kind

    def fork(self) -> CodecRegistry:
        """A copy that can be changed without touching this one."""
        return CodecRegistry(self._kinds)

    def get(self, name: str) -> CodecKind | None:
        return self._kinds.get(name)

    def names(self) -> list[str]:
        """Codec names in registration order (built-ins first)."""
        return list(self._kinds)

    def for_extension(self, extension: str) -> CodecKind | None:
        extension = extension.lower().lstrip(".")
        for kind in self._kinds.values():
            if extension in kind.extensions:
                return kind
        return None

    def for_path(self, path: str | PathLike[str]) -> CodecConfig | None:
        """The codec a file name's extension implies; None when it says nothing known."""
        suffix = PurePath(path).suffix
        kind = self.for_extension(suffix) if suffix else None
        return kind.for_extension(suffix.lower().lstrip(".")) if kind is not None else None

    def extension_of(self, codec: CodecConfig) -> str:
        """The extension a file this codec writes gets: of those it claims whose implied
        options it has, the most specific (csv with a tab: ``tsv``); else its first, else
        its name."""
        kind = self._kinds.get(codec.type)
        if kind is None or not kind.extensions:
            return codec.type
        matching = [
            (len(options), -i, ext)
            for i, (ext, options) in enumerate(kind.extensions.items())
            if all(getattr(codec, key, None) == value for key, value in options.items())
        ]
        return max(matching)[2] if matching else next(iter(kind.extensions))

    def __iter__(self) -> Iterator[CodecKind]:
        return iter(self._kinds.values())


def load_entry_points(registry: CodecRegistry) -> None:
    """Add the codecs installed packages declare: each entry point names a codec model, or
    a callable that takes the registry."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        target: Any = ep.load()
        if isinstance(target, type) and issubclass(target, CodecConfig):
            registry.register(target)
        else:
            hook: Callable[[CodecRegistry], None] = target
            hook(registry)


#: The built-in codecs, in the order `engine components` and the docs list them.
BUILTIN: tuple[builtins.type[CodecConfig], ...] = (
    JsonCodec,
    JsonlCodec,
    CsvCodec,
    XmlCodec,
    EdiCodec,
    ParquetCodec,
)

_default: CodecRegistry | None = None


def default_codecs() -> CodecRegistry:
    """The built-in codecs and the installed ones (entry points), loaded once."""
    global _default
    if _default is None:
        registry = CodecRegistry()
        for codec in BUILTIN:
            registry.register(codec)
        load_entry_points(registry)
        _default = registry
    return _default
