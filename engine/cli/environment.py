"""The settings of one `engine` command: read from the environment once, at start."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from engine.cli.output import err_console, print_diagnostics
from engine.errors import ConfigError, SettingsError

if TYPE_CHECKING:  # read when a command runs, not for `--version` or TAB
    from engine.settings import EngineSettings

__all__ = [
    "EXIT_INVALID",
    "WORKSPACE_HELP",
    "current_settings",
    "fail_config",
    "load_settings",
    "workspace_option",
]

#: the pipeline file or the environment is invalid (EX_CONFIG)
EXIT_INVALID = 78

_F = TypeVar("_F", bound=Callable[..., Any])

WORKSPACE_HELP = (
    "Workspace folder (audit store, keys, checkpoints, state); default: $ENGINE_HOME, "
    "else .engine/ beside the pipeline file, else ./.engine."
)


def fail_config(exc: ConfigError) -> NoReturn:
    """Print every diagnostic of an invalid pipeline file and exit 78."""
    print_diagnostics(exc.diagnostics)
    n = len(exc.errors)
    err_console.print(f"{n} error{'s' if n != 1 else ''}; nothing was run")
    sys.exit(EXIT_INVALID)


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


def _use_workspace(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    """``--workspace`` wins over ENGINE_HOME: the command's settings carry it from here."""
    if value is None:  # and nothing imported: TAB completion calls this too
        return
    from engine.settings import EngineSettings

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
