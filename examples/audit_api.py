"""The audit trail from Python: log signed events, verify them, read statistics and a report.

    python examples/audit_api.py

Keeps its state in a temporary workspace unless ENGINE_HOME names one: the workspace rule
of every command (docs/workspace.md), with no pipeline file.
"""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from engine.audit import (
    AuditCategory,
    AuditLevel,
    AuditSystem,
    ComplianceRule,
    ComplianceStandard,
)


def main() -> None:
    # None: AuditSystem follows the rule ($ENGINE_HOME, else ./.engine)
    workspace = None if os.environ.get("ENGINE_HOME") else Path(tempfile.mkdtemp()) / ".engine"
    with AuditSystem(secret_key="your-secret-key", workspace=workspace) as audit_system:
        workspace = audit_system.workspace
        event_id = audit_system.log_event(
            level=AuditLevel.INFO,
            category=AuditCategory.INVENTORY,
            action="inventory_modification",
            resource="SKU001",
            details={"quantity": 100, "previous_quantity": 50},
            user_id="user123",
            ip_address="192.168.1.100",
        )
        audit_system.log_event(
            level=AuditLevel.WARNING,
            category=AuditCategory.SECURITY,
            action="authentication_failed",
            resource="user_account",
            details={"attempts": 3, "password": "never stored"},
            user_id="admin",
        )
        audit_system.compliance_rules["inventory_001"] = ComplianceRule(
            rule_id="inventory_001",
            name="High Value Inventory Tracking",
            description="Track high-value inventory modifications",
            standard=ComplianceStandard.SOX,
            severity=AuditLevel.INFO,
            conditions={"action": "inventory_modification", "value_threshold": 1000},
            actions=["log_event", "notify_compliance"],
        )

        print(f"Event integrity: {audit_system.verify_integrity(event_id)}")
        stats = audit_system.get_statistics()
        print(f"Total Events: {stats['total_events']}")
        print(f"Average Risk Score: {stats['average_risk_score']:.3f}")
        print(f"Active Rules: {stats['active_rules']}")

        end_date = datetime.now(UTC)
        report = audit_system.generate_compliance_report(
            end_date - timedelta(days=30), end_date, [ComplianceStandard.SOX]
        )
        print(f"Compliance Report: {report.report_id}")
        print(f"Rule matches: {report.rule_matches}")
    print(f"Trail kept in {workspace}; check it with: engine audit verify --workspace {workspace}")


if __name__ == "__main__":
    main()
