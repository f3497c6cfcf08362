"""Signing, chaining and verification, and every attack the issue lists."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import orjson

from engine.audit.canonical import canonical_json
from engine.audit.checkpoint import load_checkpoints
from engine.audit.events import GENESIS_MAC, AuditEvent
from engine.audit.keys import derive_key_id, load_keyring, load_public_keys
from engine.audit.merkle import leaf_hash, merkle_root
from engine.audit.trail import AuditResources
from engine.audit.verify import ProblemKind, VerifyReport, verify_store
from tests.support.audit import fill, store_sql

PRODUCER = "pipeline:sync"


def verify(res: AuditResources, **kwargs: object) -> VerifyReport:
    return verify_store(
        res.store,
        kwargs.pop("keyring", res.keyring),  # type: ignore[arg-type]
        checkpoint_paths=[res.checkpoint_dir],
        public_keys=load_public_keys(res.workspace),
    )


def db_path(res: AuditResources) -> Path:
    return res.workspace / "audit.db"


def sql(res: AuditResources, statement: str, **params: object) -> list[tuple[object, ...]]:
    return store_sql(res.workspace, statement, **params)


def kinds(report: VerifyReport) -> set[ProblemKind]:
    return {p.kind for p in report.all_problems()}


def test_intact_trail_verifies_and_mac_formula_holds(resources: AuditResources) -> None:
    fill(resources.trail(PRODUCER), 10)
    report = verify(resources)
    assert report.ok, report.to_dict()
    assert report.events == 10
    assert report.chains[0].checkpoints_checked >= 2  # every 4 events and at close
    rows = list(resources.store.iter_chain(PRODUCER))
    assert [r.seq for r in rows] == list(range(1, 11))
    prev = GENESIS_MAC
    for row in rows:
        body = orjson.loads(row.body)
        assert canonical_json(body) == row.body
        expected = hmac.new(
            resources.keyring.current, bytes.fromhex(prev) + row.body, hashlib.sha256
        ).hexdigest()
        assert row.mac == expected and body["prev_mac"] == prev
        prev = row.mac
        event = AuditEvent.model_validate({**body, "mac": row.mac})
        assert canonical_json(event.signed_body()) == row.body
    # The head's Merkle root is the root over the bodies, and the last checkpoint says so.
    head = resources.store.head(PRODUCER)
    assert head is not None
    assert head.frontier.root() == merkle_root([bytes(r.body) for r in rows])
    last = load_checkpoints([resources.checkpoint_dir])[-1]
    assert last.tree_size == 10 and last.root == head.frontier.root().hex()
    assert leaf_hash(rows[0].body) == hashlib.sha256(b"\x00" + rows[0].body).digest()


def test_changed_field_in_body_is_named(resources: AuditResources) -> None:
    ids = fill(resources.trail(PRODUCER), 6)
    (body,) = sql(resources, "select body from audit_events where seq = 3")[0]
    data = orjson.loads(body)  # type: ignore[arg-type]
    data["record_count"] = 999_999
    sql(resources, "update audit_events set body = :b where seq = 3", b=canonical_json(data))
    report = verify(resources)
    assert not report.ok
    first = report.first_broken
    assert first is not None and first.kind is ProblemKind.MODIFIED
    assert first.seq == 3 and first.event_id == ids[2]
    assert ids[2] in first.message


def test_changed_column_only_is_detected(resources: AuditResources) -> None:
    ids = fill(resources.trail(PRODUCER), 4)
    sql(resources, "update audit_events set level = 'DEBUG' where seq = 2")
    report = verify(resources)
    assert ProblemKind.COLUMN_MISMATCH in kinds(report)
    first = report.first_broken
    assert first is not None and first.event_id == ids[1] and "level" in first.message


def test_deleted_middle_event(resources: AuditResources) -> None:
    ids = fill(resources.trail(PRODUCER), 7)
    sql(resources, "delete from audit_events where seq = 4")
    report = verify(resources)
    chain = report.chains[0]
    assert chain.missing == [4]
    assert ProblemKind.BROKEN_LINK in kinds(report)
    first = report.first_broken
    assert first is not None and first.seq == 5 and first.event_id == ids[4]
    assert "missing sequence numbers: 4" in [p.message for p in chain.problems]


def test_two_events_swapped(resources: AuditResources) -> None:
    fill(resources.trail(PRODUCER), 6)
    cols = "event_id, timestamp, level, category, action, pipeline, run_id, user_id, stage, "
    cols += "risk_score, mac, body"
    r2 = sql(resources, f"select {cols} from audit_events where seq = 2")[0]
    r3 = sql(resources, f"select {cols} from audit_events where seq = 3")[0]
    names = [c.strip() for c in cols.split(",")]
    sql(resources, "update audit_events set event_id = 'tmp' where seq = 3")
    for seq, row in ((2, r3), (3, r2)):
        assignments = ", ".join(f"{n} = :{n}" for n in names)
        sql(
            resources,
            f"update audit_events set {assignments} where seq = :seq",
            seq=seq,
            **dict(zip(names, row, strict=True)),
        )
    report = verify(resources)
    assert ProblemKind.REORDERED in kinds(report)
    assert report.chains[0].missing == []  # moved, not deleted
    first = report.first_broken
    assert first is not None and first.seq == 3  # event #3 stored where #2 belongs


def test_forged_event_inserted_without_the_key(resources: AuditResources) -> None:
    fill(resources.trail(PRODUCER), 5)
    # The attacker shifts events 4.. up by one and inserts a plausible event as #4,
    # chained to the real #3 but MAC'd with a key of their own.
    sql(resources, "update audit_events set seq = seq + 10 where seq >= 4")
    sql(resources, "update audit_events set seq = seq - 9 where seq >= 14")
    (body3, mac3) = sql(resources, "select body, mac from audit_events where seq = 3")[0]
    forged = orjson.loads(body3)  # type: ignore[arg-type]
    forged.update(seq=4, event_id="f" * 32, prev_mac=mac3, action="approve_payment")
    forged_body = canonical_json(forged)
    forged_mac = hmac.new(b"guess", bytes.fromhex(str(mac3)) + forged_body, "sha256").hexdigest()
    sql(
        resources,
        "insert into audit_events values (:p, 4, :e, :t, 'INFO', 'INTEGRATION', "
        "'approve_payment', 'sync', 'run-1', null, 'warehouse', 0.1, :mac, :b)",
        p=PRODUCER,
        e="f" * 32,
        t=forged["timestamp"],
        mac=forged_mac,
        b=forged_body,
    )
    report = verify(resources)
    first = report.first_broken
    assert first is not None and first.event_id == "f" * 32
    assert first.kind is ProblemKind.MODIFIED


def test_tail_truncation_detected_against_checkpoint(resources: AuditResources) -> None:
    fill(resources.trail(PRODUCER), 9)
    # A thorough attacker deletes the tail and rewinds the chain head too.
    (mac6,) = sql(resources, "select mac from audit_events where seq = 6")[0]
    sql(resources, "delete from audit_events where seq > 6")
    sql(resources, "update audit_chain_heads set seq = 6, mac = :m", m=mac6)
    report = verify(resources)
    chain = report.chains[0]
    assert chain.truncated
    assert any(
        p.kind is ProblemKind.TRUNCATED
        and "records 9 events, the trail ends at event #6" in p.message
        for p in chain.problems
    ), chain.problems
    # Without checkpoints, a rewound head hides the truncation: that is why they exist.
    blind = verify_store(resources.store, resources.keyring)
    assert blind.ok


def test_wrong_key(resources: AuditResources, workspace: Path) -> None:
    ids = fill(resources.trail(PRODUCER), 3)
    wrong = load_keyring(workspace.parent / "elsewhere", key="not-the-key")
    report = verify(resources, keyring=wrong)
    first = report.first_broken
    assert first is not None and first.kind is ProblemKind.WRONG_KEY
    assert first.event_id == ids[0] and "wrong key" in first.message


def test_corrupted_checkpoint_signature(resources: AuditResources) -> None:
    fill(resources.trail(PRODUCER), 5)
    path = sorted(resources.checkpoint_dir.rglob("*.json"))[-1]
    data = orjson.loads(path.read_bytes())
    sig = bytearray(data["signature"].encode())
    sig[5] = ord("A") if sig[5] != ord("A") else ord("B")
    data["signature"] = sig.decode()
    path.write_bytes(orjson.dumps(data))
    report = verify(resources)
    assert not report.ok
    assert any(
        p.kind is ProblemKind.CHECKPOINT_SIGNATURE and str(path) in p.message
        for p in report.all_problems()
    )


def test_rewritten_history_with_stolen_hmac_key_caught_by_checkpoint(
    resources: AuditResources,
) -> None:
    fill(resources.trail(PRODUCER), 4)
    # Re-sign the whole chain with the real HMAC key, changing event 2: MACs all verify,
    # but the Ed25519-signed checkpoint root no longer matches.
    rows = sql(resources, "select seq, body from audit_events order by seq")
    prev = GENESIS_MAC
    key = resources.keyring.current
    for seq, body in rows:
        data = orjson.loads(body)  # type: ignore[arg-type]
        if seq == 2:
            data["record_count"] = 12345
        data["prev_mac"] = prev
        new_body = canonical_json(data)
        mac = hmac.new(key, bytes.fromhex(prev) + new_body, "sha256").hexdigest()
        sql(
            resources,
            "update audit_events set body = :b, mac = :m where seq = :s",
            b=new_body,
            m=mac,
            s=seq,
        )
        prev = mac
    report = verify(resources)
    assert kinds(report) == {ProblemKind.ROOT_MISMATCH}


def test_rotated_key_still_verifies(workspace: Path, resources: AuditResources) -> None:
    from engine.audit.keys import rotate_hmac_key

    fill(resources.trail(PRODUCER), 3)
    old_id = resources.keyring.current_id
    new_id = rotate_hmac_key(workspace)
    assert new_id != old_id
    ring = load_keyring(workspace)
    assert ring.current_id == new_id and old_id in ring.keys
    from engine.audit.trail import AuditTrail

    trail = AuditTrail(
        resources.store,
        ring,
        producer=PRODUCER,
        signing=resources.signing,
        checkpoint_dir=resources.checkpoint_dir,
    )
    fill(trail, 2)
    report = verify(resources, keyring=ring)
    assert report.ok, report.to_dict()
    key_ids = {orjson.loads(r.body)["key_id"] for r in resources.store.iter_chain(PRODUCER)}
    assert key_ids == {old_id, new_id}
    assert derive_key_id(ring.keys[new_id]) == new_id
