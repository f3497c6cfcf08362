"""What the ``engine audit`` commands share: options, consoles, access records, errors.

:mod:`engine.cli.audit` defines the group and registers the commands of
:mod:`engine.cli.audit_proof`, :mod:`engine.cli.audit_compliance` and
:mod:`engine.cli.audit_keys`; all four import from here and never from each other.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
from rich.console import Console

from engine.audit.access import ACCESS_PRODUCER, READ_ACTION, record_access
from engine.audit.system import default_workspace
from engine.audit.wiring import open_resources
from engine.cli.environment import current_settings
from engine.cli.output import format_option
from engine.ledger.events import parse_time
from engine.ledger.keys import HmacKeyring, derive_key_id, load_keyring
from engine.ledger.store import AuditStore, default_store_url
from engine.model.audit import AuditSettings

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


def _store_options(func: _F) -> _F:
    func = click.option(
        "--workspace",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Workspace folder (keys, checkpoints, default store); "
        "default $ENGINE_HOME or ./.engine.",
    )(func)
    func = click.option(
        "--store",
        "store_url",
        default=None,
        metavar="URL",
        help="SQLAlchemy URL of the audit store; default: the workspace's SQLite store.",
    )(func)
    return func


def _format_option(func: _F) -> _F:
    return format_option(help="Output format: text (tables) or json (stdout).")(func)


def _workspace(value: Path | None) -> Path:
    return value if value is not None else default_workspace(current_settings())


def _open_store(store_url: str | None, workspace: Path) -> AuditStore:
    url = store_url or default_store_url(workspace)
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
        AuditSettings(), workspace, store_url=store_url, env=current_settings()
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
    """Given --key values, exactly those; else AUDIT_SECRET_KEY and the workspace keyring."""
    if keys:
        raw = [_read_key(k) for k in keys]
        return HmacKeyring(derive_key_id(raw[0]), {derive_key_id(k): k for k in raw})
    key = current_settings().audit_secret_key
    return load_keyring(workspace, key=key.get_secret_value() if key else None, create=False)
