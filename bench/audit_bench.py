"""Audit trail throughput: signed events appended per second, and verified per second.

    python bench/audit_bench.py [--events 200000] [--batch 5000] [--store URL]

Appends go through the real writer (canonical JSON, HMAC chain, Merkle frontier, one
transaction per batch) into a fresh SQLite store in a temporary workspace unless
``--store`` names another; verification walks the whole chain with checkpoints.
Targets (issue 3): 50,000 appended/s batched, 150,000 verified/s.
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
from engine.audit.trail import open_resources  # noqa: E402
from engine.audit.verify import verify_store  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=5_000, help="events per transaction")
    parser.add_argument("--store", default=None, help="SQLAlchemy URL (default: temp SQLite)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp) / ".engine"
        settings = AuditSettings(store=args.store, flush_every=args.batch, checkpoint_every=50_000)
        res = open_resources(settings, workspace)
        producer = f"pipeline:bench-{time.time_ns()}"
        try:
            trail = res.trail(producer, actor="engine")
            digest = "ab" * 32
            started = time.perf_counter()
            for _ in range(args.events):
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
                    digest=digest,
                    details={"role": "source", "type": "file"},
                    trusted_details=True,
                )
            trail.close()
            appended = time.perf_counter() - started

            started = time.perf_counter()
            report = verify_store(
                res.store,
                res.keyring,
                checkpoint_paths=[res.checkpoint_dir],
                public_keys=load_public_keys(workspace),
                producers=[producer],
            )
            verified = time.perf_counter() - started
        finally:
            res.close()

    if not report.ok:
        raise SystemExit(f"verification failed: {report.first_broken}")
    n = args.events
    print(f"store: {res.store.url}")
    print(f"appended  {n:>9,} signed events in {appended:6.2f}s: {n / appended:>10,.0f}/s")
    print(f"verified  {n:>9,} events       in {verified:6.2f}s: {n / verified:>10,.0f}/s")
    print(f"checkpoints checked: {report.chains[0].checkpoints_checked}")


if __name__ == "__main__":
    main()
