"""Audit trail throughput: signed events appended per second, and verified per second.

    python bench/audit_bench.py [--events 200000] [--batch 5000] [--repeat 3] [--store URL]

Appends go through the real writer (canonical JSON, HMAC chain, Merkle frontier, one
transaction per batch) into a fresh SQLite store in a temporary workspace unless
``--store`` names another; verification walks the whole chain with its checkpoints.
Reports the best of ``--repeat`` runs, as wall-clock and as CPU-time rates (the latter is
steadier on a shared machine). Targets (issue 3): 50,000 appended/s batched, 150,000
verified/s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from engine.audit.events import AuditCategory, AuditLevel  # noqa: E402
from engine.audit.keys import load_public_keys  # noqa: E402
from engine.audit.settings import AuditSettings  # noqa: E402
from engine.audit.trail import AuditTrail, open_resources  # noqa: E402
from engine.audit.verify import verify_store  # noqa: E402


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


def once(events: int, batch: int, store: str | None) -> tuple[float, float, float, float]:
    """(append wall, append cpu, verify wall, verify cpu) in seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / ".engine"
        settings = AuditSettings(store=store, flush_every=batch, checkpoint_every=50_000)
        res = open_resources(settings, workspace)
        producer = f"pipeline:bench-{time.time_ns()}"
        try:
            trail = res.trail(producer, actor="engine")
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(events):
                emit_runtime_event(trail)
            trail.close()
            append = (time.perf_counter() - wall, time.process_time() - cpu)

            wall, cpu = time.perf_counter(), time.process_time()
            report = verify_store(
                res.store,
                res.keyring,
                checkpoint_paths=[res.checkpoint_dir],
                public_keys=load_public_keys(workspace),
                producers=[producer],
            )
            verify = (time.perf_counter() - wall, time.process_time() - cpu)
        finally:
            res.close()
    if not report.ok or report.events != events:
        raise SystemExit(f"verification failed: {report.first_broken}")
    return (*append, *verify)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000, help="events per transaction")
    parser.add_argument("--repeat", type=int, default=3, help="report the best run")
    parser.add_argument("--store", default=None, help="SQLAlchemy URL (default: temp SQLite)")
    args = parser.parse_args()
    runs = [once(args.events, args.batch, args.store) for _ in range(args.repeat)]
    n = args.events
    best = [min(r[i] for r in runs) for i in range(4)]
    print(f"events: {n:,} per run, {args.batch:,} per transaction, best of {args.repeat}")
    print(f"appended: {n / best[0]:>10,.0f}/s wall   {n / best[1]:>10,.0f}/s cpu")
    print(f"verified: {n / best[2]:>10,.0f}/s wall   {n / best[3]:>10,.0f}/s cpu")


if __name__ == "__main__":
    main()
