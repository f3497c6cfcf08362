"""Audit trail throughput: signed events appended per second, and verified per second.

    python bench/audit_bench.py [--events 200000] [--batch 5000] [--repeat 3] [--store URL]

Appends go through the real writer (canonical JSON, HMAC chain, Merkle frontier,
compliance rules, one transaction per batch) into a fresh SQLite store in a temporary
workspace unless ``--store`` names another, twice: in a plain process (as the Python API
appends) and under the garbage-collector settings a pipeline run holds while it emits its
events (:func:`engine.runtime.heap.gc_tuned`). Verification walks the whole chain with its
checkpoints, in one process and split across one process per core. Reports the best of
``--repeat`` runs, and two floors measured in the same run: bare ``sqlite3`` inserts of the
same rows (what storing alone costs here) and reading them back. Targets (issue 3):
50,000 appended/s batched, 150,000 verified/s.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from itertools import chain
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from sqlalchemy import create_engine  # noqa: E402

from engine.audit.wiring import AuditResources, open_resources  # noqa: E402
from engine.ledger.events import AuditCategory, AuditLevel  # noqa: E402
from engine.ledger.keys import load_public_keys  # noqa: E402
from engine.ledger.schema import metadata  # noqa: E402
from engine.ledger.store import SQLITE_PAGE_SIZE, SQLITE_WAL_PAGES  # noqa: E402
from engine.ledger.verify import verify_store  # noqa: E402
from engine.ledger.writer import AuditTrail  # noqa: E402
from engine.model.audit import AuditSettings  # noqa: E402
from engine.runtime.heap import gc_tuned  # noqa: E402


def emit_runtime_event(trail: AuditTrail) -> None:
    """One event as the runtime writes it for a batch read (the benchmarks' workload)."""
    trail.emit(
        level=AuditLevel.INFO,
        category=AuditCategory.INTEGRATION,
        action="batch_read",
        resource="data/inventory.csv",
        user_id="bench",
        host="bench-host",
        pipeline="bench",
        run_id="run-1",
        stage="warehouse",
        record_count=2000,
        digest="ab" * 32,
        details={"role": "source", "type": "file"},
        trusted_details=True,
    )


def floor(rows: list[tuple[object, ...]], batch: int) -> tuple[float, float]:
    """Seconds to insert ``rows`` with bare sqlite3 into the same table (same indexes,
    pragmas and statements of many rows as the store, one transaction per ``batch``), and
    to read them back."""
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "floor.db", isolation_level=None)
        db.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_PAGES}")
        db.execute("PRAGMA synchronous=FULL")
        with create_engine(f"sqlite:///{Path(tmp) / 'floor.db'}").begin() as conn:
            metadata.create_all(conn)
        marks = f"({','.join('?' * len(rows[0]))})"
        per = 32_766 // len(rows[0])
        start = time.perf_counter()
        for i in range(0, len(rows), batch):
            db.execute("BEGIN IMMEDIATE")
            for j in range(i, min(i + batch, len(rows)), per):
                chunk = rows[j : min(j + per, i + batch, len(rows))]
                values = ",".join([marks] * len(chunk))
                db.execute(f"INSERT INTO audit_events VALUES {values}", list(chain(*chunk)))
            db.execute("COMMIT")
        insert = time.perf_counter() - start
        start = time.perf_counter()
        db.execute("SELECT * FROM audit_events ORDER BY producer, seq").fetchall()
        read = time.perf_counter() - start
        db.close()
    return insert, read


def append(res: AuditResources, producer: str, events: int) -> float:
    """Seconds to emit ``events`` runtime events to a new chain and close it."""
    trail = res.trail(producer, actor="engine")
    wall = time.perf_counter()
    for _ in range(events):
        emit_runtime_event(trail)
    trail.close()
    return time.perf_counter() - wall


def once(events: int, batch: int, store: str | None) -> tuple[float, ...]:
    """Seconds: append, append under the run's GC settings, verify alone, verify split,
    insert floor, read floor."""
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / ".engine"
        settings = AuditSettings(store=store, flush_every=batch, checkpoint_every=50_000)
        res = open_resources(settings, workspace)
        producer = f"pipeline:bench-{time.time_ns()}"
        try:
            plain = append(res, producer, events)
            with gc_tuned():
                in_run = append(res, f"{producer}-run", events)
            verify = []
            for workers in (1, None):
                wall = time.perf_counter()
                report = verify_store(
                    res.store,
                    res.keyring,
                    checkpoint_paths=[res.checkpoint_dir],
                    public_keys=load_public_keys(workspace),
                    producers=[producer],
                    workers=workers,
                )
                verify.append(time.perf_counter() - wall)
                if not report.ok or report.events != events:
                    raise SystemExit(f"verification failed: {report.first_broken}")
            rows = [tuple(r) for r in res.store.iter_chain_raw(producer)]
        finally:
            res.close()
    return (plain, in_run, *verify, *floor(rows, batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000, help="events per transaction")
    parser.add_argument("--repeat", type=int, default=3, help="report the best run")
    parser.add_argument("--store", default=None, help="SQLAlchemy URL (default: temp SQLite)")
    args = parser.parse_args()
    runs = [once(args.events, args.batch, args.store) for _ in range(args.repeat)]
    n = args.events
    plain, in_run, alone, split, insert, read = (min(r[i] for r in runs) for i in range(6))
    print(f"events: {n:,} per run, {args.batch:,} per transaction, best of {args.repeat}")
    print(f"appended:                 {n / plain:>10,.0f}/s")
    print(f"appended, run GC settings:{n / in_run:>10,.0f}/s ({plain / in_run:.2f}x)")
    print(f"verified, one process:    {n / alone:>10,.0f}/s")
    print(f"verified, one per core:   {n / split:>10,.0f}/s ({alone / split:.2f}x)")
    print(f"floor: bare sqlite3 insert of the same rows {n / insert:>10,.0f}/s")
    print(f"floor: reading them back                    {n / read:>10,.0f}/s")
    print(f"appending takes {plain / insert:.2f}x the bare insert")


if __name__ == "__main__":
    main()
