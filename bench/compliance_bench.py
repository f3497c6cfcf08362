"""Cost of the compliance rules on event logging: events/s without rules and with every
built-in rule on (issue 4: at most 2x slower).

    python bench/compliance_bench.py [--events 50000] [--batch 256] [--repeat 3]

Two workloads through the real writer into a fresh SQLite store: the runtime's own batch
events (trusted details: counts and digests) and API-style events with free-form details
(redacted, scanned for card numbers, identifiers and personal fields; one in 50 carries a
card number, one in 20 is a failed login). Best of ``--repeat`` runs, CPU time.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from engine.audit.wiring import open_resources  # noqa: E402
from engine.ledger.events import AuditCategory, AuditLevel, Outcome  # noqa: E402
from engine.ledger.writer import AuditTrail  # noqa: E402
from engine.model.audit import AuditSettings  # noqa: E402

sys.path.insert(0, str(HERE))
from audit_bench import emit_runtime_event  # noqa: E402


def _runtime(trail: AuditTrail, i: int) -> None:
    emit_runtime_event(trail)


def _api(trail: AuditTrail, i: int) -> None:
    failed = i % 20 == 0
    details: dict[str, Any] = {"sku": f"SKU{i % 1000:04d}", "quantity": i % 97, "note": "restock"}
    if i % 50 == 0:
        details["note"] = "paid with 4111 1111 1111 1111"
    trail.emit(
        level=AuditLevel.WARNING if failed else AuditLevel.INFO,
        category=AuditCategory.SECURITY if failed else AuditCategory.INVENTORY,
        action="login_failed" if failed else "inventory_modification",
        resource="portal" if failed else "SKU001",
        outcome=Outcome.FAILURE if failed else Outcome.SUCCESS,
        user_id=f"user{i % 7}",
        host="bench-host",
        ip_address="10.0.0.1",
        details=details,
    )


WORKLOADS = {"runtime": _runtime, "api": _api}


def once(workload: str, events: int, batch: int, rules: bool) -> float:
    """CPU seconds to log ``events`` events."""
    emit = WORKLOADS[workload]
    with tempfile.TemporaryDirectory() as tmp:
        settings = AuditSettings(flush_every=batch, checkpoint_every=1_000_000, compliance=rules)
        res = open_resources(settings, Path(tmp) / ".engine")
        try:
            trail = res.trail(f"bench:{workload}", actor="bench")
            if not rules:
                trail.hooks = ()  # no rules, no risk contributions: the trail as in issue 3
            cpu = time.process_time()
            for i in range(events):
                emit(trail, i)
            trail.close()
            return time.process_time() - cpu
        finally:
            res.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # key generation and alert lines are not the point here
    worst = 0.0
    for workload in WORKLOADS:
        plain = min(once(workload, args.events, args.batch, False) for _ in range(args.repeat))
        ruled = min(once(workload, args.events, args.batch, True) for _ in range(args.repeat))
        ratio = ruled / plain
        worst = max(worst, ratio)
        print(
            f"{workload:>8}: {args.events / plain:>9,.0f} events/s without rules, "
            f"{args.events / ruled:>9,.0f} with every built-in rule: {ratio:.2f}x"
        )
    print(f"worst slowdown {worst:.2f}x (target: at most 2x)")
    sys.exit(0 if worst <= 2.0 else 1)


if __name__ == "__main__":
    main()
