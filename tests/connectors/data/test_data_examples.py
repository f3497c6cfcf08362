"""The data-connector examples run end to end against real peers (SFTP server, SQLite)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import anyio

from engine.pipeline import compile_file, run
from engine.runtime.observer import NullObserver
from tests.support.data import sql
from tests.support.sftp_server import USER, SftpServer

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def copy_example(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copy(EXAMPLES / name, target)
    return target


def test_edi830_sftp_to_sql_example(
    sftp_server: SftpServer, tmp_path: Path, shared_testdata: Path
) -> None:
    sample = shared_testdata / "edi" / "830_pyedi830_loblaws_forecast.edi"
    (sftp_server.root / "outbox").mkdir()
    shutil.copy(sample, sftp_server.root / "outbox" / "forecast.edi")
    db = f"sqlite:///{tmp_path / 'forecasts.db'}"
    sql(
        db,
        "CREATE TABLE forecasts (sender TEXT, control_number TEXT, purpose TEXT, "
        "horizon_start TEXT, horizon_end TEXT, items INTEGER, document TEXT, "
        "PRIMARY KEY (sender, control_number))",
    )
    env = {
        "SFTP_HOST": "127.0.0.1",
        "SFTP_PORT": str(sftp_server.port),
        "SFTP_USER": USER,
        "SFTP_KEY": str(sftp_server.client_key_path),
        "SFTP_KNOWN_HOSTS": str(sftp_server.known_hosts),
        "FORECAST_DB_URL": db,
    }
    plan = compile_file(copy_example("edi830_sftp_to_sql.toml", tmp_path), env=env)
    summary = anyio.run(lambda: run(plan, observer=NullObserver(), workspace=tmp_path / "ws"))
    assert summary.ok, summary.error
    rows = sql(db, "SELECT sender, control_number, horizon_start, items, document FROM forecasts")
    assert len(rows) == 1
    sender, control, start, items, document = rows[0]
    assert (sender, control, start, items) == ("LCLPEDI", "6650001", "20230129", 2)
    assert json.loads(document)["transaction_set"] == "830"
    assert (sftp_server.root / "archive" / "forecast.edi").exists()
    assert not (sftp_server.root / "outbox" / "forecast.edi").exists()


def test_sql_to_xml_example_is_incremental(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'erp.db'}"
    sql(db, "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL, status TEXT)")
    sql(db, "INSERT INTO orders VALUES (1, 'A & B <Ltd>', 9.5, 'new'), (2, 'C', 1, 'cancelled')")
    plan = compile_file(copy_example("sql_to_xml.toml", tmp_path), env={"ERP_DB_URL": db})
    summary = anyio.run(lambda: run(plan, observer=NullObserver(), workspace=tmp_path / "ws"))
    assert summary.ok, summary.error
    sql(db, "INSERT INTO orders VALUES (3, 'D', 3, 'new')")
    summary = anyio.run(lambda: run(plan, observer=NullObserver(), workspace=tmp_path / "ws"))
    assert summary.ok, summary.error
    first, second = sorted((tmp_path / "out").glob("orders-*.xml"), key=lambda p: p.stat().st_mtime)
    assert "<customer>A &amp; B &lt;Ltd&gt;</customer>" in first.read_text()
    assert "<id>2</id>" not in first.read_text()
    assert "<id>3</id>" in second.read_text() and "<id>1</id>" not in second.read_text()
