"""The SFTP connect step, with host keys checked by default, and the session it opens."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncssh

from engine.connectors.sftp.errors import map_ssh_error
from engine.connectors.sftp.settings import SftpEndpoint
from engine.errors import PermanentError

__all__ = ["SftpSession", "connect", "replace"]

log = logging.getLogger("engine.sftp")


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
    if cfg.known_hosts and _is_known_hosts_text(cfg.known_hosts, resolve):
        try:
            return {"known_hosts": asyncssh.import_known_hosts(cfg.known_hosts)}
        except (ValueError, asyncssh.Error):
            raise PermanentError(f"{cfg.endpoint()}: known_hosts lines do not parse") from None
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
        options["client_keys"] = [_client_key(cfg, resolve)]
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


def _is_known_hosts_text(value: str, resolve: Callable[[str], Path]) -> bool:
    """known_hosts lines rather than a path: several lines, or `host keytype key` that is
    not the name of a file."""
    return "\n" in value or (len(value.split()) >= 3 and not resolve(value).exists())


def _client_key(cfg: SftpEndpoint, resolve: Callable[[str], Path]) -> str | asyncssh.SSHKey:
    """The private key: read from the key text itself, else the path of its file."""
    assert cfg.private_key is not None
    value = cfg.private_key.get_secret_value()
    if "\n" not in value and not value.lstrip().startswith("-----BEGIN"):
        return str(resolve(value))
    passphrase = cfg.private_key_passphrase
    try:
        return asyncssh.import_private_key(
            value, passphrase.get_secret_value() if passphrase is not None else None
        )
    except (ValueError, asyncssh.Error) as exc:  # the message names the format, not the key
        reason = type(exc).__name__
        raise PermanentError(
            f"{cfg.endpoint()}: the private key does not load ({reason})"
        ) from None


class SftpSession:
    """One login: the SSH connection and its SFTP channel, opened and closed together."""

    def __init__(self) -> None:
        self._conn: asyncssh.SSHClientConnection | None = None
        self.sftp: asyncssh.SFTPClient | None = None

    async def open(
        self, cfg: SftpEndpoint, resolve: Callable[[str], Path], *, timeout: float | None = None
    ) -> asyncssh.SFTPClient:
        self._conn, self.sftp = await connect(cfg, resolve, timeout=timeout)
        return self.sftp

    async def close(self) -> None:
        if self.sftp is not None:
            self.sftp.exit()
            await self.sftp.wait_closed()
            self.sftp = None
        if self._conn is not None:
            self._conn.close()
            await self._conn.wait_closed()
            self._conn = None


async def replace(sftp: asyncssh.SFTPClient, src: str, dst: str) -> None:
    """Rename, replacing ``dst``: POSIX rename where the server offers it."""
    try:
        await sftp.posix_rename(src, dst)
    except asyncssh.SFTPOpUnsupported:  # pragma: no cover - servers without the extension
        if await sftp.exists(dst):
            await sftp.remove(dst)
        await sftp.rename(src, dst)
