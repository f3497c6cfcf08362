"""The workspace: ``.engine/`` beside the pipeline (or ``$ENGINE_HOME``) holds local state."""

from __future__ import annotations

from pathlib import Path

from engine.settings import EngineSettings

__all__ = ["base_dir_of", "workspace_for"]


def base_dir_of(pipeline_file: Path | None) -> Path:
    """The folder that a pipeline file's relative paths start from."""
    return pipeline_file.resolve().parent if pipeline_file else Path.cwd()


def workspace_for(pipeline_file: Path | None, settings: EngineSettings) -> Path:
    """Where this pipeline keeps its audit store, keys, checkpoints, cursors and dead letters."""
    if settings.engine_home is not None:
        return settings.engine_home.expanduser()
    return base_dir_of(pipeline_file) / ".engine"
