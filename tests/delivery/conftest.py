"""Fixtures of the delivery tests: machine services (or a clear skip) and a private RabbitMQ."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "connectors" / "data"))

from data_support import AMQP_URL, POSTGRES_URL, require_service, sql
from rabbit_node import RabbitNode


@pytest.fixture
def amqp_url() -> str:
    require_service("rabbitmq", AMQP_URL)
    return AMQP_URL


@pytest.fixture
def postgres_table() -> Iterator[tuple[str, str]]:
    """The machine's PostgreSQL and a unique table name, dropped afterwards."""
    require_service("postgres", POSTGRES_URL)
    name = f"t_delivery_{uuid.uuid4().hex[:10]}"
    yield POSTGRES_URL, name
    sql(POSTGRES_URL, f"DROP TABLE IF EXISTS {name}")


@pytest.fixture
def rabbit_node(tmp_path: Path) -> Iterator[RabbitNode]:
    """A RabbitMQ node of this test's own, on free ports; stopped by its process group."""
    node = RabbitNode(tmp_path / "rabbit")
    try:
        node.start()
        yield node
    finally:
        node.stop()
