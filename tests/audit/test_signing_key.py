"""The checkpoint key is read when a run starts and made when it first signs, with
OpenSSL's library where hashlib has it (cryptography's otherwise); the checkpoint cadence
counts the events a trail appends, not the chain it found."""

from __future__ import annotations

import base64
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.audit import AuditCategory, AuditLevel, AuditSystem
from engine.ledger import ed25519
from engine.ledger.errors import AuditKeyError
from engine.ledger.keys import SIGNING_KEY_FILE, _plain_seed, load_signing_key
from tests.support.audit import log_events

LAZY = """
import sys
from pathlib import Path
from engine.ledger.keys import load_signing_key
key = load_signing_key(Path(sys.argv[1]), create=False)
print("cryptography" in sys.modules)
signature = key.sign(b"message")
print("cryptography" in sys.modules, signature.hex(), key.public_b64)
"""


def _pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def test_a_run_signs_without_loading_cryptography(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    (tmp_path / SIGNING_KEY_FILE).write_text(_pem(private))
    load_signing_key(tmp_path)  # as a first run does: the public key file is written
    out = subprocess.run(
        [sys.executable, "-c", LAZY, str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[:2] == ["False", "False"]  # read and checked, then signed: OpenSSL's library
    # Ed25519 is deterministic: the very signature cryptography makes with the key in the file
    assert bytes.fromhex(out[2]) == private.sign(b"message")
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert out[3] == base64.b64encode(raw).decode()


FALLBACK = """
import sys
from pathlib import Path
from engine.ledger import ed25519
from engine.ledger.keys import load_signing_key
ed25519.LIBRARY_NAMES = ("libcrypto-not-there.so",)
key = load_signing_key(Path(sys.argv[1]), create=False)
signature = key.sign(b"message")
print("cryptography" in sys.modules, signature.hex(), key.public_b64)
"""


def test_without_openssls_library_cryptography_signs_the_same(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    (tmp_path / SIGNING_KEY_FILE).write_text(_pem(private))
    out = subprocess.run(
        [sys.executable, "-c", FALLBACK, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert out[0] == "True"
    assert bytes.fromhex(out[1]) == private.sign(b"message")
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert out[2] == base64.b64encode(raw).decode()


#: RFC 8032, section 7.1: TEST 1, 2 and 3 (secret, public key, message, signature)
RFC8032 = [
    (
        "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
        "",
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
        "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
    ),
    (
        "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
        "72",
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
        "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
    ),
    (
        "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
        "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
        "af82",
        "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
        "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
    ),
]


@pytest.mark.parametrize(("secret", "public", "message", "signature"), RFC8032)
def test_openssls_signer_gives_the_rfc_8032_vectors(
    secret: str, public: str, message: str, signature: str
) -> None:
    signer = ed25519.signer(bytes.fromhex(secret))
    assert signer is not None  # OpenSSL's library, as hashlib loaded it
    assert signer.public_raw.hex() == public
    assert signer.sign(bytes.fromhex(message)).hex() == signature
    key = load_signing_key(Path("."), key=base64.b64encode(bytes.fromhex(secret)).decode())
    assert key is not None and key.sign(bytes.fromhex(message)).hex() == signature


def test_openssls_signatures_are_cryptographys() -> None:
    for size in (0, 1, 63, 64, 1000, 65536):
        private = Ed25519PrivateKey.generate()
        seed = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        signer = ed25519.signer(seed)
        assert signer is not None
        message = secrets.token_bytes(size) + b"\x00"  # a NUL does not end the message
        assert signer.sign(message) == private.sign(message)
        private.public_key().verify(signer.sign(message), message)


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(bytes(31)).decode(),  # not 32 bytes
        "-----BEGIN PRIVATE KEY-----\n" + base64.b64encode(bytes(48)).decode() + "\n"
        "-----END PRIVATE KEY-----\n",  # the envelope of a key, not an Ed25519 key in it
        "-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n",
        "hunter2",
    ],
)
def test_a_key_cryptography_refuses_fails_when_it_is_loaded(tmp_path: Path, text: str) -> None:
    (tmp_path / SIGNING_KEY_FILE).write_text(text)
    with pytest.raises(AuditKeyError, match="not an Ed25519 private key") as caught:
        load_signing_key(tmp_path, create=False)
    assert "hunter2" not in str(caught.value)
    with pytest.raises(AuditKeyError, match="AUDIT_SIGNING_KEY: not an Ed25519"):
        load_signing_key(tmp_path, key=text, source="AUDIT_SIGNING_KEY")


def test_the_forms_read_later_are_those_cryptography_reads_as_the_same_key() -> None:
    for _ in range(20):
        private = Ed25519PrivateKey.generate()
        seed = private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        for text in (_pem(private), base64.b64encode(seed).decode() + "\n"):
            assert _plain_seed(text) == seed
            made = load_signing_key(Path("."), key=text)
            assert (
                made is not None
                and made.public_b64
                == base64.b64encode(
                    private.public_key().public_bytes(
                        serialization.Encoding.Raw, serialization.PublicFormat.Raw
                    )
                ).decode()
            )
    # PEM with headers, or another PEM label, is parsed at once (cryptography decides)
    assert (
        _plain_seed(
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----"
        )
        is None
    )
    assert repr(load_signing_key(Path("."), key=_pem(Ed25519PrivateKey.generate()))) == (
        "SigningKey(...)"
    )


def _checkpoints(workspace: Path) -> list[str]:
    return sorted(p.name for p in (workspace / "checkpoints").rglob("*.json"))


def test_a_trail_signs_at_the_next_multiple_after_the_chain_it_found(tmp_path: Path) -> None:
    log_events(tmp_path, 7)  # every 5: a checkpoint at 5, and at 7 when it closes
    assert _checkpoints(tmp_path) == ["000000000005.json", "000000000007.json"]
    with AuditSystem(workspace=tmp_path, producer="pipeline:sync", checkpoint_every=5) as system:

        def log() -> None:
            system.log_event(
                level=AuditLevel.INFO, category=AuditCategory.INVENTORY, action="batch_read"
            )

        log()  # event 8: what was found was signed when it was written
        assert _checkpoints(tmp_path) == ["000000000005.json", "000000000007.json"]
        log()
        log()  # event 10 passes the next multiple of 5
        assert _checkpoints(tmp_path)[-1] == "000000000010.json"
        log()
    assert _checkpoints(tmp_path)[-1] == "000000000011.json"  # and at the end


FIRST = """
import sys
from pathlib import Path
from engine.ledger.keys import load_signing_key
workspace = Path(sys.argv[1])
key = load_signing_key(workspace)
print("cryptography" in sys.modules, (workspace / "audit-ed25519.pub").exists())
signature = key.sign(b"message")
print((workspace / "audit-ed25519.pub").read_text().strip(), signature.hex())
"""


def test_a_first_run_makes_its_key_without_cryptography_and_lists_it_when_it_signs(
    tmp_path: Path,
) -> None:
    lines = subprocess.run(
        [sys.executable, "-c", FIRST, str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    assert lines[0].split() == ["False", "False"]
    public_b64, signature = lines[1].split()
    private = serialization.load_pem_private_key(
        (tmp_path / SIGNING_KEY_FILE).read_bytes(), password=None
    )
    assert isinstance(private, Ed25519PrivateKey)
    public = private.public_key()
    public.verify(bytes.fromhex(signature), b"message")
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert public_b64 == base64.b64encode(raw).decode()
    assert (tmp_path / SIGNING_KEY_FILE).stat().st_mode & 0o777 == 0o600


def test_a_new_key_is_written_as_cryptography_writes_it() -> None:
    from engine.ledger.keys import _new_private_pem

    seen = set()
    for _ in range(20):
        pem = _new_private_pem()
        private = serialization.load_pem_private_key(pem, password=None)
        assert isinstance(private, Ed25519PrivateKey)
        assert _pem(private).encode() == pem
        seen.add(pem)
    assert len(seen) == 20
