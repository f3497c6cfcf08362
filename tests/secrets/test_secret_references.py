"""``${secret:NAME:key}``: the encrypted-file backend, `engine secrets`, plug-in backends found
by entry point, and no resolved value in a log, an audit row, an error or a dry-run."""

from __future__ import annotations

import io
import logging
import os
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.fernet import Fernet

from engine.cli.main import cli
from engine.errors import ConfigError
from engine.pipeline import compile_file
from engine.redact import ValueMask, masked_logs
from engine.secrets import ENTRY_POINT_GROUP

VALUE = "s3cr3t-Value-4c9e1f"
HMAC = "hmac-key-7a1b2c3d4e5f60718293a4b5"

PIPELINE = """\
[pipeline]
name = "secretive"

[audit]
key = "${{secret:audit:hmac}}"

[sources.src]
type = "file"
path = "in.jsonl"

[transforms.shape]
type = "map"
inputs = ["src"]
[transforms.shape.fields]
id = {{ expr = "id", required = true }}

[sinks.out]
type = "{sink}"
inputs = ["shape"]
{sink_options}
"""


def _engine(*args: str, stdin: str | None = None, **env: str) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, env=env or None)


def _pipeline(folder: Path, sink: str = "file", sink_options: str = 'path = "out.jsonl"') -> Path:
    (folder / "in.jsonl").write_text('{"id": 1}\n{"id": 2}\n')
    path = folder / "p.toml"
    path.write_text(PIPELINE.format(sink=sink, sink_options=sink_options))
    return path


def _set(name: str, key: str, value: str, *args: str, **env: str) -> None:
    result = _engine("secrets", "set", name, key, *args, stdin=value + "\n", **env)
    assert result.exit_code == 0, result.stderr
    assert value not in result.output


def test_set_list_rm_and_the_key_file(tmp_path: Path) -> None:
    workspace = Path(os.environ["ENGINE_HOME"])
    _set("db", "password", VALUE)
    _set("db", "user", "app")
    key_file = workspace / "secrets.key"
    assert (key_file.stat().st_mode & 0o777) == 0o600
    assert VALUE.encode() not in (workspace / "secrets.enc").read_bytes()

    listed = _engine("secrets", "list")
    assert listed.exit_code == 0 and listed.stdout == "db: password, user\n"
    assert VALUE not in listed.output

    assert _engine("secrets", "rm", "db", "user").exit_code == 0
    assert _engine("secrets", "rm", "db", "user").exit_code == 1
    assert _engine("secrets", "list", "--format", "json").stdout.split() == [
        "{",
        '"db":',
        "[",
        '"password"',
        "]",
        "}",
    ]

    key_file.chmod(0o644)
    refused = _engine("secrets", "list")
    assert refused.exit_code == 1 and "chmod 600" in refused.stderr


def test_a_pipeline_reads_its_secret_with_the_key_from_the_environment(tmp_path: Path) -> None:
    key = Fernet.generate_key().decode()
    _set("audit", "hmac", HMAC, "--pipeline", str(tmp_path / "p.toml"), ENGINE_SECRETS_KEY=key)
    assert not (Path(os.environ["ENGINE_HOME"]) / "secrets.key").exists()
    with pytest.raises(ConfigError, match="no secrets key"):
        compile_file(_pipeline(tmp_path))
    plan = compile_file(_pipeline(tmp_path), env={**os.environ, "ENGINE_SECRETS_KEY": key})
    assert plan.spec.audit.key is not None and plan.spec.audit.key.get_secret_value() == HMAC


def test_a_missing_secret_is_a_located_error_naming_it(tmp_path: Path) -> None:
    _set("other", "thing", VALUE)
    with pytest.raises(ConfigError) as info:
        compile_file(_pipeline(tmp_path))
    [problem] = info.value.diagnostics
    assert problem.code == "E014" and problem.line == 5
    assert "audit:hmac" in problem.message and "audit.key" in problem.message
    assert VALUE not in str(info.value)


def test_a_backend_plugs_in_through_its_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plugin = tmp_path / "plugin"
    (plugin / "vault_stub-1.0.dist-info").mkdir(parents=True)
    (plugin / "vault_stub-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: vault-stub\nVersion: 1.0\n"
    )
    (plugin / "vault_stub-1.0.dist-info" / "entry_points.txt").write_text(
        f"[{ENTRY_POINT_GROUP}]\nvault = vault_stub:Resolver\n"
    )
    (plugin / "vault_stub.py").write_text(
        "class Resolver:\n"
        "    def __init__(self, context):\n"
        "        self.prefix = context.environ['VAULT_PREFIX']\n"
        "    def get(self, name, key):\n"
        "        return f'{self.prefix}-{name}-{key}' if name == 'audit' else None\n"
    )
    monkeypatch.syspath_prepend(str(plugin))
    env = {"ENGINE_SECRETS_BACKEND": "vault", "VAULT_PREFIX": "from-vault"}
    plan = compile_file(_pipeline(tmp_path), env=env)
    assert plan.spec.audit.key is not None
    assert plan.spec.audit.key.get_secret_value() == "from-vault-audit-hmac"

    with pytest.raises(ConfigError, match=r"unknown secrets backend 'nope'.*file, vault"):
        compile_file(_pipeline(tmp_path), env={"ENGINE_SECRETS_BACKEND": "nope"})


def test_no_resolved_value_reaches_logs_events_errors_or_dry_run(tmp_path: Path) -> None:
    pipeline = _pipeline(tmp_path)
    env_file = tmp_path / "deploy.env"
    key = Fernet.generate_key().decode()
    env_file.write_text(f"ENGINE_SECRETS_KEY={key}\n")
    _set("audit", "hmac", HMAC, "--pipeline", str(pipeline), ENGINE_SECRETS_KEY=key)

    ran = _engine("run", "-v", "--env-file", str(env_file), str(pipeline))
    assert ran.exit_code == 0, ran.stderr
    assert "audit: chain" in ran.stderr  # the run was audited, with the secret as its key
    dry = _engine("dry-run", "--env-file", str(env_file), str(pipeline))
    assert dry.exit_code == 0 and '"id": 2' in dry.stdout
    for output in (ran.stdout, ran.stderr, dry.stdout, dry.stderr):
        assert HMAC not in output

    # a secret mapped into a record is shown masked by dry-run
    _set("api", "token", VALUE, "--pipeline", str(pipeline), ENGINE_SECRETS_KEY=key)
    mapped = tmp_path / "mapped.toml"
    field = "token = { expr = \"'${secret:api:token}'\" }\n"
    mapped.write_text(pipeline.read_text().replace("[sinks.out]", field + "\n[sinks.out]"))
    shown = _engine("dry-run", "--env-file", str(env_file), "--format", "json", str(mapped))
    assert shown.exit_code == 0 and '"token": "***"' in shown.stdout, shown.output
    assert VALUE not in shown.output

    rows = []
    with sqlite3.connect(Path(os.environ["ENGINE_HOME"]) / "audit.db") as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            rows.extend(db.execute(f'SELECT * FROM "{table}"').fetchall())
    assert len(rows) > 3 and HMAC not in repr(rows)

    # a message that would quote the value (a URL template error) shows it masked
    sink = 'url = "http://127.0.0.1:9/in?token=${secret:api:token}&page={}"'
    bad = _pipeline(tmp_path, "http", sink)
    checked = _engine("validate", "--env-file", str(env_file), str(bad))
    assert checked.exit_code == 78 and "invalid URL template field" in checked.stderr
    assert VALUE not in checked.stderr and "token=***" in checked.stderr


def test_logs_written_during_a_run_mask_the_values() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log = logging.getLogger("engine.test-masking")
    logging.getLogger("engine").addHandler(handler)
    try:
        with masked_logs(ValueMask([VALUE, "line one\nline two"])):
            log.warning("connecting with %s", VALUE)
            log.warning("key starts with line two")
        log.warning("after the run: %s", "plain")
    finally:
        logging.getLogger("engine").removeHandler(handler)
    assert stream.getvalue().splitlines() == [
        "connecting with ***",
        "key starts with ***",
        "after the run: plain",
    ]
