"""Verification split across worker processes reports exactly what one process does."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from engine.audit.keys import load_public_keys
from engine.audit.trail import AuditResources
from engine.audit.verify import ProblemKind, VerifyReport, verify_store
from tests.support.audit import fill, store_sql

PRODUCER = "pipeline:sync"
EVENTS = 60


def verify(res: AuditResources, workers: int) -> VerifyReport:
    return verify_store(
        res.store,
        res.keyring,
        checkpoint_paths=[res.checkpoint_dir],
        public_keys=load_public_keys(res.workspace),
        workers=workers,
    )


def sql(res: AuditResources, statement: str, **params: object) -> list[tuple[object, ...]]:
    return store_sql(res.workspace, statement, **params)


def _no_change(res: AuditResources) -> None:
    pass


def _delete(seq: int) -> Callable[[AuditResources], None]:
    def change(res: AuditResources) -> None:
        sql(res, "DELETE FROM audit_events WHERE seq = :seq", seq=seq)

    return change


def _column(seq: int) -> Callable[[AuditResources], None]:
    def change(res: AuditResources) -> None:
        sql(res, "UPDATE audit_events SET action = 'x' WHERE seq = :seq", seq=seq)

    return change


def _body(seq: int) -> Callable[[AuditResources], None]:
    def change(res: AuditResources) -> None:
        sql(
            res,
            "UPDATE audit_events SET body = CAST(replace(CAST(body AS TEXT), :old, :new) "
            "AS BLOB) WHERE seq = :seq",
            old='"record_count":',
            new='"record_count":1',
            seq=seq,
        )

    return change


def _swap(a: int, b: int) -> Callable[[AuditResources], None]:
    def change(res: AuditResources) -> None:
        sql(res, "UPDATE audit_events SET seq = -1 WHERE seq = :a", a=a)
        sql(res, "UPDATE audit_events SET seq = :a WHERE seq = :b", a=a, b=b)
        sql(res, "UPDATE audit_events SET seq = :b WHERE seq = -1", b=b)

    return change


def _truncate(keep: int) -> Callable[[AuditResources], None]:
    def change(res: AuditResources) -> None:
        sql(res, "DELETE FROM audit_events WHERE seq > :keep", keep=keep)

    return change


# With 3 workers, the 60 events split into 1-20, 21-40 and 41-60.
CASES = {
    "intact": (_no_change, set()),
    "deleted at a segment's start": (_delete(21), {ProblemKind.MISSING, ProblemKind.BROKEN_LINK}),
    "deleted at a segment's end": (_delete(40), {ProblemKind.MISSING, ProblemKind.BROKEN_LINK}),
    "deleted inside a segment": (_delete(50), {ProblemKind.MISSING, ProblemKind.BROKEN_LINK}),
    "column changed in a worker's segment": (_column(33), {ProblemKind.COLUMN_MISMATCH}),
    "body changed in the last segment": (_body(59), {ProblemKind.MODIFIED}),
    "events swapped across a boundary": (
        _swap(20, 21),
        {ProblemKind.BROKEN_LINK, ProblemKind.COLUMN_MISMATCH},
    ),
    "tail truncated": (_truncate(45), {ProblemKind.TRUNCATED}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_parallel_report_equals_sequential(resources: AuditResources, name: str) -> None:
    fill(resources.trail(PRODUCER), EVENTS)
    change, expected = CASES[name]
    change(resources)
    alone = verify(resources, workers=1)
    split = verify(resources, workers=3)
    assert split.to_dict() == alone.to_dict()
    assert {p.kind for p in split.all_problems()} >= expected
    assert split.ok is (not expected)
    if not expected:
        assert split.events == EVENTS
        assert split.chains[0].checkpoints_checked == alone.chains[0].checkpoints_checked > 10
