"""The seed's audit examples, as written there, with ``engine.`` imports.

    cd "$(mktemp -d)" && python /path/to/examples/audit_seed.py

Logging, a compliance report, statistics, integrity verification, a custom rule and
custom risk thresholds. ``AuditSystem()`` keeps its trail in ``./.engine`` (or
``$ENGINE_HOME``), so run it from a scratch folder.
"""

# ruff: noqa: E402, I001 - the seed's snippets, one after the other, imports included

# --- Audit System Usage -------------------------------------------------------------
from engine.audit import AuditSystem, AuditLevel, AuditCategory, ComplianceStandard

# Initialize audit system
audit_system = AuditSystem()

# Log inventory modification
event_id = audit_system.log_event(
    level=AuditLevel.INFO,
    category=AuditCategory.INVENTORY,
    action="inventory_modification",
    resource="SKU001",
    details={
        "quantity": 100,
        "previous_quantity": 50,
        "user_id": "user123",
        "timestamp": "2024-01-15T10:30:00Z",
    },
    user_id="user123",
    ip_address="192.168.1.100",
)

# Log security event
event_id = audit_system.log_event(
    level=AuditLevel.WARNING,
    category=AuditCategory.SECURITY,
    action="authentication_failed",
    resource="user_account",
    details={"attempts": 3, "ip_address": "192.168.1.200", "user_agent": "Mozilla/5.0..."},
    user_id="admin",
)

# Generate compliance report
from datetime import datetime, timedelta

end_date = datetime.now()
start_date = end_date - timedelta(days=30)

report = audit_system.generate_compliance_report(
    start_date, end_date, [ComplianceStandard.SOX, ComplianceStandard.PCI_DSS]
)

print(f"Compliance Report: {report.report_id}")
print(f"Total Events: {report.total_events}")
print(f"Risk Analysis: {report.risk_analysis}")
print(f"Recommendations: {report.recommendations}")

# Get audit statistics
stats = audit_system.get_statistics()
print(f"Total Events: {stats['total_events']}")
print(f"Average Risk Score: {stats['average_risk_score']:.3f}")
print(f"Active Rules: {stats['active_rules']}")

# Verify event integrity
is_valid = audit_system.verify_integrity(event_id)
print(f"Event integrity: {is_valid}")

# --- Compliance Rule Configuration ----------------------------------------------------
from engine.audit import ComplianceRule, ComplianceStandard, AuditLevel

# Create custom compliance rule
custom_rule = ComplianceRule(
    rule_id="custom_001",
    name="Custom Inventory Rule",
    description="Custom rule for inventory operations",
    standard=ComplianceStandard.CUSTOM,
    severity=AuditLevel.WARNING,
    conditions={"action": "inventory_modification", "threshold": 0.5},
    actions=["log_event", "notify_admin"],
    enabled=True,
)

# Add rule to audit system
audit_system.compliance_rules["custom_001"] = custom_rule

# --- Audit System Configuration ---------------------------------------------------------
# Customize audit system
audit_system = AuditSystem(secret_key="your-secret-key")

# Configure risk thresholds
audit_system.risk_thresholds = {"low": 0.2, "medium": 0.5, "high": 0.8, "critical": 0.9}

# Add custom compliance rules
custom_rule = ComplianceRule(
    rule_id="inventory_001",
    name="High Value Inventory Tracking",
    description="Track high-value inventory modifications",
    standard=ComplianceStandard.SOX,
    severity=AuditLevel.INFO,
    conditions={"action": "inventory_modification", "value_threshold": 1000},
    actions=["log_event", "notify_compliance"],
)
audit_system.compliance_rules["inventory_001"] = custom_rule

# --- Not in the seed: show the rule at work, then close (writes the final checkpoint) ---
audit_system.log_event(
    level=AuditLevel.INFO,
    category=AuditCategory.INVENTORY,
    action="inventory_modification",
    resource="SKU002",
    details={"quantity": 5000, "previous_quantity": 20},
    user_id="user123",
)
end_date = datetime.now() + timedelta(seconds=1)
report = audit_system.generate_compliance_report(
    end_date - timedelta(days=1), end_date, [ComplianceStandard.SOX]
)
print(f"inventory_001: {report.rule('inventory_001').status}, {report.rule_matches}")
audit_system.close()
