"""Keys of the trail: the HMAC keyring (with rotation) and the Ed25519 checkpoint key.

Resolution order for both: the pipeline's ``[audit]`` setting, then the environment
(``AUDIT_SECRET_KEY`` / ``AUDIT_SIGNING_KEY``), then a key file in the workspace, which
the first run generates with mode 0600 and names in a log line.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import logging
import os
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from engine.audit.errors import AuditKeyError

__all__ = [
    "HMAC_KEYRING_FILE",
    "SIGNING_KEY_FILE",
    "SIGNING_PUBLIC_FILE",
    "HmacKeyring",
    "PublicKeys",
    "SigningKey",
    "derive_key_id",
    "hmac_sha256",
    "load_keyring",
    "load_public_keys",
    "load_signing_key",
    "public_key_from_b64",
    "rotate_hmac_key",
    "write_private_file",
]

log = logging.getLogger("engine.audit")

HMAC_KEYRING_FILE = "audit-hmac.keys"
SIGNING_KEY_FILE = "audit-ed25519.key"
SIGNING_PUBLIC_FILE = "audit-ed25519.pub"


def derive_key_id(key: bytes) -> str:
    """A stable, non-secret name for an HMAC key (the MACs already commit to the key)."""
    return "k-" + hmac.new(key, b"engine-audit key id", hashlib.sha256).hexdigest()[:12]


def write_private_file(path: Path, data: bytes) -> bool:
    """Create ``path`` with mode 0600 unless it exists; True when this call created it.

    Written to a temporary file and hard-linked into place, so two processes racing to
    generate a key agree on one and nobody reads a half-written file.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError:
            # No hard links here (some network or FUSE file systems): exclusive create.
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return False
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        return True
    except OSError as exc:
        raise AuditKeyError(f"cannot write key file {path}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


_BLOCK = 64  # SHA-256's block size
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def hmac_sha256(key: bytes) -> Callable[[bytes], bytes]:
    """HMAC-SHA256 under ``key`` as a function of the message (RFC 2104).

    The padded key's two SHA-256 states are computed once and copied per message, which
    halves the cost of ``hmac.digest`` for the short messages of the trail.
    """
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    padded = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(padded.translate(_IPAD))
    outer = hashlib.sha256(padded.translate(_OPAD))

    def mac(message: bytes) -> bytes:
        i = inner.copy()
        i.update(message)
        o = outer.copy()
        o.update(i.digest())
        return o.digest()

    return mac


@dataclass(frozen=True)
class HmacKeyring:
    """The current signing key plus every older key that must still verify."""

    current_id: str
    keys: Mapping[str, bytes] = field(repr=False)

    @property
    def current(self) -> bytes:
        return self.keys[self.current_id]

    def candidates(self, key_id: str) -> list[bytes]:
        """Keys to try for an event naming ``key_id``: that key if known, else all."""
        key = self.keys.get(key_id)
        return [key] if key is not None else list(self.keys.values())

    def with_keys(self, extra: Iterable[bytes]) -> HmacKeyring:
        keys = dict(self.keys)
        for key in extra:
            keys.setdefault(derive_key_id(key), key)
        return HmacKeyring(self.current_id, keys)


def _read_keyring_file(path: Path) -> tuple[str, dict[str, bytes]]:
    try:
        data = json.loads(path.read_text())
        keys = {str(k): bytes.fromhex(v) for k, v in data["keys"].items()}
        current = str(data["current"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AuditKeyError(f"cannot read the audit keyring {path}: {exc}") from exc
    if current not in keys:
        raise AuditKeyError(f"audit keyring {path}: current key {current!r} is not in it")
    return current, keys


def _keyring_bytes(current: str, keys: Mapping[str, bytes]) -> bytes:
    body = {"current": current, "keys": {k: v.hex() for k, v in keys.items()}}
    return json.dumps(body, indent=2).encode() + b"\n"


def load_keyring(
    workspace: Path,
    *,
    key: str | None = None,
    key_id: str | None = None,
    previous: Iterable[str] = (),
    create: bool = True,
) -> HmacKeyring:
    """The HMAC keyring: ``key``, else ``AUDIT_SECRET_KEY``, else the workspace key file.

    Keys in the workspace file always join the ring, so rotated keys keep verifying.
    With ``create`` and no key anywhere, a key file is generated (mode 0600).
    """
    path = workspace / HMAC_KEYRING_FILE
    file_keys: dict[str, bytes] = {}
    file_current: str | None = None
    if path.exists():
        file_current, file_keys = _read_keyring_file(path)
    explicit = key if key else os.environ.get("AUDIT_SECRET_KEY") or None
    keys: dict[str, bytes] = dict(file_keys)
    for old in previous:
        raw = old.encode()
        keys.setdefault(derive_key_id(raw), raw)
    if explicit:
        raw = explicit.encode()
        current = key_id or derive_key_id(raw)
        keys[current] = raw
        return HmacKeyring(current, keys)
    if file_current is not None:
        return HmacKeyring(key_id if key_id in keys else file_current, keys)
    if not create:
        raise AuditKeyError(
            "no audit HMAC key: set [audit] key, AUDIT_SECRET_KEY, or pass --key "
            f"(looked for {path})"
        )
    raw = secrets.token_bytes(32)
    current = key_id or derive_key_id(raw)
    if write_private_file(path, _keyring_bytes(current, {current: raw})):
        log.warning("generated audit HMAC key %s at %s (mode 0600); keep it safe", current, path)
    file_current, file_keys = _read_keyring_file(path)
    return HmacKeyring(file_current, {**file_keys, **keys})


def rotate_hmac_key(workspace: Path) -> str:
    """Add a fresh key to the workspace keyring and make it current; old keys still verify."""
    path = workspace / HMAC_KEYRING_FILE
    current, keys = _read_keyring_file(path) if path.exists() else ("", {})
    raw = secrets.token_bytes(32)
    new_id = derive_key_id(raw)
    keys[new_id] = raw
    tmp = path.with_name(path.name + ".rotating")
    tmp.unlink(missing_ok=True)
    write_private_file(tmp, _keyring_bytes(new_id, keys))
    os.replace(tmp, path)
    log.warning("rotated audit HMAC key: %s replaces %s in %s", new_id, current or "-", path)
    return new_id


def _key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed-" + hashlib.sha256(raw).hexdigest()[:16]


def _public_b64(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise AuditKeyError(f"not an Ed25519 public key (base64 of 32 bytes): {exc}") from exc


@dataclass(frozen=True)
class SigningKey:
    """The Ed25519 key that signs checkpoints."""

    private: Ed25519PrivateKey = field(repr=False)

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return _key_id_of(self.public)

    @property
    def public_b64(self) -> str:
        return _public_b64(self.public)

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)


def _parse_private(text: str, where: str) -> Ed25519PrivateKey:
    data = text.strip().encode()
    try:
        if data.startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(data, validate=True))
    except ValueError as exc:
        raise AuditKeyError(f"{where}: not an Ed25519 private key (PEM or base64)") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"{where}: the checkpoint key must be Ed25519")
    return key


def load_signing_key(
    workspace: Path, *, key: str | None = None, create: bool = True
) -> SigningKey | None:
    """The checkpoint signing key: ``key``, ``AUDIT_SIGNING_KEY``, or the workspace file.

    Returns None when there is none and ``create`` is false.
    """
    if key:
        return SigningKey(_parse_private(key, "[audit] signing_key"))
    env = os.environ.get("AUDIT_SIGNING_KEY")
    if env:
        return SigningKey(_parse_private(env, "AUDIT_SIGNING_KEY"))
    path = workspace / SIGNING_KEY_FILE
    if not path.exists():
        if not create:
            return None
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        if write_private_file(path, pem):
            log.warning(
                "generated audit checkpoint signing key %s at %s (mode 0600)",
                _key_id_of(private.public_key()),
                path,
            )
    try:
        signing = SigningKey(_parse_private(path.read_text(), str(path)))
    except OSError as exc:
        raise AuditKeyError(f"cannot read the checkpoint signing key {path}: {exc}") from exc
    public_path = workspace / SIGNING_PUBLIC_FILE
    if not public_path.exists():
        public_path.write_text(signing.public_b64 + "\n")
    return signing


class PublicKeys:
    """Ed25519 public keys that may have signed checkpoints, by key id."""

    def __init__(self, keys: Iterable[Ed25519PublicKey] = ()) -> None:
        self._keys: dict[str, Ed25519PublicKey] = {}
        for key in keys:
            self.add(key)

    def add(self, key: Ed25519PublicKey) -> str:
        key_id = _key_id_of(key)
        self._keys[key_id] = key
        return key_id

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def public_b64(self, key_id: str) -> str | None:
        key = self._keys.get(key_id)
        return _public_b64(key) if key is not None else None

    def verify(self, key_id: str, signature: bytes, message: bytes) -> bool:
        key = self._keys.get(key_id)
        if key is None:
            return False
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def load_public_keys(
    workspace: Path, *, files: Iterable[Path] = (), signing: SigningKey | None = None
) -> PublicKeys:
    """Public keys from the workspace's ``.pub`` file, extra files and a signing key."""
    keys = PublicKeys()
    if signing is not None:
        keys.add(signing.public)
    candidates = [workspace / SIGNING_PUBLIC_FILE, *files]
    for path in candidates:
        if not path.exists():
            continue
        try:
            text = path.read_text().strip()
        except OSError as exc:
            raise AuditKeyError(f"cannot read public key {path}: {exc}") from exc
        if text.startswith("-----BEGIN"):
            loaded = serialization.load_pem_public_key(text.encode())
            if not isinstance(loaded, Ed25519PublicKey):
                raise AuditKeyError(f"{path}: not an Ed25519 public key")
            keys.add(loaded)
        else:
            keys.add(public_key_from_b64(text))
    return keys
