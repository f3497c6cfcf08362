"""The settings of one `engine` command: read from the environment once, at start."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from engine.cli.output import err_console
from engine.errors import SettingsError

if TYPE_CHECKING:  # read when a command runs, not for `--version` or TAB
    from engine.settings import EngineSettings

__all__ = ["EXIT_INVALID", "current_settings", "load_settings"]

#: the pipeline file or the environment is invalid (EX_CONFIG)
EXIT_INVALID = 78


def load_settings() -> EngineSettings:
    """The environment's settings, or exit 78 naming every variable that does not parse."""
    from engine.settings import EngineSettings

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
    from engine.settings import EngineSettings

    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    if root is not None and isinstance(root.obj, EngineSettings):
        return root.obj
    settings = load_settings()
    if root is not None:
        root.obj = settings
    return settings
