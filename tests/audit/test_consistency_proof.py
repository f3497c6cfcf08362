"""`engine audit prove-consistency` and `verify-proof` on consistency proofs, via the CLI."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from engine.audit.canonical import canonical_json
from engine.audit.checkpoint import sign_checkpoint
from engine.audit.keys import SigningKey, load_signing_key
from engine.audit.merkle import consistency_proof, leaf_hash, root_from_hashes
from engine.cli.audit import audit
from tests.support.audit import log_events, store_sql

CHAIN = "pipeline:sync"


def chain_checkpoints(ws: Path) -> list[Path]:
    return sorted((ws / "checkpoints" / "pipeline_sync").glob("*.json"))


@dataclass(frozen=True)
class Home:
    ws: Path
    old: Path  # the last checkpoint of the first session
    new: Path  # the last checkpoint after the chain grew


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    ws = tmp_path / "home"
    monkeypatch.setenv("ENGINE_HOME", str(ws))
    monkeypatch.setenv("AUDIT_SECRET_KEY", "consistency-test-key")
    log_events(ws, 12)
    old = chain_checkpoints(ws)[-1]
    log_events(ws, 7)
    new = chain_checkpoints(ws)[-1]
    assert size_of(old) < size_of(new)
    return Home(ws, old, new)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner(env={"COLUMNS": "200"}).invoke(audit, list(args))
    return result.exit_code, result.output


def size_of(checkpoint: Path) -> int:
    return int(orjson.loads(checkpoint.read_bytes())["tree_size"])


def prove(tmp_path: Path, *args: str) -> tuple[Path, dict[str, Any]]:
    out = tmp_path / "consistency.json"
    code, output = run("prove-consistency", *args, "--output", str(out))
    assert code == 0, output
    return out, orjson.loads(out.read_bytes())


def test_proof_between_two_checkpoints_verifies(home: Home, tmp_path: Path) -> None:
    out, proof = prove(tmp_path, str(home.old), "--to", str(home.new))
    assert proof["format"] == "engine-audit-consistency-proof/v1"
    assert proof["old"]["checkpoint"] == orjson.loads(home.old.read_bytes())
    assert proof["new"]["checkpoint"] == orjson.loads(home.new.read_bytes())
    public = (home.ws / "audit-ed25519.pub").read_text().strip()
    assert proof["old"]["public_key"] == proof["new"]["public_key"] == public
    assert proof["proof"]
    code, output = run("verify-proof", str(out), "--public-key", str(home.ws / "audit-ed25519.pub"))
    assert code == 0, output
    assert f"{CHAIN}'s tree of {size_of(home.old)}" in output
    assert f"prefix of its tree of {size_of(home.new)}" in output


def test_every_pair_of_checkpoints_is_consistent(home: Home, tmp_path: Path) -> None:
    files = chain_checkpoints(home.ws)
    assert len(files) >= 4
    for i, older in enumerate(files):
        for newer in files[i:]:
            out, proof = prove(tmp_path, str(older), "--to", str(newer))
            assert proof["new"]["checkpoint"]["tree_size"] == size_of(newer)
            code, output = run("verify-proof", str(out))
            assert code == 0, f"{older.name} -> {newer.name}: {output}"


def test_old_by_tree_size_and_the_newest_checkpoint_by_default(home: Home, tmp_path: Path) -> None:
    _, proof = prove(tmp_path, str(size_of(home.old)), "--chain", CHAIN)
    assert proof["old"]["checkpoint"] == orjson.loads(home.old.read_bytes())
    assert proof["new"]["checkpoint"] == orjson.loads(home.new.read_bytes())


def test_a_new_checkpoint_of_the_head_is_signed_when_none_reaches_it(
    home: Home, tmp_path: Path
) -> None:
    head = size_of(home.new)
    home.new.unlink()
    _, proof = prove(tmp_path, str(home.old))
    assert proof["new"]["checkpoint"]["tree_size"] == head
    assert home.new.exists()
    assert orjson.loads(home.new.read_bytes()) == proof["new"]["checkpoint"]
    code, output = run("verify-proof", str(tmp_path / "consistency.json"))
    assert code == 0, output


def test_without_a_signing_key_the_newest_checkpoint_is_used(home: Home, tmp_path: Path) -> None:
    home.new.unlink()
    (home.ws / "audit-ed25519.key").unlink()
    behind = chain_checkpoints(home.ws)[-1]
    _, proof = prove(tmp_path, str(home.old))
    assert proof["new"]["checkpoint"]["tree_size"] == size_of(behind)
    assert not home.new.exists()


def test_proof_verifies_offline_after_the_store_is_deleted(home: Home, tmp_path: Path) -> None:
    out, _ = prove(tmp_path, str(home.old))
    public = tmp_path / "trusted.pub"
    shutil.copy(home.ws / "audit-ed25519.pub", public)
    shutil.rmtree(home.ws)
    code, output = run("verify-proof", str(out), "--public-key", str(public))
    assert code == 0, output
    assert "valid" in output and "only grew" in output


def _sign(checkpoint: dict[str, Any], key: SigningKey, **changes: Any) -> dict[str, Any]:
    fields = {**checkpoint, **changes}
    signed = sign_checkpoint(
        fields["producer"], fields["tree_size"], bytes.fromhex(fields["root"]), key
    )
    return signed.model_dump()


def _flip_hash(proof: dict[str, Any], _ws: Path) -> None:
    first = bytes.fromhex(proof["proof"][0])
    proof["proof"][0] = bytes([first[0] ^ 1, *first[1:]]).hex()


def _drop_hash(proof: dict[str, Any], _ws: Path) -> None:
    proof["proof"].pop()


def _extra_hash(proof: dict[str, Any], _ws: Path) -> None:
    proof["proof"].append("ab" * 32)


def _swap_checkpoints(proof: dict[str, Any], _ws: Path) -> None:
    proof["old"], proof["new"] = proof["new"], proof["old"]


def _new_root_changed(proof: dict[str, Any], _ws: Path) -> None:
    proof["new"]["checkpoint"]["root"] = "00" * 32


def _old_size_changed(proof: dict[str, Any], _ws: Path) -> None:
    proof["old"]["checkpoint"]["tree_size"] -= 1


def _bad_signature(proof: dict[str, Any], _ws: Path) -> None:
    proof["new"]["checkpoint"]["signature"] = proof["old"]["checkpoint"]["signature"]


def _other_chain(proof: dict[str, Any], ws: Path) -> None:
    access = sorted((ws / "checkpoints" / "audit-access").glob("*.json"))[-1]
    proof["new"]["checkpoint"] = orjson.loads(access.read_bytes())


def _forked_old_checkpoint(proof: dict[str, Any], ws: Path) -> None:
    # Validly signed by the real key, but of another history: a split view.
    key = load_signing_key(ws, create=False)
    assert key is not None
    proof["old"]["checkpoint"] = _sign(proof["old"]["checkpoint"], key, root="11" * 32)


def _unknown_format(proof: dict[str, Any], _ws: Path) -> None:
    proof["format"] = "engine-audit-consistency-proof/v0"


def _claims_inclusion(proof: dict[str, Any], _ws: Path) -> None:
    proof["format"] = "engine-audit-inclusion-proof/v1"


def _no_proof_hashes(proof: dict[str, Any], _ws: Path) -> None:
    del proof["proof"]


TAMPERINGS: list[tuple[Callable[[dict[str, Any], Path], None], str]] = [
    (_flip_hash, "is not a prefix of"),
    (_drop_hash, "is not a prefix of"),
    (_extra_hash, "is not a prefix of"),
    (_swap_checkpoints, "sizes inverted or checkpoints swapped"),
    (_new_root_changed, "the new checkpoint's signature does not verify"),
    (_old_size_changed, "the old checkpoint's signature does not verify"),
    (_bad_signature, "the new checkpoint's signature does not verify"),
    (_other_chain, "different chains: pipeline:sync and audit-access"),
    (_forked_old_checkpoint, "is not a prefix of"),
    (_unknown_format, "not an engine audit proof"),
    (_claims_inclusion, "malformed proof"),
    (_no_proof_hashes, "malformed proof"),
]


@pytest.mark.parametrize(
    ("tamper", "message"), TAMPERINGS, ids=[t.__name__.lstrip("_") for t, _ in TAMPERINGS]
)
def test_tampered_proof_fails(
    home: Home, tmp_path: Path, tamper: Callable[[dict[str, Any], Path], None], message: str
) -> None:
    out, proof = prove(tmp_path, str(home.old), "--to", str(home.new))
    tamper(proof, home.ws)
    out.write_bytes(orjson.dumps(proof))
    code, output = run("verify-proof", str(out))
    assert code == 1, output
    assert "invalid" in output and message in output


def _forged_log(key: SigningKey, old_size: int, new_size: int) -> dict[str, Any]:
    """A consistent proof of a log the holder of ``key`` made up."""
    hashes = [leaf_hash(b"forged %d" % i) for i in range(new_size)]

    def checkpoint(size: int) -> dict[str, Any]:
        root = root_from_hashes(hashes[:size])
        return {
            "checkpoint": sign_checkpoint(CHAIN, size, root, key).model_dump(),
            "public_key": key.public_b64,
        }

    return {
        "format": "engine-audit-consistency-proof/v1",
        "old": checkpoint(old_size),
        "new": checkpoint(new_size),
        "proof": [h.hex() for h in consistency_proof(hashes, old_size)],
    }


def test_pinned_key_rejects_a_proof_signed_by_another_key(home: Home, tmp_path: Path) -> None:
    forged = tmp_path / "forged.json"
    intruder = SigningKey(Ed25519PrivateKey.generate())
    forged.write_bytes(orjson.dumps(_forged_log(intruder, 5, 9)))
    code, output = run("verify-proof", str(forged))
    assert code == 0, output  # self-consistent, with the key it carries
    code, output = run(
        "verify-proof", str(forged), "--public-key", str(home.ws / "audit-ed25519.pub")
    )
    assert code == 1, output
    assert "the old checkpoint's signature does not verify" in output


def test_rewritten_history_cannot_be_proved(home: Home, tmp_path: Path) -> None:
    where = "producer = :p and seq = 3"
    (body,) = store_sql(home.ws, f"select body from audit_events where {where}", p=CHAIN)[0]
    event = orjson.loads(body)  # type: ignore[arg-type]
    event["resource"] = "SKU-REWRITTEN"
    store_sql(
        home.ws,
        f"update audit_events set body = :b where {where}",
        b=canonical_json(event),
        p=CHAIN,
    )
    code, output = run("prove-consistency", str(home.old), "--to", str(home.new))
    assert code == 1
    assert f"does not match {home.old}" in output


def test_pruned_chain_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = tmp_path / "pruned"
    monkeypatch.setenv("ENGINE_HOME", str(ws))
    monkeypatch.setenv("AUDIT_SECRET_KEY", "consistency-test-key")
    log_events(ws, 6)
    old = chain_checkpoints(ws)[0]
    monkeypatch.setenv("AUDIT_MAX_EVENTS", "3")
    log_events(ws, 6)
    code, output = run("prove-consistency", str(old))
    assert code == 1
    assert f"{CHAIN} was pruned by retention" in output
    assert "consistency proofs for pruned chains are not supported" in output


def test_reading_the_trail_is_audited(home: Home, tmp_path: Path) -> None:
    prove(tmp_path, str(home.old), "--to", str(home.new))
    code, output = run(
        "query", "--producer", "audit-access", "--action", "audit_trail_read", "--format", "json"
    )
    assert code == 0, output
    details = [e["details"] for e in orjson.loads(output)]
    assert {
        "operation": "prove-consistency",
        "producer": CHAIN,
        "old_size": size_of(home.old),
        "new_size": size_of(home.new),
    } in details


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no-such-checkpoint.json"], "is neither a checkpoint file nor a tree size"),
        (["12"], "is a tree size (12): name the chain with --producer"),
        (["{old}", "--producer", "audit-access"], "is a checkpoint of pipeline:sync, not"),
        (["{old}", "--to", "soon"], "'soon' is neither a checkpoint file nor a tree size"),
    ],
)
def test_usage_errors_exit_2(home: Home, args: list[str], message: str) -> None:
    code, output = run("prove-consistency", *[a.format(old=home.old) for a in args])
    assert code == 2, output
    assert message in " ".join(output.split())


def test_failures_exit_1_naming_the_checkpoint(home: Home) -> None:
    code, output = run("prove-consistency", str(home.new), "--to", str(home.old))
    assert code == 1
    assert f"{home.old} (tree size {size_of(home.old)}) is older than {home.new}" in output
    code, output = run("prove-consistency", "7", "--producer", CHAIN)
    assert code == 1
    assert f"no checkpoint of {CHAIN} at tree size 7 in {home.ws / 'checkpoints'}" in output
    home.old.write_text("{not json")
    code, output = run("prove-consistency", str(home.old), "--to", str(home.new))
    assert code == 1
    assert f"unreadable checkpoint {home.old}" in output


def test_help_documents_consistency_proofs() -> None:
    code, output = run("--help")
    assert code == 0
    flat = " ".join(output.split())
    assert "prove-consistency OLD [--to NEW]" in flat
    assert "prefix of a newer one, so the chain only grew" in flat
