"""``engine audit rotate-key``: new current keys for the workspace, old ones kept to verify.

Registered on the ``engine audit`` group by :mod:`engine.cli.audit`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import orjson

from engine.cli.audit_common import (
    _consoles,
    _fail,
    _format_option,
    _record_access,
    _store_options,
    _workspace,
)
from engine.cli.environment import current_settings
from engine.errors import EngineError
from engine.ledger.errors import AuditError
from engine.ledger.keys import KeyKind, KeyRotation, rotate_keys

__all__ = ["register", "rotate_key_cmd"]

_NAMES = {"hmac": "HMAC key", "signing": "checkpoint signing key"}


def register(group: click.Group) -> None:
    group.add_command(rotate_key_cmd)


def _as_dict(rotation: KeyRotation) -> dict[str, Any]:
    return {
        "kind": rotation.kind,
        "old_key_id": rotation.old_id,
        "new_key_id": rotation.new_id,
        "file": str(rotation.path),
    }


@click.command("rotate-key")
@click.option("--hmac", "rotate_hmac", is_flag=True, help="Rotate the HMAC key of the events.")
@click.option(
    "--signing", "rotate_signing", is_flag=True, help="Rotate the Ed25519 key of the checkpoints."
)
@_store_options
@_format_option
def rotate_key_cmd(
    rotate_hmac: bool,
    rotate_signing: bool,
    store_url: str | None,
    workspace: Path | None,
    fmt: str,
) -> None:
    """Replace the workspace's HMAC or signing key (or both); what the old ones signed verifies.

    Name the keys to rotate: --hmac, --signing, or both. The HMAC keyring keeps its old
    keys; the old signing key's public half stays listed in audit-ed25519.pub. Keys set by
    AUDIT_SECRET_KEY or AUDIT_SIGNING_KEY are refused: rotate them where they live. Prints
    the new key ids (never keys) and records the rotation on the audit-access chain.
    """
    chosen: list[tuple[KeyKind, bool]] = [("hmac", rotate_hmac), ("signing", rotate_signing)]
    kinds = [kind for kind, wanted in chosen if wanted]
    if not kinds:
        raise click.UsageError("name the key to rotate: --hmac, --signing, or both")
    ws = _workspace(workspace)
    try:
        env = current_settings()
        from_env: list[KeyKind] = ["hmac"] if env.audit_secret_key else []
        from_env += ["signing"] if env.audit_signing_key else []
        done = rotate_keys(ws, kinds, from_env=from_env)
    except AuditError as exc:
        raise _fail(exc) from exc
    rotated = [_as_dict(r) for r in done]
    if fmt == "json":
        sys.stdout.write(orjson.dumps({"rotated": rotated}).decode() + "\n")
    else:
        for rotation in done:
            _consoles.out.print(
                f"rotated the {_NAMES[rotation.kind]}: {rotation.new_id} is current "
                f"(was {rotation.old_id or 'none'}) in {rotation.path}",
                markup=False,
            )
    try:
        # Recorded after the change, so the event and its checkpoint are signed with the
        # new keys and show that they work.
        _record_access(
            store_url, ws, "rotate-key", {"rotated": rotated}, action="audit_key_rotated"
        )
    except EngineError as exc:
        raise click.ClickException(
            f"the keys are rotated, but recording the rotation on the trail failed: {exc}"
        ) from exc
