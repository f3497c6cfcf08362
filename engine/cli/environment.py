"""The settings of one `engine` command: read from the environment once, at start, and
from the ``--env-file`` files a command is given (the real environment wins over them)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
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
    "current_environ",
    "current_settings",
    "env_file_option",
    "fail_config",
    "load_settings",
    "workspace_option",
]

#: the pipeline file or the environment is invalid (EX_CONFIG)
EXIT_INVALID = 78
_ENVIRON = "engine.environ"

_F = TypeVar("_F", bound=Callable[..., Any])
_WORKSPACE = "engine.workspace"

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


def load_settings(environ: Mapping[str, str] | None = None) -> EngineSettings:
    """The environment's settings, or exit 78 naming every variable that does not parse."""
    from engine.settings import EngineSettings

    try:
        return EngineSettings.load(environ)
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


def current_environ() -> Mapping[str, str]:
    """The variables ``${env:...}`` reads: the process environment over the env files."""
    from engine.settings import process_environ

    ctx = click.get_current_context(silent=True)
    found = ctx.find_root().meta.get(_ENVIRON) if ctx is not None else None
    return found if found is not None else process_environ()


def _read_env_files(ctx: click.Context, param: click.Parameter, files: tuple[str, ...]) -> None:
    if not files or ctx.resilient_parsing:  # nothing given, or TAB completion
        return
    from engine.config.dotenv import read_env_file
    from engine.settings import process_environ

    values: dict[str, str] = {}
    try:
        for file in files:
            values.update(read_env_file(file))
    except ConfigError as exc:
        print_diagnostics(exc.diagnostics)
        err_console.print("the env file is invalid; nothing was run", markup=False)
        sys.exit(EXIT_INVALID)
    environ = process_environ(values)
    root = ctx.find_root()
    root.meta[_ENVIRON] = environ
    root.obj = load_settings(environ)
    _apply_workspace(root)


def env_file_option(command: _F) -> _F:
    """``--env-file PATH`` (repeatable): dotenv files under the real environment."""
    return click.option(
        "--env-file",
        multiple=True,
        type=click.Path(dir_okay=False),
        expose_value=False,
        is_eager=True,
        callback=_read_env_files,
        metavar="PATH",
        help="Read variables from a dotenv file (repeatable; later files win, the real "
        "environment wins over all).",
    )(command)


def _apply_workspace(root: click.Context) -> None:
    """``--workspace`` wins over ENGINE_HOME (from the environment or an env file)."""
    from engine.settings import EngineSettings

    workspace = root.meta.get(_WORKSPACE)
    if workspace is None:
        return
    settings = root.obj if isinstance(root.obj, EngineSettings) else load_settings()
    root.obj = settings.model_copy(update={"engine_home": workspace})


def _use_workspace(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is None:  # and nothing imported: TAB completion calls this too
        return
    root = ctx.find_root()
    root.meta[_WORKSPACE] = value
    _apply_workspace(root)


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
