"""A store shared by workspaces: a run refuses to extend a chain signed with a key it does
not hold, naming what to set; ``engine audit verify`` tells intact (0), tampered (1) and
cannot verify (3: no trail, no key, keys not supplied) apart."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.audit.errors import AuditKeyError
from engine.audit.observer import AuditObserver
from engine.audit.settings import AuditSettings
from engine.audit.store import AuditStore
from engine.cli.audit import audit
from tests.support.audit import fill, require_postgres, run_info

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def pg_store() -> Iterator[str]:
    """A PostgreSQL audit store in a schema of its own, dropped afterwards."""
    require_postgres()
    import psycopg

    schema = f"trail_{uuid.uuid4().hex[:10]}"
    dsn = "host=127.0.0.1 port=5432 user=postgres dbname=test"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield (
            f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
        )
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _pipeline(folder: Path, store: str) -> Path:
    (folder / "data").mkdir(parents=True)
    shutil.copy(ROOT / "examples" / "data" / "inventory.csv", folder / "data" / "inventory.csv")
    text = (ROOT / "examples" / "quickstart.toml").read_text().split("[[tests]]")[0]
    path = folder / "pipeline.toml"
    path.write_text(f'{text}\n[audit]\nstore = "{store}"\n')
    return path


def _engine(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AUDIT_", "ENGINE_"))}
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        env={**clean, "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _events(url: str) -> int:
    with AuditStore(url, create=False) as store:
        return store.stats().total_events


@pytest.mark.services
def test_a_second_workspace_with_its_own_key_is_refused(pg_store: str, tmp_path: Path) -> None:
    first = _pipeline(tmp_path / "a", pg_store)
    second = _pipeline(tmp_path / "b", pg_store)
    done = _engine("run", "-q", str(first))
    assert done.returncode == 0, done.stderr
    before = _events(pg_store)
    refused = _engine("run", "-q", str(second))
    assert refused.returncode == 1
    message = " ".join(refused.stderr.split())
    assert "audit chain pipeline:quickstart" in message and "does not hold" in message
    assert "set AUDIT_SECRET_KEY" in message and "nothing was appended" in message
    assert _events(pg_store) == before  # not one event of the refused run
    assert not (tmp_path / "b" / "out" / "products.jsonl").exists()
    # Verifying from the second workspace: no verdict on events it holds no key for.
    checked = _engine("audit", "verify", "--store", pg_store, "--workspace", str(second.parent))
    assert checked.returncode == 3, checked.stdout + checked.stderr
    assert "cannot verify" in checked.stdout and "AUDIT_SECRET_KEY" in checked.stdout
    assert "TAMPERED" not in checked.stdout


@pytest.mark.services
def test_workspaces_sharing_the_key_share_the_chain(pg_store: str, tmp_path: Path) -> None:
    key = {"AUDIT_SECRET_KEY": "one-key-for-every-writer"}
    folders = [_pipeline(tmp_path / name, pg_store) for name in ("a", "b")]
    for path in folders:
        done = _engine("run", "-q", str(path), **key)
        assert done.returncode == 0, done.stderr
    for path in folders:
        checked = _engine(
            "audit", "verify", "--store", pg_store, "--workspace", str(path.parent), **key
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert checked.stdout.startswith("intact:")


def test_an_observer_refuses_before_writing_anything(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with AuditObserver(AuditSettings(store=url), tmp_path / "a") as observer:
        observer.run_started(run_info(), {})
    before = _events(url)
    observer = AuditObserver(AuditSettings(store=url), tmp_path / "b")
    try:
        with pytest.raises(AuditKeyError, match="AUDIT_SECRET_KEY") as info:
            observer.run_started(run_info("run-2"), {})
        assert "pipeline:orders" in str(info.value)
    finally:
        observer.close()
    assert _events(url) == before


def test_a_rotated_key_still_extends_its_chain(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    with AuditObserver(AuditSettings(store=url, key="old"), tmp_path / "a") as observer:
        observer.run_started(run_info(), {})
    settings = AuditSettings(store=url, key="new", previous_keys=["old"])  # type: ignore[list-item]
    with AuditObserver(settings, tmp_path / "a") as observer:
        observer.run_started(run_info("run-2"), {})
    cli = CliRunner(env={"AUDIT_SECRET_KEY": "new"})
    args = ["verify", "--store", url, "--workspace", str(tmp_path / "a"), "--key", "new"]
    # The old events need the old key too: without it, no verdict.
    assert cli.invoke(audit, args).exit_code == 3
    both = cli.invoke(audit, [*args, "--key", "old"])
    assert both.exit_code == 0, both.output


def test_verify_cannot_verify_without_a_trail_or_a_key(tmp_path: Path, workspace: Path) -> None:
    cli = CliRunner(env={"COLUMNS": "200"})
    missing = cli.invoke(audit, ["verify", "--workspace", str(tmp_path / "nothing-here")])
    assert missing.exit_code == 3 and "cannot verify" in missing.output
    from engine.audit.settings import AuditSettings as Settings
    from engine.audit.trail import open_resources

    resources = open_resources(Settings(compliance=False), workspace)
    try:
        fill(resources.trail("pipeline:sync"), 3)
    finally:
        resources.close()
    (workspace / "audit-hmac.keys").unlink()
    no_key = cli.invoke(audit, ["verify", "--workspace", str(workspace)])
    assert no_key.exit_code == 3 and "no audit HMAC key" in no_key.output
    assert "AUDIT_SECRET_KEY" in no_key.output
    empty = tmp_path / "empty"
    AuditStore(f"sqlite:///{empty / 'audit.db'}").close()
    nothing = cli.invoke(audit, ["verify", "--workspace", str(empty), "--key", "k"])
    assert nothing.exit_code == 3 and "holds no audit trail" in nothing.output
