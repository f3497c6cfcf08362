"""``engine audit prove|prove-consistency|verify-proof``: proofs checkable offline.

Registered on the ``engine audit`` group by :mod:`engine.cli.audit`.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import orjson

from engine.cli.audit_common import (
    _F,
    _audit_settings,
    _checkpoint_dir,
    _consoles,
    _fail,
    _format_option,
    _open_store,
    _record_access,
    _store_options,
    _workspace,
)
from engine.cli.environment import current_settings
from engine.errors import EngineError
from engine.ledger.checkpoint import Checkpoint, load_checkpoints, read_checkpoint
from engine.ledger.errors import AuditError
from engine.ledger.keys import PublicKeys, SigningKey, load_public_keys, load_signing_key
from engine.ledger.proof import build_consistency_proof, build_proof, check_proof

__all__ = ["prove_cmd", "prove_consistency_cmd", "register", "verify_proof_cmd"]


def register(group: click.Group) -> None:
    for command in (prove_cmd, prove_consistency_cmd, verify_proof_cmd):
        group.add_command(command)


def _proof_options(func: _F) -> _F:
    func = click.option(
        "--output",
        "-o",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Write the proof here instead of standard output.",
    )(func)
    func = click.option(
        "--checkpoint",
        "checkpoints",
        multiple=True,
        type=click.Path(path_type=Path),
        help="Checkpoint file or folder; default: the workspace's checkpoints/.",
    )(func)
    return _store_options(func, pipeline="option")


def _signing_key(workspace: Path) -> SigningKey | None:
    """The pipeline's [audit] signing_key, else AUDIT_SIGNING_KEY, else the workspace's key
    file (None when there is none)."""
    own = _audit_settings().signing_key
    key = own or current_settings().audit_signing_key
    return load_signing_key(
        workspace,
        key=key.get_secret_value() if key else None,
        create=False,
        source="[audit] signing_key" if own else "AUDIT_SIGNING_KEY",
    )


def _write_proof(proof: dict[str, Any], output: Path | None) -> None:
    text = orjson.dumps(proof, option=orjson.OPT_INDENT_2).decode() + "\n"
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise click.ClickException(f"cannot write {output}: {exc}") from exc
    _consoles.err.print(f"proof written to {output}", markup=False)


@click.command("prove")
@click.argument("event_id")
@_proof_options
def prove_cmd(
    event_id: str,
    store_url: str | None,
    workspace: Path | None,
    checkpoints: tuple[Path, ...],
    output: Path | None,
) -> None:
    """Print an inclusion proof of EVENT_ID, checkable offline with `verify-proof`."""
    ws = _workspace(workspace)
    cp_dir = _checkpoint_dir(ws)
    try:
        signing = _signing_key(ws)
        pubs = load_public_keys(ws, signing=signing)
        found = load_checkpoints(list(checkpoints) or [cp_dir])
        with _open_store(store_url, ws) as store:
            proof = build_proof(
                store, event_id, found, pubs, signing=signing, checkpoint_dir=cp_dir
            )
        _record_access(store_url, ws, "prove", {"event_id": event_id})
    except EngineError as exc:
        raise _fail(exc) from exc
    _write_proof(proof, output)


def _checkpoint_ref(_ctx: Any, _param: Any, value: str | None) -> Path | int | None:
    """A checkpoint file, or the tree size of one in the checkpoint folder."""
    if value is None:
        return None
    if Path(value).is_file():
        return Path(value)
    if value.isdigit():
        return int(value)
    raise click.BadParameter(f"{value!r} is neither a checkpoint file nor a tree size")


def _pick_checkpoint(
    ref: Path | int,
    producer: str | None,
    found: list[Checkpoint],
    pubs: PublicKeys,
    what: str,
    where: Sequence[Path],
) -> Checkpoint:
    """The checkpoint named by a file, or by its tree size among ``found`` (read from ``where``)."""
    if isinstance(ref, Path):
        checkpoint = read_checkpoint(ref)
        if producer is not None and checkpoint.producer != producer:
            raise click.UsageError(
                f"{what} {ref} is a checkpoint of {checkpoint.producer}, not {producer}"
            )
        return checkpoint
    if producer is None:
        raise click.UsageError(f"{what} is a tree size ({ref}): name the chain with --producer")
    same = [c for c in found if c.producer == producer and c.tree_size == ref]
    if not same:
        folders = ", ".join(str(p) for p in where)
        raise AuditError(f"{what}: no checkpoint of {producer} at tree size {ref} in {folders}")
    return next((c for c in same if c.signature_valid(pubs)), same[0])


@click.command("prove-consistency")
@click.argument("old", metavar="OLD", callback=_checkpoint_ref)
@click.option(
    "--to",
    "new",
    metavar="CHECKPOINT|SIZE",
    callback=_checkpoint_ref,
    help="The newer checkpoint, a file or a tree size; default: the chain's newest "
    "checkpoint, or a new one of its head when that one is behind (needs the signing key).",
)
@click.option(
    "--producer",
    "--chain",
    "producer",
    default=None,
    metavar="NAME",
    help="Chain, e.g. pipeline:inventory-sync; needed when OLD is a tree size.",
)
@_proof_options
def prove_consistency_cmd(
    old: Path | int,
    new: Path | int | None,
    producer: str | None,
    store_url: str | None,
    workspace: Path | None,
    checkpoints: tuple[Path, ...],
    output: Path | None,
) -> None:
    """Print a proof that checkpoint OLD is a prefix of a newer one of its chain.

    OLD is a checkpoint file or, with --producer, a tree size. The proof holds both signed
    checkpoints and shows, offline with `verify-proof`, that the chain only grew.
    """
    ws = _workspace(workspace)
    cp_dir = _checkpoint_dir(ws)
    try:
        signing = _signing_key(ws)
        pubs = load_public_keys(ws, signing=signing)
        where = list(checkpoints) or [cp_dir]
        found = load_checkpoints(where)
        older = _pick_checkpoint(old, producer, found, pubs, "OLD", where)
        newer = None
        if new is not None:
            newer = _pick_checkpoint(new, older.producer, found, pubs, "--to", where)
        with _open_store(store_url, ws) as store:
            proof = build_consistency_proof(
                store, older, found, pubs, new=newer, signing=signing, checkpoint_dir=cp_dir
            )
        sizes = {k: proof[k]["checkpoint"]["tree_size"] for k in ("old", "new")}
        _record_access(
            store_url,
            ws,
            "prove-consistency",
            {"producer": older.producer, "old_size": sizes["old"], "new_size": sizes["new"]},
        )
    except EngineError as exc:
        raise _fail(exc) from exc
    _write_proof(proof, output)


@click.command("verify-proof")
@click.argument("proof_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--public-key",
    "public_keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Pin the checkpoint key (base64 or PEM file; repeatable); else the keys inside "
    "the proof are used.",
)
@_format_option
def verify_proof_cmd(proof_file: Path, public_keys: tuple[Path, ...], fmt: str) -> None:
    """Check a proof from `prove` or `prove-consistency` offline, with no store or HMAC key."""
    try:
        data = orjson.loads(proof_file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise click.ClickException(f"cannot read {proof_file}: {exc}") from exc
    pinned: PublicKeys | None = None
    if public_keys:
        try:
            pinned = load_public_keys(Path("/nonexistent"), files=public_keys)
        except AuditError as exc:
            raise _fail(exc) from exc
    result = check_proof(data if isinstance(data, dict) else {}, pinned)
    if fmt == "json":
        verdict = {"valid": result.ok, "message": result.message, "key_pinned": result.key_pinned}
        sys.stdout.write(orjson.dumps(verdict).decode() + "\n")
        sys.exit(0 if result.ok else 1)
    if result.ok:
        _consoles.out.print(f"[green]valid[/green]: {result.message}", markup=True)
        if not result.key_pinned:
            _consoles.err.print(
                "note: checked against the public key inside the proof; pass --public-key "
                "to pin the key you trust",
                markup=False,
            )
        sys.exit(0)
    _consoles.out.print(f"[red]invalid[/red]: {result.message}", markup=True)
    sys.exit(1)
