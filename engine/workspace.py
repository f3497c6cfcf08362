"""The workspace: ``.engine/`` beside the pipeline (or ``$ENGINE_HOME``) holds local state."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["workspace_for"]


def workspace_for(pipeline_file: Path | None) -> Path:
    """Where this pipeline keeps its audit store, keys, checkpoints, cursors and dead letters."""
    home = os.environ.get("ENGINE_HOME")
    if home:
        return Path(home).expanduser()
    base = pipeline_file.resolve().parent if pipeline_file else Path.cwd()
    return base / ".engine"
