"""The seed's audit examples and the security-events pipeline run as documented."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from engine.cli.audit import audit

ROOT = Path(__file__).resolve().parents[2]


def test_seed_examples_run_as_written(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIT_", "ENGINE_HOME"))}
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "audit_seed.py")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=True,
        timeout=120,
    )
    out = result.stdout
    assert "Total Events: 2" in out  # in the report (SOX, PCI DSS)
    assert "Active Rules: 0" in out and "Event integrity: True" in out
    assert "'by_actor': {'admin': " in out  # the failed login ranks first
    assert "inventory_001: fail, {'inventory_001': 1}" in out
    assert "compliance rule inventory_001" in result.stderr  # the notify log line
    assert (tmp_path / ".engine" / "audit.db").exists()


def test_security_events_pipeline_example(tmp_path: Path) -> None:
    folder = tmp_path / "examples"
    shutil.copytree(ROOT / "examples", folder, ignore=shutil.ignore_patterns(".engine", "out"))
    env = {**os.environ, "AUDIT_SECRET_KEY": "example"}
    env.pop("ENGINE_HOME", None)
    subprocess.run(
        [sys.executable, "-m", "engine.cli", "run", str(folder / "audit_security_events.toml")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    report = tmp_path / "report.html"
    result = CliRunner(env={"AUDIT_SECRET_KEY": "example"}).invoke(
        audit,
        [
            "report", "--workspace", str(folder / ".engine"), "--from", "2024-03-01",
            "--format", "html", "-o", str(report),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    html = report.read_text()
    for rule in (
        "PCI_DSS-3.4-pan-masked",
        "PCI_DSS-10.2.1.4-auth-burst",
        "HIPAA-164.312.b-identifiers",
        "GDPR-5.1.c-pseudonymisation",
    ):
        assert rule in html
    assert "4111 1111 1111 1111" not in html and "123-45-6789" not in html
