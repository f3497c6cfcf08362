"""The workspace: ``.engine/`` beside the pipeline (or ``$ENGINE_HOME``) holds local state."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["base_dir_of", "workspace_for"]


def base_dir_of(pipeline_file: Path | None) -> Path:
    """The folder that a pipeline file's relative paths start from."""
    return pipeline_file.resolve().parent if pipeline_file else Path.cwd()


def workspace_for(pipeline_file: Path | None) -> Path:
    """Where this pipeline keeps its audit store, keys, checkpoints, cursors and dead letters."""
    home = os.environ.get("ENGINE_HOME")
    if home:
        return Path(home).expanduser()
    return base_dir_of(pipeline_file) / ".engine"
