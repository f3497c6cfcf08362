"""The settings of one `engine` command: read from the environment once, at start."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from engine.cli.output import EXIT_INVALID, err_console
from engine.settings import EngineSettings, SettingsError

__all__ = ["EXIT_INVALID", "current_settings", "load_settings", "workspace_option"]

_F = TypeVar("_F", bound=Callable[..., Any])

WORKSPACE_HELP = (
    "Workspace folder (audit store, keys, checkpoints, state); default: $ENGINE_HOME, "
    "else .engine/ beside the pipeline file, else ./.engine."
)


def load_settings() -> EngineSettings:
    """The environment's settings, or exit 78 naming every variable that does not parse."""
    try:
        return EngineSettings.load()
    except SettingsError as exc:
        for problem in exc.problems:
            err_console.print(f"error: {problem}", markup=False, soft_wrap=True)
        n = len(exc.problems)
        err_console.print(
            f"{n} invalid environment variable{'s' if n != 1 else ''}; nothing was run "
            "(see docs/settings.md)",
            markup=False,
        )
        sys.exit(EXIT_INVALID)


def current_settings() -> EngineSettings:
    """The settings of the command being run (kept on its root click context)."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    if root is not None and isinstance(root.obj, EngineSettings):
        return root.obj
    settings = load_settings()
    if root is not None:
        root.obj = settings
    return settings


def _use_workspace(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    """``--workspace`` wins over ENGINE_HOME: the command's settings carry it from here."""
    if value is None:
        return
    root = ctx.find_root()
    settings = root.obj if isinstance(root.obj, EngineSettings) else load_settings()
    root.obj = settings.model_copy(update={"engine_home": value})


def workspace_option(func: _F) -> _F:
    """``--workspace DIR``: the first rule of :mod:`engine.workspace`, for any command."""
    return click.option(
        "--workspace",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_use_workspace,
        help=WORKSPACE_HELP,
    )(func)
