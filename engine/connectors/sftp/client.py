"""SFTP connection settings and the connect step, with host keys checked by default."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from engine.connectors.sftp.errors import map_ssh_error
from engine.errors import PermanentError

__all__ = ["SftpEndpoint", "connect"]

log = logging.getLogger("engine.sftp")


class SftpEndpoint(BaseModel):
    """Where the SFTP server is, who logs in, and how its host key is trusted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(description="Server host name or address.")
    port: int = Field(22, ge=1, le=65535, description="Server port.")
    user: str = Field(description="Login user.")
    password: SecretStr | None = Field(
        None, description="Password; use `${env:NAME}`, never a literal."
    )
    private_key: str | None = Field(
        None, description="Path of a private key file (relative to the pipeline file)."
    )
    private_key_passphrase: SecretStr | None = Field(
        None, description="Passphrase of an encrypted `private_key`."
    )
    known_hosts: str | None = Field(
        None,
        description="known_hosts file the server's host key must be listed in; "
        "default: ~/.ssh/known_hosts.",
    )
    host_key_fingerprint: str | None = Field(
        None,
        description="Trust exactly this host key instead (`SHA256:...`, as `ssh-keygen -l` "
        "prints it).",
        examples=["SHA256:Jx3lNkqqqq8x0t6m0ZJ+Fz1mBQ6i0b5K4C9yRpx2xyz"],
    )
    accept_unknown_host_key: bool = Field(
        False,
        description="Skip the host key check (a warning is logged). Only for throwaway test "
        "servers: it allows a man in the middle.",
    )

    def endpoint(self) -> str:
        return f"sftp://{self.user}@{self.host}:{self.port}"


class _FingerprintClient(asyncssh.SSHClient):
    """Trusts the one host key whose SHA-256 fingerprint was configured."""

    def __init__(self, fingerprint: str) -> None:
        self._fingerprint = fingerprint

    def validate_host_public_key(self, host: str, addr: str, port: int, key: Any) -> bool:
        return bool(key.get_fingerprint("sha256") == self._fingerprint)


def _no_listed_keys(host: str, addr: str, port: int | None) -> tuple[list[Any], ...]:
    return [], [], []


def _host_key_options(cfg: SftpEndpoint, resolve: Callable[[str], Path]) -> dict[str, Any]:
    if cfg.accept_unknown_host_key:
        log.warning("sftp %s: host key NOT checked (accept_unknown_host_key)", cfg.endpoint())
        return {"known_hosts": None}
    if cfg.host_key_fingerprint:
        fingerprint = cfg.host_key_fingerprint
        if not fingerprint.startswith("SHA256:"):
            fingerprint = f"SHA256:{fingerprint}"
        return {
            "known_hosts": _no_listed_keys,
            "client_factory": lambda: _FingerprintClient(fingerprint),
        }
    path = resolve(cfg.known_hosts) if cfg.known_hosts else Path("~/.ssh/known_hosts").expanduser()
    if not path.is_file():
        raise PermanentError(
            f"known_hosts file {path} not found: list the server there (ssh-keyscan), or set "
            "host_key_fingerprint"
        )
    return {"known_hosts": str(path)}


async def connect(
    cfg: SftpEndpoint, resolve: Callable[[str], Path], *, timeout: float | None = None
) -> tuple[asyncssh.SSHClientConnection, asyncssh.SFTPClient]:
    """Log in and start SFTP; errors are mapped and never carry the password."""
    options: dict[str, Any] = _host_key_options(cfg, resolve)
    if cfg.password is not None:
        options["password"] = cfg.password.get_secret_value()
    if cfg.private_key is not None:
        options["client_keys"] = [str(resolve(cfg.private_key))]
        if cfg.private_key_passphrase is not None:
            options["passphrase"] = cfg.private_key_passphrase.get_secret_value()
    else:
        options["client_keys"] = None  # no agent or ~/.ssh keys tried behind the user's back
        options["agent_path"] = None
    conn: asyncssh.SSHClientConnection | None = None
    try:
        conn = await asyncssh.connect(
            cfg.host,
            cfg.port,
            username=cfg.user,
            config=None,
            connect_timeout=timeout,
            **options,
        )
        sftp = await conn.start_sftp_client()
    except Exception as exc:
        if conn is not None:
            conn.close()
            await conn.wait_closed()
        raise map_ssh_error(exc, action=f"{cfg.endpoint()}: connect") from None
    return conn, sftp
