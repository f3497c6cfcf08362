"""The audit examples run and print what they promise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from engine.cli.audit import audit

ROOT = Path(__file__).resolve().parents[2]


def test_audit_api_example(tmp_path: Path) -> None:
    env = {**os.environ, "ENGINE_HOME": str(tmp_path)}
    env.pop("AUDIT_SECRET_KEY", None)
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "audit_api.py")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    assert "Event integrity: True" in result.stdout
    assert "Total Events: 2" in result.stdout
    assert "Active Rules: 1" in result.stdout
    # inventory_001's value_threshold is 1000; the example changes 100 units.
    assert "Rule matches: {}" in result.stdout
    workspace = tmp_path  # ENGINE_HOME is the workspace, as for every command
    assert f"Trail kept in {workspace}" in result.stdout
    verified = CliRunner(env={"AUDIT_SECRET_KEY": "your-secret-key"}).invoke(
        audit, ["verify", "--workspace", str(workspace)]
    )
    assert verified.exit_code == 0, verified.output
