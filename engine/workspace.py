"""The workspace: the folder that holds what the engine keeps locally (audit store, keys,
checkpoints, the state database, dead letters).

One rule, for every command and for the Python API, first match wins:

1. ``--workspace DIR`` on the command line (``workspace=`` in the Python API);
2. ``$ENGINE_HOME``;
3. ``.engine/`` beside the pipeline file given;
4. ``./.engine`` (no pipeline file given).
"""

from __future__ import annotations

from pathlib import Path

from engine.settings import EngineSettings

__all__ = ["base_dir_of", "workspace_for"]


def base_dir_of(pipeline_file: Path | None) -> Path:
    """The folder that a pipeline file's relative paths start from."""
    return pipeline_file.resolve().parent if pipeline_file else Path.cwd()


def workspace_for(
    pipeline_file: Path | None, settings: EngineSettings, explicit: Path | None = None
) -> Path:
    """Where this pipeline keeps its audit store, keys, checkpoints, cursors and dead letters
    (the rule above; ``explicit`` is ``--workspace``)."""
    if explicit is not None:
        return explicit.expanduser()
    if settings.engine_home is not None:
        return settings.engine_home.expanduser()
    return base_dir_of(pipeline_file) / ".engine"
