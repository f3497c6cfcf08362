"""Keys of the trail: the HMAC keyring and the Ed25519 checkpoint key, both rotatable.

Resolution order for both: the pipeline's ``[audit]`` setting, then the environment
(``AUDIT_SECRET_KEY`` / ``AUDIT_SIGNING_KEY``), then a key file in the workspace, which
the first run generates with mode 0600 and names in a log line. Only the workspace files
are rotated here; a key given by setting or environment is rotated where it lives.
The ``.pub`` file lists every checkpoint key ever used there, one base64 key a line,
the current one first, so checkpoints signed before a rotation keep verifying.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from engine.ledger import ed25519
from engine.ledger.errors import AuditKeyError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

__all__ = [
    "HMAC_KEYRING_FILE",
    "SIGNING_KEY_FILE",
    "SIGNING_PUBLIC_FILE",
    "HmacKeyring",
    "KeyKind",
    "KeyRotation",
    "PublicKeys",
    "SigningKey",
    "derive_key_id",
    "hmac_sha256",
    "load_keyring",
    "load_public_keys",
    "load_signing_key",
    "public_key_from_b64",
    "rotate_hmac_key",
    "rotate_keys",
    "rotate_signing_key",
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
    """The HMAC keyring: ``key`` (the caller's ``[audit] key``, else ``AUDIT_SECRET_KEY``),
    else the workspace key file.

    Keys in the workspace file always join the ring, so rotated keys keep verifying.
    With ``create`` and no key anywhere, a key file is generated (mode 0600).
    """
    path = workspace / HMAC_KEYRING_FILE
    file_keys: dict[str, bytes] = {}
    file_current: str | None = None
    if path.exists():
        file_current, file_keys = _read_keyring_file(path)
    explicit = key or None
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


def _raw_public(public: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _raw_key_id(raw: bytes) -> str:
    return "ed-" + hashlib.sha256(raw).hexdigest()[:16]


def _key_id_of(public: Ed25519PublicKey) -> str:
    return _raw_key_id(_raw_public(public))


def _raw_b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _public_b64(public: Ed25519PublicKey) -> str:
    return _raw_b64(_raw_public(public))


def public_key_from_b64(text: str) -> Ed25519PublicKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        return Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise AuditKeyError(f"not an Ed25519 public key (base64 of 32 bytes): {exc}") from exc


class _Signer(Protocol):
    public_raw: bytes

    def sign(self, message: bytes) -> bytes: ...


class _CryptographySigner:
    """A key cryptography has read (any form it reads, where OpenSSL is not called)."""

    __slots__ = ("_private", "public_raw")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public_raw = _raw_public(private.public_key())

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


class SigningKey:
    """The Ed25519 key that signs checkpoints.

    Made from its text on first use (:meth:`from_text`). A key in one of the two plain
    forms (PKCS#8 PEM, or base64 of its 32 bytes) signs with the OpenSSL library hashlib
    has loaded (:mod:`engine.ledger.ed25519`), so a run does not load cryptography's
    (about 8 MB) to sign its checkpoints. A text in any other form is parsed by
    cryptography at once, so a key it would refuse still fails the run before it starts.
    With ``public_file``, the key's public half is written there when it is made, unless
    that file exists (the workspace's list of public keys)."""

    __slots__ = ("_made", "_public_file", "_seed")
    _made: _Signer | None
    _seed: bytes  # a plain key's 32 bytes, until it is made
    _public_file: Path | None

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._made = _CryptographySigner(private)
        self._seed = b""
        self._public_file = None

    @classmethod
    def from_text(cls, text: str, where: str, *, public_file: Path | None = None) -> SigningKey:
        key = cls.__new__(cls)
        key._made, key._seed, key._public_file = None, b"", public_file
        seed = _plain_seed(text)
        if seed is None:  # parsed now: cryptography decides
            key._made = _CryptographySigner(_parse_private(text, where))
            key._list_public()
        else:
            key._seed = seed
        return key

    def __repr__(self) -> str:
        return "SigningKey(...)"

    @property
    def _signer(self) -> _Signer:
        if self._made is None:
            made = ed25519.signer(self._seed)
            self._made = made or _CryptographySigner(_private_from_seed(self._seed))
            self._seed = b""
            self._list_public()
        return self._made

    def _list_public(self) -> None:
        """Write the key's public half to ``public_file`` once it is made, unless it exists."""
        if self._public_file is not None and not self._public_file.exists():
            self._public_file.write_text(self.public_b64 + "\n")

    @property
    def public(self) -> Ed25519PublicKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        return Ed25519PublicKey.from_public_bytes(self._signer.public_raw)

    @property
    def key_id(self) -> str:
        return _raw_key_id(self._signer.public_raw)

    @property
    def public_b64(self) -> str:
        return _raw_b64(self._signer.public_raw)

    def sign(self, message: bytes) -> bytes:
        return self._signer.sign(message)


#: DER of a PKCS#8 Ed25519 private key (RFC 8410) before its 32 bytes
_PKCS8_ED25519 = bytes.fromhex("302e020100300506032b657004220420")
_PLAIN_PEM = re.compile(
    r"-----BEGIN PRIVATE KEY-----\n([A-Za-z0-9+/=\n]+)-----END PRIVATE KEY-----", re.ASCII
)


def _plain_seed(text: str) -> bytes | None:
    """The 32 bytes of an Ed25519 private key in one of the two plain forms that
    cryptography always reads (base64 of its 32 bytes, or PKCS#8 PEM), else None."""
    data = text.strip()
    found = _PLAIN_PEM.fullmatch(data)
    try:
        if found is None:
            seed = base64.b64decode(data, validate=True)
            return seed if len(seed) == 32 else None
        der = base64.b64decode(found.group(1).replace("\n", ""), validate=True)
    except ValueError:
        return None
    if len(der) == len(_PKCS8_ED25519) + 32 and der.startswith(_PKCS8_ED25519):
        return der[len(_PKCS8_ED25519) :]
    return None


def _private_from_seed(seed: bytes) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    return Ed25519PrivateKey.from_private_bytes(seed)


def _parse_private(text: str, where: str) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

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


def _read_private_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise AuditKeyError(f"cannot read the checkpoint signing key {path}: {exc}") from exc


def _read_private_file(path: Path) -> Ed25519PrivateKey:
    return _parse_private(_read_private_text(path), str(path))


def _private_pem(private: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_signing_key(
    workspace: Path,
    *,
    key: str | None = None,
    create: bool = True,
    source: str = "[audit] signing_key",
) -> SigningKey | None:
    """The checkpoint signing key: ``key`` (``[audit] signing_key``, else
    ``AUDIT_SIGNING_KEY``, as ``source`` says), or the workspace file.

    Returns None when there is none and ``create`` is false.
    """
    if key:
        return SigningKey.from_text(key, source)
    path = workspace / SIGNING_KEY_FILE
    public_path = workspace / SIGNING_PUBLIC_FILE
    if not path.exists():
        if not create:
            return None
        if write_private_file(path, _new_private_pem()):
            log.warning(
                "generated audit checkpoint signing key at %s (mode 0600); its public key "
                "goes to %s when it first signs",
                path,
                public_path,
            )
    # the workspace lists the public key once the key is made (it signs, or is shown)
    return SigningKey.from_text(_read_private_text(path), str(path), public_file=public_path)


def _new_private_pem() -> bytes:
    """A new Ed25519 private key, as PKCS#8 PEM: 32 random bytes (RFC 8032), written
    without cryptography's library; the key is made from them when it first signs."""
    der = base64.b64encode(_PKCS8_ED25519 + secrets.token_bytes(32))
    return b"-----BEGIN PRIVATE KEY-----\n" + der + b"\n-----END PRIVATE KEY-----\n"


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
        from cryptography.exceptions import InvalidSignature

        key = self._keys.get(key_id)
        if key is None:
            return False
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


_PEM_BLOCK = re.compile(r"-----BEGIN [^-]+-----.*?-----END [^-]+-----", re.DOTALL)


def _read_public_file(path: Path) -> list[Ed25519PublicKey]:
    """Every key in a public key file: PEM blocks, or base64 keys one a line (``#`` comments)."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise AuditKeyError(f"cannot read public key {path}: {exc}") from exc
    keys: list[Ed25519PublicKey] = []
    if "-----BEGIN" in text:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        for block in _PEM_BLOCK.findall(text):
            try:
                loaded = serialization.load_pem_public_key(block.encode())
            except ValueError as exc:
                raise AuditKeyError(f"{path}: not a PEM public key: {exc}") from exc
            if not isinstance(loaded, Ed25519PublicKey):
                raise AuditKeyError(f"{path}: not an Ed25519 public key")
            keys.append(loaded)
        return keys
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            keys.append(public_key_from_b64(line))
        except AuditKeyError as exc:
            raise AuditKeyError(f"{path}:{number}: {exc}") from exc
    return keys


def load_public_keys(
    workspace: Path, *, files: Iterable[Path] = (), signing: SigningKey | None = None
) -> PublicKeys:
    """Keys from the workspace's ``.pub`` file (current and retired), ``files`` and ``signing``."""
    keys = PublicKeys()
    if signing is not None:
        keys.add(signing.public)
    for path in [workspace / SIGNING_PUBLIC_FILE, *files]:
        if path.exists():
            for key in _read_public_file(path):
                keys.add(key)
    return keys


# --- rotation ---------------------------------------------------------------------

KeyKind = Literal["hmac", "signing"]


@dataclass(frozen=True)
class KeyRotation:
    """One rotated workspace key, by id (never the key itself)."""

    kind: KeyKind
    old_id: str | None
    new_id: str
    path: Path


@contextlib.contextmanager
def _key_lock(workspace: Path) -> Iterator[None]:
    """Serialise rotations of one workspace, so no concurrent rotation loses a key.

    The lock is an flock on the workspace folder itself: no lock file, and the kernel
    releases it when the process dies.
    """
    try:
        workspace.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(workspace, os.O_RDONLY)
    except OSError as exc:
        raise AuditKeyError(f"cannot lock the workspace {workspace}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _refuse_external(kind: KeyKind, setting: str | None, in_env: bool) -> None:
    if kind == "hmac":
        variable, name, hint = (
            "AUDIT_SECRET_KEY",
            "[audit] key",
            "set the new key there and keep the old one in [audit] previous_keys "
            "(or pass both to `engine audit verify --key`)",
        )
    else:
        variable, name, hint = (
            "AUDIT_SIGNING_KEY",
            "[audit] signing_key",
            "set the new key there and give verifiers the old and the new public key "
            "(`engine audit verify --public-key`)",
        )
    source = name if setting else variable if in_env else None
    if source is not None:
        what = "HMAC key" if kind == "hmac" else "checkpoint signing key"
        raise AuditKeyError(
            f"the audit {what} is set by {source}, not kept in the workspace: "
            f"rotate it where it lives; {hint}"
        )


def _replace_file(path: Path, data: bytes, *, private: bool) -> None:
    """Write ``path`` anew through a temporary file and a rename (0600 when private)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.rotating")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise AuditKeyError(f"cannot write key file {path}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def _rotate_hmac(workspace: Path) -> KeyRotation:
    path = workspace / HMAC_KEYRING_FILE
    current, keys = _read_keyring_file(path) if path.exists() else (None, {})
    raw = secrets.token_bytes(32)
    new_id = derive_key_id(raw)
    keys[new_id] = raw
    _replace_file(path, _keyring_bytes(new_id, keys), private=True)
    log.warning("rotated audit HMAC key: %s replaces %s in %s", new_id, current or "-", path)
    return KeyRotation("hmac", current, new_id, path)


def _signing_state(workspace: Path) -> tuple[str | None, list[Ed25519PublicKey]]:
    """The current key's id (None without a key file) and every public key to keep."""
    key_path = workspace / SIGNING_KEY_FILE
    pub_path = workspace / SIGNING_PUBLIC_FILE
    keep = _read_public_file(pub_path) if pub_path.exists() else []
    if not key_path.exists():
        return None, keep
    current = _read_private_file(key_path).public_key()
    return _key_id_of(current), [current, *keep]


def _rotate_signing(workspace: Path) -> KeyRotation:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key_path = workspace / SIGNING_KEY_FILE
    pub_path = workspace / SIGNING_PUBLIC_FILE
    old_id, keep = _signing_state(workspace)
    private = Ed25519PrivateKey.generate()
    listed: dict[str, Ed25519PublicKey] = {}
    for key in [private.public_key(), *keep]:
        listed.setdefault(_key_id_of(key), key)
    # The new public key is listed before anything is signed with it: a crash in between
    # leaves a key that signed nothing, never a checkpoint that no listed key verifies.
    _replace_file(
        pub_path, "".join(_public_b64(k) + "\n" for k in listed.values()).encode(), private=False
    )
    _replace_file(key_path, _private_pem(private), private=True)
    new_id = _key_id_of(private.public_key())
    log.warning(
        "rotated audit checkpoint signing key: %s replaces %s in %s (public keys kept in %s)",
        new_id,
        old_id or "-",
        key_path,
        pub_path,
    )
    return KeyRotation("signing", old_id, new_id, key_path)


def rotate_keys(
    workspace: Path,
    kinds: Collection[KeyKind],
    *,
    hmac_setting: str | None = None,
    signing_setting: str | None = None,
    from_env: Collection[KeyKind] = (),
) -> list[KeyRotation]:
    """Give the workspace new current keys of the given kinds; old ones keep verifying.

    An HMAC rotation adds a key to the keyring file; a signing rotation replaces the
    private key and lists the new public key first in the ``.pub`` file, above every
    older one. ``hmac_setting`` / ``signing_setting`` are the pipeline's ``[audit] key`` /
    ``signing_key``: a key given there or in the environment (``from_env``: the kinds
    whose key AUDIT_SECRET_KEY / AUDIT_SIGNING_KEY gives) is refused, as are unreadable
    key files, before any key changes.
    """
    order: Sequence[KeyKind] = [k for k in ("hmac", "signing") if k in kinds]
    for kind in order:
        setting = hmac_setting if kind == "hmac" else signing_setting
        _refuse_external(kind, setting, kind in from_env)
    with _key_lock(workspace):
        if "hmac" in order and (workspace / HMAC_KEYRING_FILE).exists():
            _read_keyring_file(workspace / HMAC_KEYRING_FILE)
        if "signing" in order:
            _signing_state(workspace)
        return [
            _rotate_hmac(workspace) if kind == "hmac" else _rotate_signing(workspace)
            for kind in order
        ]


def rotate_hmac_key(workspace: Path, *, key: str | None = None) -> str:
    """Add a fresh key to the workspace keyring and make it current; old keys still verify."""
    return rotate_keys(workspace, ["hmac"], hmac_setting=key)[0].new_id


def rotate_signing_key(workspace: Path, *, key: str | None = None) -> str:
    """Replace the workspace's checkpoint key; its public half joins the retired ones."""
    return rotate_keys(workspace, ["signing"], signing_setting=key)[0].new_id
