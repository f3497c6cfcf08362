"""The checkpoint key is read when a run starts and made when it first signs; the
checkpoint cadence counts the events a trail appends, not the chain it found."""

from __future__ import annotations

import base64
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.audit import AuditCategory, AuditLevel, AuditSystem
from engine.ledger.errors import AuditKeyError
from engine.ledger.keys import SIGNING_KEY_FILE, _plain_private, load_signing_key
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


def test_a_run_loads_cryptography_only_when_it_signs(tmp_path: Path) -> None:
    private = Ed25519PrivateKey.generate()
    (tmp_path / SIGNING_KEY_FILE).write_text(_pem(private))
    load_signing_key(tmp_path)  # as a first run does: the public key file is written
    out = subprocess.run(
        [sys.executable, "-c", LAZY, str(tmp_path)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == "False"  # loaded and checked, not yet made
    assert out[1] == "True"
    private.public_key().verify(bytes.fromhex(out[2]), b"message")  # the key in the file
    raw = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    assert out[3] == base64.b64encode(raw).decode()


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
            assert _plain_private(text)
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
    assert not _plain_private(
        "-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----"
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
