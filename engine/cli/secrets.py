"""`engine secrets`: the encrypted secrets file that ``${secret:NAME:key}`` reads."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from engine.audit.system import default_workspace
from engine.cli.environment import current_settings, env_file_option
from engine.cli.output import err_console, format_option
from engine.secrets import SecretsContext, SecretsError
from engine.secrets.file import FileSecrets
from engine.workspace import workspace_for

__all__ = ["secrets"]

_F = TypeVar("_F", bound=Callable[..., Any])


def _store(workspace: Path | None, pipeline: Path | None) -> FileSecrets:
    settings = current_settings()
    if workspace is None:
        # the pipeline's own workspace (where its runs read secrets), else the audit default
        workspace = workspace_for(pipeline, settings) if pipeline else default_workspace(settings)
    return FileSecrets(SecretsContext(workspace, settings, {}))


def _where(command: _F) -> _F:
    command = env_file_option(command)  # ENGINE_SECRETS_KEY or ENGINE_HOME from a dotenv file
    command = click.option(
        "--pipeline",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Use the workspace of this pipeline file (where its runs read secrets).",
    )(command)
    return click.option(
        "--workspace",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Workspace folder; default: $ENGINE_HOME, else ./.engine.",
    )(command)


def _said(fmt: str, text: str, **fields: object) -> None:
    """One confirmation: a line on stderr, or a JSON object on stdout (no value, ever)."""
    if fmt == "json":
        sys.stdout.write(json.dumps(fields) + "\n")
    else:
        err_console.print(text, markup=False)


def _fail(exc: SecretsError) -> None:
    err_console.print(f"error: {exc}", markup=False, soft_wrap=True)
    sys.exit(1)


@click.group("secrets")
def secrets() -> None:
    """Secrets for ${secret:NAME:key}, kept encrypted in the workspace (the `file` backend).

    The key is ENGINE_SECRETS_KEY, else the workspace's secrets.key (mode 0600), made by the
    first `set`. Values are never printed.
    """


@secrets.command("set")
@click.argument("name")
@click.argument("key")
@_where
@format_option(help="Confirmation format: text (stderr) or json (stdout).")
def set_cmd(name: str, key: str, workspace: Path | None, pipeline: Path | None, fmt: str) -> None:
    """Store NAME:KEY; the value is read from stdin (prompted for, unechoed, on a terminal)."""
    stdin = sys.stdin
    if stdin.isatty():
        value = str(click.prompt(f"value of {name}:{key}", hide_input=True, err=True))
    else:
        value = stdin.read()
        value = value[:-1].removesuffix("\r") if value.endswith("\n") else value
    if not value:
        err_console.print("error: the value read from stdin is empty; nothing saved")
        sys.exit(2)
    store = _store(workspace, pipeline)
    try:
        store.set(name, key, value)
    except SecretsError as exc:
        _fail(exc)
    _said(fmt, f"secret {name}:{key} saved in {store.path}", saved=True, file=str(store.path))


@secrets.command("list")
@format_option(help="text (NAME: keys) or json ({NAME: [keys]}).")
@_where
def list_cmd(fmt: str, workspace: Path | None, pipeline: Path | None) -> None:
    """Names and keys of the stored secrets (never their values)."""
    try:
        names = _store(workspace, pipeline).names()
    except SecretsError as exc:
        _fail(exc)
    if fmt == "json":
        sys.stdout.write(json.dumps(names, indent=2) + "\n")
        return
    for name, keys in names.items():
        click.echo(f"{name}: {', '.join(keys)}")


@secrets.command("rm")
@click.argument("name")
@click.argument("key", required=False)
@_where
@format_option(help="Confirmation format: text (stderr) or json (stdout).")
def rm_cmd(
    name: str, key: str | None, workspace: Path | None, pipeline: Path | None, fmt: str
) -> None:
    """Remove NAME:KEY, or every key of NAME (exit 1 when there is no such secret)."""
    label = f"{name}:{key}" if key else name
    try:
        removed = _store(workspace, pipeline).remove(name, key)
    except SecretsError as exc:
        _fail(exc)
    if not removed:
        _said(fmt, f"no secret {label}", removed=False)
        sys.exit(1)
    _said(fmt, f"secret {label} removed", removed=True)
