"""One settings object: every variable declared in engine/settings.py, read at the entry
points, a bad value refused with its name (through the real `engine` command)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field, SecretStr

from engine.errors import SettingsError
from engine.runtime.retry import default_policy
from engine.settings import SETTINGS_DOC, EngineSettings, render_settings_doc
from engine.workspace import workspace_for

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart.toml"


def engine(*args: str, env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """``engine ARGS`` in a child process whose environment is exactly ``env`` (plus PATH)."""
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "SYSTEMROOT")}
    return subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_bad_variable_stops_the_cli_with_78_naming_it(tmp_path: Path) -> None:
    env = {"ENGINE_HOME": str(tmp_path), "INTEGRATION_RETRY_COUNT": "abc"}
    result = engine("validate", str(QUICKSTART), env=env)
    assert result.returncode == 78, result.stderr
    assert "INTEGRATION_RETRY_COUNT: not an integer ('abc')" in result.stderr
    assert "Traceback" not in result.stderr


def test_every_bad_variable_is_reported_at_once(tmp_path: Path) -> None:
    env = {
        "ENGINE_HOME": str(tmp_path),
        "AUDIT_MAX_EVENTS": "0",
        "ENGINE_AUDIT": "maybe",
        "INTEGRATION_TIMEOUT": "soon",
    }
    result = engine("run", str(QUICKSTART), env=env)
    assert result.returncode == 78
    assert "AUDIT_MAX_EVENTS: must be at least 1 ('0')" in result.stderr
    assert "ENGINE_AUDIT: not a boolean" in result.stderr
    assert "INTEGRATION_TIMEOUT: not a number ('soon')" in result.stderr
    assert "3 invalid environment variables; nothing was run" in result.stderr
    assert not list(tmp_path.iterdir())  # nothing was run, nothing written


def test_the_audit_commands_refuse_a_bad_variable_too(tmp_path: Path) -> None:
    result = engine(
        "audit", "stats", env={"ENGINE_HOME": str(tmp_path), "AUDIT_RETENTION_DAYS": "a year"}
    )
    assert result.returncode == 78
    assert "AUDIT_RETENTION_DAYS: not an integer ('a year')" in result.stderr


def test_good_variables_reach_the_run(tmp_path: Path) -> None:
    work = tmp_path / "work"
    home = tmp_path / "home"
    work.mkdir()
    (work / "data").mkdir()
    (work / "data" / "inventory.csv").write_bytes(
        (QUICKSTART.parent / "data" / "inventory.csv").read_bytes()
    )
    pipeline = work / "quickstart.toml"
    pipeline.write_text(QUICKSTART.read_text())
    env = {"ENGINE_HOME": str(home), "ENGINE_AUDIT": "off", "INTEGRATION_RETRY_COUNT": "0"}
    result = engine("run", "-q", str(pipeline), env=env, cwd=work)
    assert result.returncode == 0, result.stderr
    assert (home / "state.db").exists()  # ENGINE_HOME is the workspace
    assert not (home / "audit.db").exists()  # ENGINE_AUDIT=off: no trail
    assert not (work / ".engine").exists()


def test_load_parses_a_given_mapping_and_names_the_variable() -> None:
    settings = EngineSettings.load(
        {
            "ENGINE_HOME": "/srv/engine",
            "INTEGRATION_RETRY_COUNT": "5",
            "COMPLIANCE_PCI_DSS_ENABLED": "no",
            "INTEGRATION_REDIS_URL": "",  # empty counts as unset
        }
    )
    assert settings.engine_home == Path("/srv/engine")
    assert default_policy(settings.integration_retry_count).attempts == 6
    assert settings.compliance_switch("PCI_DSS") is False
    assert settings.compliance_switch("SOX") is None
    assert settings.integration_redis_url is None
    assert workspace_for(Path("/elsewhere/p.toml"), settings) == Path("/srv/engine")
    defaults = EngineSettings.load({})
    assert workspace_for(Path("/x/p.toml"), defaults) == Path("/x/.engine")
    assert (defaults.integration_timeout, defaults.integration_retry_count) == (30.0, 3)
    with pytest.raises(SettingsError) as caught:
        EngineSettings.load({"INTEGRATION_RETRY_COUNT": "abc", "INTEGRATION_RATE_LIMIT": "-1"})
    assert caught.value.problems == [
        "INTEGRATION_RETRY_COUNT: not an integer ('abc')",
        "INTEGRATION_RATE_LIMIT: must be more than 0 ('-1')",
    ]


def test_load_reads_the_process_environment_names_in_any_case(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("ENGINE_HOME", raising=False)
    monkeypatch.setenv("engine_home", "/srv/lower")
    monkeypatch.setenv("Integration_Retry_Count", "7")
    monkeypatch.setenv("INTEGRATION_TIMEOUT", "")  # empty counts as unset
    monkeypatch.setenv("ENGINE_NOT_A_SETTING", "ignored")
    settings = EngineSettings.load()
    assert settings.engine_home == Path("/srv/lower")
    assert settings.integration_retry_count == 7
    assert settings.integration_timeout == 30.0
    monkeypatch.setenv("AUDIT_MAX_EVENTS", "lots")
    with pytest.raises(SettingsError, match=r"AUDIT_MAX_EVENTS: not an integer \('lots'\)"):
        EngineSettings.load()


def test_a_secret_is_named_but_never_shown() -> None:
    class Strict(EngineSettings):
        audit_secret_key: SecretStr | None = Field(None, min_length=16)

    with pytest.raises(SettingsError) as caught:
        Strict.load({"AUDIT_SECRET_KEY": "short-secret", "AUDIT_MAX_EVENTS": "many"})
    secret, count = caught.value.problems
    assert secret.startswith("AUDIT_SECRET_KEY: ") and "short-secret" not in secret
    assert count == "AUDIT_MAX_EVENTS: not an integer ('many')"


def test_the_settings_page_is_generated_from_the_model() -> None:
    committed = (ROOT / SETTINGS_DOC).read_text(encoding="utf-8")
    assert committed == render_settings_doc(), (
        "docs/settings.md is out of date: python -c 'from engine.settings import "
        'render_settings_doc as r; open("docs/settings.md", "w").write(r())\''
    )
    for name in EngineSettings.model_fields:
        assert f"`{name.upper()}`" in committed


def _reads_the_environment(tree: ast.AST) -> list[int]:
    names = ("environ", "getenv", "environb")
    lines = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr in names]
    lines += [
        n.lineno
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom)
        and n.module == "os"
        and any(a.name in names for a in n.names)
    ]
    return lines


#: the modules that may read os.environ, and why
ENV_READERS = {
    "engine/settings.py": "the one settings object",
    "engine/config/interpolate.py": "${env:NAME} in pipeline files: any name, not a setting",
    "engine/columnar/__init__.py": "sets POLARS_MAX_THREADS, polars' own variable (read by "
    "polars as it loads), for the processes of `--workers`",
    "engine/partitions/local.py": "the variables ${env:NAME} read, handed to worker processes",
}


def test_no_module_but_settings_reads_the_environment() -> None:
    offenders = []
    for path in sorted((ROOT / "engine").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ENV_READERS:
            continue
        for line in _reads_the_environment(ast.parse(path.read_text(encoding="utf-8"))):
            offenders.append(f"{rel}:{line}")
    assert offenders == [], "read settings from engine.settings.EngineSettings instead"


def test_settings_sit_at_the_bottom_layer() -> None:
    tree = ast.parse((ROOT / "engine" / "settings.py").read_text(encoding="utf-8"))
    imported = {
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("engine")
    } | {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
        if alias.name.startswith("engine")
    }
    assert imported <= {"engine.errors"}
