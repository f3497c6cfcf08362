"""The registry: built-in kinds, forks for tests, and kinds added by installed packages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine.components.base import Role
from engine.registry import Registry, _load_entry_points, default_registry

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
    registry.register(NullSinkConfig, NullSink, type="null", summary="Discards records.")
'''


def test_builtin_kinds() -> None:
    reg = default_registry()
    assert {"file", "http", "sql", "sftp", "amqp", "graphql", "webhook"} <= set(
        reg.types(Role.SOURCE)
    )
    assert {"map", "filter", "route"} <= set(reg.types(Role.TRANSFORM))
    assert reg.suggest(Role.SINK, "stdot") == "stdout"


def test_fork_leaves_the_default_alone() -> None:
    fork = default_registry().fork()
    spec = fork.get(Role.SINK, "stdout")
    assert spec is not None
    fork.register(spec.config, spec.implementation, type="console")
    assert fork.get(Role.SINK, "console") is not None
    assert default_registry().get(Role.SINK, "console") is None


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
