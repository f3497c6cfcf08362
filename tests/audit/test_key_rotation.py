"""``engine audit rotate-key``: new keys sign, and what the old keys signed still verifies."""

from __future__ import annotations

import base64
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.audit.errors import AuditKeyError
from engine.audit.keys import (
    HMAC_KEYRING_FILE,
    SIGNING_KEY_FILE,
    SIGNING_PUBLIC_FILE,
    load_keyring,
    load_public_keys,
    load_signing_key,
    rotate_signing_key,
)
from engine.cli.audit import audit
from tests.support.audit import log_events

CHAIN = "pipeline:sync"


def run(*args: str, **env: str) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200", **env}).invoke(audit, list(args))
    return result.exit_code, result.output


def chain_checkpoints(ws: Path) -> list[Path]:
    return sorted((ws / "checkpoints" / "pipeline_sync").glob("*.json"))


def key_id_of(checkpoint: Path) -> str:
    return str(orjson.loads(checkpoint.read_bytes())["key_id"])


def all_checkpoints(ws: Path) -> list[Path]:
    return sorted((ws / "checkpoints").rglob("*.json"))


def chain_events(ws: Path) -> list[dict[str, Any]]:
    code, output = run("query", "--producer", CHAIN, "--format", "json", "--limit", "1000")
    assert code == 0, output
    return sorted(orjson.loads(output), key=lambda e: int(e["seq"]))


def rotate(*flags: str) -> dict[str, dict[str, Any]]:
    code, output = run("rotate-key", *flags, "--format", "json")
    assert code == 0, output
    return {r["kind"]: r for r in orjson.loads(output)["rotated"]}


@dataclass(frozen=True)
class Rotated:
    ws: Path
    old_key: str  # signing key id before the rotation
    new_key: str
    old_checkpoint: Path  # the last checkpoint signed with the old key


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    ws = tmp_path / "home"
    monkeypatch.setenv("ENGINE_HOME", str(ws))
    log_events(ws, 12)
    return ws


@pytest.fixture
def rotated(home: Path) -> Rotated:
    before = chain_checkpoints(home)
    old_key = key_id_of(before[-1])
    result = rotate("--signing")["signing"]
    assert result["old_key_id"] == old_key and result["new_key_id"] != old_key
    log_events(home, 8, start=12)
    return Rotated(home, old_key, result["new_key_id"], before[-1])


def test_old_and_new_checkpoints_verify_after_a_signing_rotation(rotated: Rotated) -> None:
    ws = rotated.ws
    signed_by = {key_id_of(p) for p in chain_checkpoints(ws)}
    assert signed_by == {rotated.old_key, rotated.new_key}
    # Counted before each verify: recording the verification writes one more checkpoint.
    count = len(all_checkpoints(ws))
    code, output = run("verify", "--format", "json")
    assert code == 0, output
    report = orjson.loads(output)
    assert report["ok"] and report["checkpoints"] == count
    count = len(all_checkpoints(ws))
    code, output = run("verify")
    assert code == 0 and f"{count} signed checkpoint(s) checked" in output
    # The retired key is what makes the old checkpoints verify: without it they fail.
    lines = (ws / SIGNING_PUBLIC_FILE).read_text().splitlines()
    assert len(lines) == 2
    (ws / SIGNING_PUBLIC_FILE).write_text(lines[0] + "\n")
    code, output = run("verify")
    assert code == 1
    assert f"signed by unknown key {rotated.old_key}" in output
    assert rotated.old_checkpoint.name in output


def test_public_file_lists_the_current_key_first_and_keeps_the_retired_ones(
    rotated: Rotated,
) -> None:
    ws = rotated.ws
    new_id = rotate("--signing")["signing"]["new_key_id"]
    lines = (ws / SIGNING_PUBLIC_FILE).read_text().splitlines()
    keys = load_public_keys(ws)
    assert len(lines) == 3 and len(keys) == 3
    assert all(k in keys for k in (rotated.old_key, rotated.new_key, new_id))
    signing = load_signing_key(ws, create=False)
    assert signing is not None and signing.key_id == new_id
    assert lines[0] == signing.public_b64
    assert stat.S_IMODE((ws / SIGNING_KEY_FILE).stat().st_mode) == 0o600


def test_proof_of_an_old_event_still_verifies_offline(rotated: Rotated, tmp_path: Path) -> None:
    ws = rotated.ws
    first = chain_events(ws)[0]["event_id"]
    pub = str(ws / SIGNING_PUBLIC_FILE)
    only_new = tmp_path / "new.pub"
    only_new.write_text((ws / SIGNING_PUBLIC_FILE).read_text().splitlines()[0] + "\n")
    for checkpoints, key in (
        ((), rotated.new_key),
        (("--checkpoint", str(rotated.old_checkpoint)), rotated.old_key),
    ):
        proof_file = tmp_path / f"proof-{key}.json"
        code, output = run("prove", first, *checkpoints, "--output", str(proof_file))
        assert code == 0, output
        proof = orjson.loads(proof_file.read_bytes())
        assert proof["checkpoint"]["key_id"] == key and proof["leaf_index"] == 0
        code, output = run("verify-proof", str(proof_file), "--public-key", pub)
        assert code == 0 and "valid" in output, output
        code, output = run("verify-proof", str(proof_file), "--public-key", str(only_new))
        assert (code == 0) == (key == rotated.new_key), output


def test_consistency_across_the_rotation(rotated: Rotated, tmp_path: Path) -> None:
    out = tmp_path / "consistency.json"
    code, output = run("prove-consistency", str(rotated.old_checkpoint), "--output", str(out))
    assert code == 0, output
    proof = orjson.loads(out.read_bytes())
    assert proof["old"]["checkpoint"]["key_id"] == rotated.old_key
    assert proof["new"]["checkpoint"]["key_id"] == rotated.new_key
    pub = str(rotated.ws / SIGNING_PUBLIC_FILE)
    code, output = run("verify-proof", str(out), "--public-key", pub)
    assert code == 0 and "only grew" in output, output


def test_hmac_rotation_keeps_old_events_verifying(home: Path) -> None:
    old_hmac = load_keyring(home, create=False).current_id
    result = rotate("--hmac", "--signing")
    assert set(result) == {"hmac", "signing"}
    assert result["hmac"]["old_key_id"] == old_hmac
    new_hmac = result["hmac"]["new_key_id"]
    log_events(home, 6, start=12)
    ring = load_keyring(home, create=False)
    assert ring.current_id == new_hmac and old_hmac in ring.keys
    events = chain_events(home)
    assert [e["key_id"] for e in events] == [old_hmac] * 12 + [new_hmac] * 6
    code, output = run("verify")
    assert code == 0, output
    # The old key kept in the keyring is what verifies the old events.
    keyring = orjson.loads((home / HMAC_KEYRING_FILE).read_bytes())
    del keyring["keys"][old_hmac]
    (home / HMAC_KEYRING_FILE).write_bytes(orjson.dumps(keyring))
    code, output = run("verify")
    assert code == 3 and "cannot verify" in output and old_hmac in output
    assert "event #1" in output and "[audit] key" in output


def test_a_tampered_old_checkpoint_still_fails(rotated: Rotated) -> None:
    data = orjson.loads(rotated.old_checkpoint.read_bytes())
    data["root"] = "00" * 32
    rotated.old_checkpoint.write_bytes(orjson.dumps(data))
    code, output = run("verify")
    assert code == 1
    assert "checkpoint_signature" in output and rotated.old_checkpoint.name in output
    assert "the signature does not verify" in output


def test_the_rotation_is_a_security_event_without_secrets(home: Path) -> None:
    result = rotate("--hmac", "--signing")
    code, output = run("query", "--action", "audit_key_rotated", "--format", "json")
    assert code == 0, output
    (event,) = orjson.loads(output)
    assert event["producer"] == "audit-access" and event["category"] == "SECURITY"
    rotated = {r["kind"]: r for r in event["details"]["rotated"]}
    assert rotated["hmac"]["new_key_id"] == result["hmac"]["new_key_id"]
    assert rotated["signing"]["new_key_id"] == result["signing"]["new_key_id"]
    # Signed with the new HMAC key, so the event also shows that the new key works.
    assert event["key_id"] == result["hmac"]["new_key_id"]
    text = output
    for raw in load_keyring(home, create=False).keys.values():
        assert raw.hex() not in text
    assert "PRIVATE KEY" not in text
    private = (home / SIGNING_KEY_FILE).read_text()
    assert private.splitlines()[1] not in text
    code, output = run("verify")
    assert code == 0, output


def test_refused_when_the_signing_key_is_external(home: Path) -> None:
    before = {
        name: (home / name).read_bytes()
        for name in (HMAC_KEYRING_FILE, SIGNING_KEY_FILE, SIGNING_PUBLIC_FILE)
    }
    raw = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    external = base64.b64encode(raw).decode()
    # With both asked for, nothing rotates: the HMAC keyring is untouched too.
    code, output = run("rotate-key", "--hmac", "--signing", AUDIT_SIGNING_KEY=external)
    assert code == 1
    assert "AUDIT_SIGNING_KEY" in output and "rotate it where it lives" in output
    assert external not in output
    after = {name: (home / name).read_bytes() for name in before}
    assert after == before
    with pytest.raises(AuditKeyError, match=r"\[audit\] signing_key"):
        rotate_signing_key(home, key=external)


def test_refused_when_the_hmac_key_is_external(home: Path) -> None:
    keyring = (home / HMAC_KEYRING_FILE).read_bytes()
    code, output = run("rotate-key", "--hmac", AUDIT_SECRET_KEY="from-the-environment")
    assert code == 1 and "AUDIT_SECRET_KEY" in output and "previous_keys" in output
    assert "from-the-environment" not in output
    assert (home / HMAC_KEYRING_FILE).read_bytes() == keyring


def test_an_unreadable_keyring_fails_naming_it_and_changes_nothing(home: Path) -> None:
    (home / HMAC_KEYRING_FILE).write_text("not json\n")
    signing = (home / SIGNING_KEY_FILE).read_bytes()
    code, output = run("rotate-key", "--hmac", "--signing")
    assert code == 1
    assert f"cannot read the audit keyring {home / HMAC_KEYRING_FILE}" in output
    assert (home / SIGNING_KEY_FILE).read_bytes() == signing


def test_a_bad_public_key_line_is_named(home: Path) -> None:
    pub = home / SIGNING_PUBLIC_FILE
    pub.write_text(pub.read_text() + "not-a-key\n")
    code, output = run("rotate-key", "--signing")
    assert code == 1 and f"{pub}:2" in output


def test_a_key_must_be_named(home: Path) -> None:
    code, output = run("rotate-key")
    assert code == 2 and "--hmac, --signing, or both" in output


def test_single_key_and_pem_public_files_still_load(tmp_path: Path) -> None:
    keys = [Ed25519PrivateKey.generate().public_key() for _ in range(2)]
    raw = [k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) for k in keys]
    single = tmp_path / "one.pub"
    single.write_text(base64.b64encode(raw[0]).decode() + "\n")
    assert len(load_public_keys(tmp_path / "none", files=[single])) == 1
    pem = tmp_path / "two.pem"
    pem.write_bytes(
        b"".join(
            k.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            for k in keys
        )
    )
    assert len(load_public_keys(tmp_path / "none", files=[pem])) == 2
    lines = tmp_path / "lines.pub"
    lines.write_text(
        "# current first\n" + "".join(base64.b64encode(r).decode() + "\n" for r in raw)
    )
    assert len(load_public_keys(tmp_path / "none", files=[lines])) == 2
