"""Shared fixtures for the data connectors: machine services (or a clear skip), SQL tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.data import AMQP_URL, MARIADB_URL, POSTGRES_URL, require_service, sql
from tests.support.sftp_server import ServerThread, SftpServer


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """One database URL per backend: a SQLite file always, the machine's servers if reachable."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'test.db'}"
    if request.param == "postgresql":
        require_service("postgres", POSTGRES_URL)
        return POSTGRES_URL
    require_service("mariadb", MARIADB_URL)
    return MARIADB_URL


@pytest.fixture
def postgres_url() -> str:
    require_service("postgres", POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def amqp_url() -> str:
    require_service("rabbitmq", AMQP_URL)
    return AMQP_URL


@pytest.fixture
def table_name(db_url: str) -> Iterator[str]:
    """A unique table name, dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    sql(db_url, f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def sftp_server(tmp_path: Path) -> Iterator[SftpServer]:
    """An asyncssh SFTP server on a free port with a generated host key and a temp root."""
    folder = tmp_path / "sftp"
    folder.mkdir()
    thread = ServerThread(folder)
    server = thread.start()
    try:
        yield server
    finally:
        thread.stop()
