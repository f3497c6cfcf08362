"""A compliance halt stops `engine run` with the rule's words, whatever on_error says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli.main import cli
from engine.compliance.rules.conditions import RuleError
from engine.compliance.rules.policy import ComplianceHalt
from engine.components.sinks.audit import AuditHalt
from engine.errors import EngineError, FatalError

PIPELINE = """\
[pipeline]
name = "halting"

[sources.events]
type = "file"
path = "events.jsonl"

[sinks.trail]
type = "audit"
inputs = ["events"]
on_error = "dead_letter"

[audit]
rules_file = "rules.yaml"

[dead_letter]
path = "dead.jsonl"
max_rejected = "100%"
"""


def test_halts_and_bad_rules_are_fatal_engine_errors() -> None:
    for error in (AuditHalt, ComplianceHalt, RuleError):
        assert issubclass(error, FatalError) and issubclass(error, EngineError)


def test_a_compliance_halt_prints_the_rule_not_a_class_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENGINE_HOME", str(tmp_path / ".engine"))
    monkeypatch.setenv("AUDIT_SECRET_KEY", "halt-test-key")
    rows = [{"action": "read"}, {"action": "export_all"}, {"action": "read"}]
    (tmp_path / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - id: no-exports\n    when: \"action == 'export_all'\"\n"
        "    actions: [log_event, halt]\n"
    )
    path = tmp_path / "pipeline.toml"
    path.write_text(PIPELINE)
    result = CliRunner().invoke(cli, ["run", str(path)])
    output = result.stdout + result.stderr
    assert result.exit_code not in (0, None), output
    assert "compliance rule no-exports" in output
    assert "halted the run" in output
    assert "AuditHalt" not in output and "Traceback" not in output
    # on_error = "dead_letter" did not route the halting record.
    assert not (tmp_path / "dead.jsonl").exists()
