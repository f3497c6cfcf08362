"""What the ``engine audit`` commands share: options, consoles, access records, errors.

:mod:`engine.cli.audit` defines the group and registers the commands of
:mod:`engine.cli.audit_proof`, :mod:`engine.cli.audit_compliance` and
:mod:`engine.cli.audit_keys`; all four import from here and never from each other.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import click
from rich.console import Console

from engine.audit.access import ACCESS_PRODUCER, READ_ACTION, record_access
from engine.audit.wiring import open_resources
from engine.cli.environment import (
    WORKSPACE_HELP,
    current_environ,
    current_settings,
    env_file_option,
    fail_config,
)
from engine.cli.output import format_option
from engine.compliance.runs import running_run_ids
from engine.errors import ConfigError
from engine.ledger.events import parse_time
from engine.ledger.keys import HmacKeyring, derive_key_id, load_keyring
from engine.ledger.store import AuditStore, default_store_url
from engine.model.audit import AuditSettings
from engine.model.state import StateSettings
from engine.workspace import workspace_for

__all__ = [
    "ACCESS_PRODUCER",
    "EXIT_INTACT",
    "EXIT_TAMPERED",
    "EXIT_UNVERIFIABLE",
]

EXIT_INTACT = 0
EXIT_TAMPERED = 1
EXIT_UNVERIFIABLE = 3
_KEY_HINT = (
    "set AUDIT_SECRET_KEY (or the pipeline's [audit] key and previous_keys) to the keys "
    "that signed the trail, or pass them with --key"
)

_F = TypeVar("_F", bound=Callable[..., Any])


class _Consoles:
    """Created on use, so output follows the current stdout and terminal width."""

    @property
    def out(self) -> Console:
        return Console(highlight=False, soft_wrap=True, markup=False)

    @property
    def err(self) -> Console:
        return Console(stderr=True, highlight=False, soft_wrap=True, markup=False)


_consoles = _Consoles()


@dataclass(frozen=True)
class _Trail:
    """Where the trail of the pipeline file given on the command line is."""

    file: Path
    audit: AuditSettings
    state: StateSettings


_TRAIL = "engine.audit.trail"
_FILE_HELP = (
    "The pipeline file whose trail to read: its [audit] store, key and checkpoint folder, in "
    "its workspace (.engine/ beside it unless --workspace or ENGINE_HOME say otherwise)."
)


def _use_pipeline(file: Path | None) -> None:
    """Remember the pipeline file's [audit] settings for this command (exit 78 if invalid)."""
    if file is None:
        return
    from engine.pipeline import compile_file

    try:
        plan = compile_file(file, env=current_environ())
    except ConfigError as exc:
        fail_config(exc)
    click.get_current_context().meta[_TRAIL] = _Trail(file, plan.spec.audit, plan.spec.state)


def _trail() -> _Trail | None:
    ctx = click.get_current_context(silent=True)
    found = ctx.meta.get(_TRAIL) if ctx is not None else None
    return found if isinstance(found, _Trail) else None


def _store_options(func: _F, *, pipeline: str = "argument") -> _F:
    """--workspace, --store and the pipeline file: an optional FILE argument (``argument``),
    ``--pipeline FILE`` (``option``, for commands with arguments of their own) or the
    command's own ``pipeline_file`` argument (``given``)."""

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        if pipeline == "given":
            _use_pipeline(kwargs["pipeline_file"])
        else:
            _use_pipeline(kwargs.pop("pipeline_file"))
        return func(*args, **kwargs)

    wrapped: Any = command
    wrapped = click.option(
        "--workspace",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=WORKSPACE_HELP,
    )(wrapped)
    wrapped = click.option(
        "--store",
        "store_url",
        default=None,
        metavar="URL",
        help="SQLAlchemy URL of the audit store; default: the pipeline's [audit] store, else "
        "the workspace's SQLite store.",
    )(wrapped)
    wrapped = env_file_option(wrapped)
    file_type = click.Path(exists=True, dir_okay=False, path_type=Path)
    if pipeline == "argument":
        wrapped = click.argument("pipeline_file", metavar="[FILE]", required=False, type=file_type)(
            wrapped
        )
    elif pipeline == "option":
        wrapped = click.option(
            "--pipeline", "pipeline_file", type=file_type, default=None, help=_FILE_HELP
        )(wrapped)
    return cast(_F, wrapped)


def _format_option(func: _F) -> _F:
    return format_option(help="Output format: text (tables) or json (stdout).")(func)


def _workspace(value: Path | None) -> Path:
    """``--workspace``, else $ENGINE_HOME, else .engine/ beside the pipeline file given,
    else ./.engine (the rule of :mod:`engine.workspace`)."""
    trail = _trail()
    return workspace_for(trail.file if trail else None, current_settings(), value)


def _audit_settings() -> AuditSettings:
    """The [audit] table of the pipeline file given (defaults without one)."""
    trail = _trail()
    return trail.audit if trail else AuditSettings()


def _checkpoint_dir(workspace: Path) -> Path:
    """The pipeline's [audit] checkpoint folder, else the workspace's checkpoints/."""
    folder = _audit_settings().checkpoint
    return Path(folder) if folder else workspace / "checkpoints"


def _running_run_ids(workspace: Path) -> set[str]:
    """Ids of the runs holding a live lease: in the pipeline's state store when a pipeline
    file was given, else in the workspace's state database."""
    trail = _trail()
    if trail is None:
        return running_run_ids(workspace)
    from engine.runtime.history import open_state
    from engine.runtime.lease import live_leases

    store = open_state(trail.state, workspace, pipeline_file=trail.file, read_only=True)
    try:
        return {lease.run_id for lease in live_leases(store)}
    finally:
        store.close()


def _open_store(store_url: str | None, workspace: Path) -> AuditStore:
    url = store_url or _audit_settings().store or default_store_url(workspace)
    return AuditStore(url, create=False)


def _record_access(
    store_url: str | None,
    workspace: Path,
    operation: str,
    details: dict[str, Any],
    *,
    action: str = READ_ACTION,
) -> None:
    """Reading the trail (or, by ``action``, changing its keys) is itself a SECURITY event,
    recorded where the Python API records its reads (:func:`engine.audit.access.record_access`)."""
    resources = open_resources(
        _audit_settings(), workspace, store_url=store_url, env=current_settings()
    )
    try:
        record_access(resources, operation, details, actor="cli", action=action)
    finally:
        resources.close()


def _fail(exc: BaseException) -> click.ClickException:
    return click.ClickException(str(exc))


_RELATIVE = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _when(value: str | None) -> datetime | None:
    """ISO 8601 time, or a duration ago such as 30m, 24h, 7d."""
    if value is None:
        return None
    match = _RELATIVE.match(value.strip())
    if match:
        delta = timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
        return datetime.now(UTC) - delta
    try:
        return parse_time(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r}: use ISO 8601 (2024-01-15T10:30:00Z) or a duration like 24h or 7d"
        ) from None


def _read_key(value: str) -> bytes:
    if value.startswith("@"):
        try:
            return Path(value[1:]).read_text().strip().encode()
        except OSError as exc:
            raise click.BadParameter(f"cannot read key file {value[1:]}: {exc}") from None
    return value.encode()


def _keyring(workspace: Path, keys: Sequence[str]) -> HmacKeyring:
    """Given --key values, exactly those; else the pipeline's [audit] key (and previous
    keys), else AUDIT_SECRET_KEY, and the workspace keyring."""
    if keys:
        raw = [_read_key(k) for k in keys]
        return HmacKeyring(derive_key_id(raw[0]), {derive_key_id(k): k for k in raw})
    audit = _audit_settings()
    key = audit.key or current_settings().audit_secret_key
    return load_keyring(
        workspace,
        key=key.get_secret_value() if key else None,
        key_id=audit.key_id,
        previous=[k.get_secret_value() for k in audit.previous_keys],
        create=False,
    )
