"""The signed, chained, provable audit trail."""
