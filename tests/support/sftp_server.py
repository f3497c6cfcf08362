"""A real asyncssh SFTP server on 127.0.0.1, in its own thread and event loop, for the tests."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

USER = "alice"
PASSWORD = "s3cret-pw"


class _Server(asyncssh.SSHServer):
    def begin_auth(self, username: str) -> bool:
        return True

    def password_auth_supported(self) -> bool:
        return True

    def validate_password(self, username: str, password: str) -> bool:
        return username == USER and password == PASSWORD


@dataclass
class SftpServer:
    root: Path
    port: int
    host_key: asyncssh.SSHKey
    client_key_path: Path
    known_hosts: Path

    @property
    def fingerprint(self) -> str:
        return str(self.host_key.get_fingerprint("sha256"))


class ServerThread:
    """Starts the server in a background loop; ``stop`` closes it and joins the thread."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._acceptor: asyncssh.SSHAcceptor | None = None

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def start(self) -> SftpServer:
        root = self.folder / "root"
        root.mkdir()
        host_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key = asyncssh.generate_private_key("ssh-ed25519")
        client_key_path = self.folder / "id_ed25519"
        client_key.write_private_key(str(client_key_path))
        self.thread.start()

        async def serve() -> asyncssh.SSHAcceptor:
            return await asyncssh.create_server(
                _Server,
                "127.0.0.1",
                0,
                server_host_keys=[host_key],
                authorized_client_keys=asyncssh.import_authorized_keys(
                    client_key.export_public_key().decode()
                ),
                sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=str(root).encode()),
                allow_scp=False,
            )

        self._acceptor = self._run(serve())
        port = self._acceptor.sockets[0].getsockname()[1]
        known_hosts = self.folder / "known_hosts"
        line = host_key.export_public_key().decode().strip()
        known_hosts.write_text(f"[127.0.0.1]:{port} {line}\n")
        return SftpServer(root, port, host_key, client_key_path, known_hosts)

    def stop(self) -> None:
        async def shutdown() -> None:
            if self._acceptor is not None:
                self._acceptor.close()
                await self._acceptor.wait_closed()

        self._run(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
