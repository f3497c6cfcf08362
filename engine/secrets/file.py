"""The ``file`` secrets backend: one Fernet-encrypted JSON file in the workspace.

``secrets.enc`` holds ``{NAME: {key: value}}``, encrypted as a whole. The key is
``ENGINE_SECRETS_KEY`` or the workspace's ``secrets.key``, which must be readable by its owner
only (mode 0600); ``engine secrets set`` makes one when neither exists.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from engine.secrets.base import SecretsContext, SecretsError

__all__ = ["KEY_FILE", "STORE_FILE", "FileSecrets"]

STORE_FILE = "secrets.enc"
KEY_FILE = "secrets.key"


class FileSecrets:
    """Read and change the encrypted secrets file of one workspace."""

    def __init__(self, context: SecretsContext) -> None:
        self.path = context.workspace / STORE_FILE
        self.key_file = context.workspace / KEY_FILE
        env_key = context.settings.engine_secrets_key
        self._env_key = env_key.get_secret_value() if env_key is not None else None

    def get(self, name: str, key: str) -> str | None:
        return self._read().get(name, {}).get(key)

    def names(self) -> dict[str, list[str]]:
        """Each secret's name and its keys, never a value."""
        return {name: sorted(keys) for name, keys in sorted(self._read().items())}

    def set(self, name: str, key: str, value: str) -> None:
        data = self._read()
        data.setdefault(name, {})[key] = value
        self._write(data)

    def remove(self, name: str, key: str | None = None) -> bool:
        """Drop ``NAME:key`` (or all of NAME); False when it was not there."""
        data = self._read()
        keys = data.get(name)
        if keys is None or (key is not None and key not in keys):
            return False
        if key is None or len(keys) == 1:
            del data[name]
        else:
            del keys[key]
        self._write(data)
        return True

    def _read(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        try:
            plain = self._fernet().decrypt(self.path.read_bytes())
        except InvalidToken:
            raise SecretsError(
                f"cannot decrypt {self.path}: it was written with another key "
                f"({self._key_origin()})"
            ) from None
        data: dict[str, dict[str, str]] = json.loads(plain)
        return data

    def _write(self, data: dict[str, dict[str, str]]) -> None:
        token = self._fernet(create=True).encrypt(json.dumps(data, sort_keys=True).encode())
        _write_private(self.path, token)

    def _key_origin(self) -> str:
        return "ENGINE_SECRETS_KEY" if self._env_key is not None else str(self.key_file)

    def _fernet(self, *, create: bool = False) -> Fernet:
        if self._env_key is not None:
            key = self._env_key.encode()
        elif self.key_file.exists():
            mode = stat.S_IMODE(self.key_file.stat().st_mode)
            if mode & 0o077:
                raise SecretsError(
                    f"{self.key_file} may be read by others (mode {mode:04o}); "
                    f"run: chmod 600 {self.key_file}"
                )
            key = self.key_file.read_bytes().strip()
        elif create:
            key = Fernet.generate_key()
            _write_private(self.key_file, key + b"\n")
        else:
            raise SecretsError(
                f"no secrets key: set ENGINE_SECRETS_KEY or create {self.key_file} with "
                "`engine secrets set`"
            )
        try:
            return Fernet(key)
        except ValueError:
            raise SecretsError(
                f"{self._key_origin()} is not a Fernet key (32 bytes, url-safe base64)"
            ) from None


def _write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one step, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file of that name may have had a wider mode
    with os.fdopen(fd, "wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    os.replace(tmp, path)
