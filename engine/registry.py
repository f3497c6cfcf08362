"""The component kinds: role + ``type`` -> (config model, implementation).

A kind is declared once, on its config model: the ``type`` Literal names it, the first
paragraph of its docstring is its summary and the envelope it subclasses
(:class:`SourceConfig`, :class:`TransformConfig`, :class:`SinkConfig`) is its role.
Registering checks that the implementation plays that role and takes that config.

The default registry holds the built-in kinds and whatever installed packages add through
the ``engine.components`` entry-point group (each entry point is a callable taking the
registry). Tests fork it to add or replace kinds without touching the global one.

A built-in kind is found by its place: the ``T`` of role R lives in the module named ``T``
of R's package (``engine.components.sources.file`` registers the source ``file``). Its module
is imported the first time the kind is asked for, so a run loads only the kinds its pipeline
uses; listing the kinds (:meth:`Registry.types`) imports none, iterating imports all.
"""

from __future__ import annotations

import builtins
import difflib
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, get_args

from engine.codecs.registry import declared_kind
from engine.components.base import ComponentConfig, Role, Sink, Source, Transform
from engine.errors import RegistrationError

__all__ = ["ComponentSpec", "Registry", "default_registry"]

#: Packages holding the built-in kinds: every module in them defines ``register(registry)``
#: and registers the one kind of that role its name names.
BUILTIN_PACKAGES: dict[Role, str] = {
    Role.SOURCE: "engine.components.sources",
    Role.TRANSFORM: "engine.components.transforms",
    Role.SINK: "engine.components.sinks",
}

#: The entry-point group installed packages add component kinds through.
ENTRY_POINT_GROUP = "engine.components"

_IMPLEMENTATIONS: dict[Role, builtins.type[Any]] = {
    Role.SOURCE: Source,
    Role.TRANSFORM: Transform,
    Role.SINK: Sink,
}


@dataclass(frozen=True, slots=True)
class ComponentSpec:
    role: Role
    type: str
    config: builtins.type[ComponentConfig]
    implementation: builtins.type[Any]
    summary: str = ""


class Registry:
    def __init__(
        self,
        specs: dict[tuple[Role, str], ComponentSpec] | None = None,
        modules: dict[tuple[Role, str], str] | None = None,
    ) -> None:
        self._specs: dict[tuple[Role, str], ComponentSpec] = dict(specs or {})
        #: kinds not loaded yet -> the module that registers them (see :meth:`add_module`)
        self._modules: dict[tuple[Role, str], str] = dict(modules or {})

    def register(self, config: type[ComponentConfig], implementation: type[Any]) -> ComponentSpec:
        """Add a kind. Its role, ``type`` and summary come from ``config``; raises
        :class:`RegistrationError` when ``implementation`` is not of that role or takes
        another config."""
        if not (isinstance(config, type) and issubclass(config, ComponentConfig)):
            raise RegistrationError(f"{config!r} is not a component config model")
        role = getattr(config, "kind_role", None)
        if not isinstance(role, Role):
            raise RegistrationError(
                f"{config.__qualname__}: subclass SourceConfig, TransformConfig or SinkConfig"
            )
        type_, summary = declared_kind(config)
        _check_implementation(role, type_, config, implementation)
        spec = ComponentSpec(role, type_, config, implementation, summary)
        self._specs[(role, type_)] = spec
        self._modules.pop((role, type_), None)
        return spec

    def add_module(self, role: Role, type: str, module: str) -> None:
        """Declare a kind that ``module``'s ``register(registry)`` adds, imported the first
        time the kind is asked for."""
        self._modules[(role, type)] = module

    def fork(self) -> Registry:
        """A copy that can be changed without touching this one."""
        return Registry(self._specs, self._modules)

    def get(self, role: Role, type: str) -> ComponentSpec | None:
        spec = self._specs.get((role, type))
        if spec is None and (role, type) in self._modules:
            spec = self._load(role, type)
        return spec

    def types(self, role: Role) -> list[str]:
        return sorted({t for r, t in self._specs if r is role} | self._declared(role))

    def _declared(self, role: Role) -> set[str]:
        return {t for r, t in self._modules if r is role}

    def _load(self, role: Role, type: str) -> ComponentSpec:
        name = self._modules[(role, type)]
        importlib.import_module(name).register(self)
        spec = self._specs.get((role, type))
        if spec is None:
            raise RegistrationError(f"{name} does not register the {role.value} {type!r}")
        return spec

    def suggest(self, role: Role, type: str) -> str | None:
        match = difflib.get_close_matches(type, self.types(role), n=1)
        return match[0] if match else None

    def __iter__(self) -> Iterator[ComponentSpec]:
        for role, type_ in list(self._modules):
            if (role, type_) in self._modules:  # a module may register several kinds
                self._load(role, type_)
        return iter(sorted(self._specs.values(), key=lambda s: (s.role.value, s.type)))


def _check_implementation(
    role: Role, type_: str, config: type[ComponentConfig], implementation: type[Any]
) -> None:
    """The implementation subclasses the role's base class and takes ``config`` (or a base
    of it) as its type parameter."""
    base = _IMPLEMENTATIONS[role]
    if not (isinstance(implementation, type) and issubclass(implementation, base)):
        plays = [r.value for r, b in _IMPLEMENTATIONS.items() if _is_sub(implementation, b)]
        what = f"a {plays[0]}" if plays else "no component class"
        raise RegistrationError(
            f"{role.value} {type_!r}: {getattr(implementation, '__qualname__', implementation)}"
            f" is {what}; a {role.value} config needs a {base.__name__} subclass"
        )
    if inspect.isabstract(implementation):
        raise RegistrationError(
            f"{role.value} {type_!r}: {implementation.__qualname__} does not implement "
            f"{', '.join(sorted(implementation.__abstractmethods__))}"
        )
    taken = _config_parameter(implementation)
    if taken is not None and not issubclass(config, taken):
        raise RegistrationError(
            f"{role.value} {type_!r}: {implementation.__qualname__} takes "
            f"{taken.__qualname__}, not {config.__qualname__}"
        )


def _is_sub(cls: object, base: type[Any]) -> bool:
    return isinstance(cls, type) and issubclass(cls, base)


def _config_parameter(implementation: type[Any]) -> type[ComponentConfig] | None:
    """The config class an implementation declares, as in ``Sink[StdoutSinkConfig]``."""
    for klass in implementation.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            for arg in get_args(base):
                if isinstance(arg, type) and issubclass(arg, ComponentConfig):
                    return arg
    return None


def _load_builtins(registry: Registry) -> None:
    """Declare the built-in kinds; their modules are imported when a kind is asked for."""
    for role, package_name in BUILTIN_PACKAGES.items():
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                registry.add_module(role, info.name, f"{package_name}.{info.name}")


def _load_entry_points(registry: Registry) -> None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
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
