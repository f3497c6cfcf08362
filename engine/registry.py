"""The component kinds: role + ``type`` -> (config model, implementation).

The default registry holds the built-in kinds and whatever installed packages add through
the ``engine.components`` entry-point group (each entry point is a callable taking the
registry). Tests fork it to add or replace kinds without touching the global one.
"""

from __future__ import annotations

import builtins
import difflib
import importlib
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any

from engine.components.base import ComponentConfig, Role

__all__ = ["ComponentSpec", "Registry", "default_registry"]

#: Packages holding the built-in kinds: every module in them defines ``register(registry)``.
BUILTIN_PACKAGES: tuple[str, ...] = (
    "engine.components.sources",
    "engine.components.transforms",
    "engine.components.sinks",
)


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    role: Role
    type: str
    config: builtins.type[ComponentConfig]
    implementation: builtins.type[Any]
    summary: str = ""


class Registry:
    def __init__(self, specs: dict[tuple[Role, str], ComponentSpec] | None = None) -> None:
        self._specs: dict[tuple[Role, str], ComponentSpec] = dict(specs or {})

    def register(
        self,
        config: type[ComponentConfig],
        implementation: type[Any],
        *,
        type: str,
        summary: str = "",
    ) -> None:
        role = config.kind_role
        self._specs[(role, type)] = ComponentSpec(role, type, config, implementation, summary)

    def fork(self) -> Registry:
        """A copy that can be changed without touching this one."""
        return Registry(self._specs)

    def get(self, role: Role, type: str) -> ComponentSpec | None:
        return self._specs.get((role, type))

    def types(self, role: Role) -> list[str]:
        return sorted(t for r, t in self._specs if r is role)

    def suggest(self, role: Role, type: str) -> str | None:
        match = difflib.get_close_matches(type, self.types(role), n=1)
        return match[0] if match else None

    def __iter__(self) -> Iterator[ComponentSpec]:
        return iter(sorted(self._specs.values(), key=lambda s: (s.role.value, s.type)))


def _load_builtins(registry: Registry) -> None:
    for package_name in BUILTIN_PACKAGES:
        package = importlib.import_module(package_name)
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
            if info.name.startswith("_"):
                continue
            module = importlib.import_module(f"{package_name}.{info.name}")
            module.register(registry)


def _load_entry_points(registry: Registry) -> None:
    for ep in entry_points(group="engine.components"):
        hook: Callable[[Registry], None] = ep.load()
        hook(registry)


_default: Registry | None = None


def default_registry() -> Registry:
    global _default
    if _default is None:
        registry = Registry()
        _load_builtins(registry)
        _load_entry_points(registry)
        _default = registry
    return _default
