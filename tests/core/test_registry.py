"""The registry: built-in kinds, forks for tests, and kinds added by installed packages."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import pytest

from engine.components.base import (
    Role,
    Sink,
    SinkConfig,
    Source,
    SourceConfig,
    Transform,
    TransformConfig,
    TransformResult,
)
from engine.components.sinks.stdout import StdoutSink, StdoutSinkConfig
from engine.errors import FatalError, RegistrationError
from engine.records import Batch
from engine.registry import BUILTIN_PACKAGES, Registry, _load_entry_points, default_registry

PLUGIN = '''
from typing import Literal
from engine.components.base import Sink, SinkConfig

class NullSinkConfig(SinkConfig):
    """Discards records."""
    type: Literal["null"] = "null"

class NullSink(Sink[NullSinkConfig]):
    async def write(self, batch):
        pass

def register(registry):
    registry.register(NullSinkConfig, NullSink)
'''


def test_builtin_kinds() -> None:
    reg = default_registry()
    assert {"file", "http", "sql", "sftp", "amqp", "graphql", "webhook"} <= set(
        reg.types(Role.SOURCE)
    )
    assert {"map", "filter", "route"} <= set(reg.types(Role.TRANSFORM))
    assert reg.suggest(Role.SINK, "stdot") == "stdout"


class ConsoleConfig(StdoutSinkConfig):
    """Prints records to the console.

    The rest of the docstring is not part of the summary.
    """

    type: Literal["console"] = "console"  # type: ignore[assignment]


def test_fork_leaves_the_default_alone() -> None:
    fork = default_registry().fork()
    fork.register(ConsoleConfig, StdoutSink)
    assert fork.get(Role.SINK, "console") is not None
    assert default_registry().get(Role.SINK, "console") is None


def test_type_and_summary_come_from_the_model() -> None:
    spec = Registry().register(ConsoleConfig, StdoutSink)
    assert (spec.role, spec.type, spec.summary) == (
        Role.SINK,
        "console",
        "Prints records to the console.",
    )
    for spec in default_registry():
        assert spec.config.model_fields["type"].default == spec.type
        assert spec.summary and "\n" not in spec.summary, spec


class ShoutConfig(TransformConfig):
    """Upper-cases nothing."""

    type: Literal["shout"] = "shout"


class Shout(Transform[ShoutConfig]):
    def process(self, batch: Batch) -> TransformResult:
        return TransformResult({None: batch})


class TapConfig(SourceConfig):
    """Reads nothing."""

    type: Literal["tap"] = "tap"


def test_a_sink_class_for_a_source_config_is_refused_at_registration() -> None:
    with pytest.raises(
        RegistrationError,
        match=r"source 'tap': StdoutSink is a sink; a source "
        r"config needs a Source subclass",
    ):
        Registry().register(TapConfig, StdoutSink)


def test_a_transform_class_for_a_sink_config_is_refused() -> None:
    with pytest.raises(RegistrationError, match="Shout is a transform; a sink config needs a Sink"):
        Registry().register(StdoutSinkConfig, Shout)


def test_an_implementation_taking_another_config_is_refused() -> None:
    class OtherSink(Sink[SinkConfig]):
        async def write(self, batch: Batch) -> None:
            pass

    Registry().register(ConsoleConfig, OtherSink)  # SinkConfig is a base: fine
    with pytest.raises(RegistrationError, match="takes StdoutSinkConfig, not TapConfig"):

        class Wrong(Source[StdoutSinkConfig]):  # type: ignore[type-var]
            async def read(self):  # type: ignore[no-untyped-def]
                yield

        Registry().register(TapConfig, Wrong)


def test_a_config_without_a_type_literal_is_refused() -> None:
    class Loose(SinkConfig):
        type: str = "loose"

    with pytest.raises(RegistrationError, match=r'type: Literal\["name"\]'):
        Registry().register(Loose, StdoutSink)


def test_a_class_that_is_no_component_is_refused() -> None:
    with pytest.raises(RegistrationError, match="is no component class"):
        Registry().register(TapConfig, dict)


def test_registration_errors_are_fatal_engine_errors() -> None:
    assert issubclass(RegistrationError, FatalError)


def test_entry_point_plugin_adds_a_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "engine_null_plugin.py").write_text(PLUGIN)
    dist = tmp_path / "engine_null_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: engine-null-plugin\nVersion: 0.1\n"
    )
    (dist / "entry_points.txt").write_text(
        "[engine.components]\nnull = engine_null_plugin:register\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = Registry()
    _load_entry_points(registry)
    spec = registry.get(Role.SINK, "null")
    assert spec is not None and spec.summary == "Discards records."
    sys.modules.pop("engine_null_plugin", None)


def test_each_builtin_module_registers_the_kind_it_is_named_after() -> None:
    found = {(spec.role, spec.type): spec for spec in default_registry()}
    assert len(found) >= 19
    for (role, type_), spec in found.items():
        module = f"{BUILTIN_PACKAGES[role]}.{type_}"
        assert (spec.config.__module__, spec.implementation.__module__) == (module, module)


def test_a_declared_kind_is_imported_when_asked_for(tmp_path: Path) -> None:
    (tmp_path / "engine_lazy_tap.py").write_text(
        "import sys\n"
        "from tests.core.test_registry import Shout, ShoutConfig\n"
        "def register(registry):\n"
        "    registry.register(ShoutConfig, Shout)\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        registry = Registry()
        registry.add_module(Role.TRANSFORM, "shout", "engine_lazy_tap")
        registry.add_module(Role.SOURCE, "tap", "engine_lazy_tap")
        assert registry.types(Role.TRANSFORM) == ["shout"]
        assert "engine_lazy_tap" not in sys.modules  # listing imports nothing
        fork = registry.fork()
        spec = fork.get(Role.TRANSFORM, "shout")
        assert spec is not None and spec.implementation is Shout
        assert "engine_lazy_tap" in sys.modules
        with pytest.raises(
            RegistrationError, match="engine_lazy_tap does not register the source 'tap'"
        ):
            fork.get(Role.SOURCE, "tap")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("engine_lazy_tap", None)


def test_a_kind_registered_by_hand_wins_over_a_declared_module() -> None:
    registry = Registry()
    registry.add_module(Role.SINK, "stdout", "no.such.module")
    registry.register(StdoutSinkConfig, StdoutSink)
    spec = registry.get(Role.SINK, "stdout")
    assert spec is not None and spec.implementation is StdoutSink
    assert [s.type for s in registry] == ["stdout"]
