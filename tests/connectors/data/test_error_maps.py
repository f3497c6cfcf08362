"""Each connector's exception map covers every exception class its library defines."""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any

import aio_pika.exceptions
import aiormq.exceptions
import asyncssh
import pytest
from sqlalchemy import exc as sa_exc

from engine.connectors.amqp.errors import map_amqp_error
from engine.connectors.sftp.errors import map_ssh_error
from engine.connectors.sql.errors import SqlDataError, map_sql_error
from engine.errors import PermanentError, TransientError


def exception_classes(module: ModuleType) -> list[type[BaseException]]:
    return [
        cls
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, Exception) and not issubclass(cls, Warning)
    ]


def instance(cls: type[BaseException]) -> BaseException:
    """An instance built the way the library builds it, whatever its signature."""
    if issubclass(cls, sa_exc.DBAPIError):
        return cls("SELECT 1", {}, Exception("boom"))
    if issubclass(cls, sa_exc.StatementError):
        return cls("boom", "SELECT 1", {}, Exception("boom"))
    if cls in (asyncssh.DisconnectError, asyncssh.SFTPError):
        return cls(1, "boom")  # type: ignore[call-arg]
    for args in ((), ("boom",), ("boom", "x"), (1, "boom"), (None, "boom", "x")):
        try:
            return cls(*args)
        except Exception:  # a constructor that wants real frames
            continue
    obj = cls.__new__(cls)
    Exception.__init__(obj, "boom")
    return obj


@pytest.mark.parametrize(
    ("modules", "mapper"),
    [
        ((sa_exc,), map_sql_error),
        ((asyncssh,), map_ssh_error),
        ((aiormq.exceptions, aio_pika.exceptions), map_amqp_error),
    ],
    ids=["sqlalchemy", "asyncssh", "aio-pika"],
)
def test_every_library_exception_maps_to_transient_or_permanent(
    modules: tuple[ModuleType, ...], mapper: Any
) -> None:
    classes = {c for m in modules for c in exception_classes(m)}
    assert len(classes) > 10
    for cls in classes:
        mapped = mapper(instance(cls))
        assert isinstance(mapped, TransientError | PermanentError), cls


class _Orig(Exception):
    def __init__(self, *args: object, sqlstate: str | None = None) -> None:
        super().__init__(*args)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (
            sa_exc.OperationalError("x", {}, _Orig("serialization", sqlstate="40001")),
            TransientError,
        ),
        (sa_exc.OperationalError("x", {}, _Orig("deadlock", sqlstate="40P01")), TransientError),
        (sa_exc.OperationalError("x", {}, _Orig("auth failed", sqlstate="28P01")), PermanentError),
        (sa_exc.OperationalError("x", {}, _Orig(1213, "Deadlock found")), TransientError),
        (sa_exc.OperationalError("x", {}, _Orig(1045, "Access denied")), PermanentError),
        (sa_exc.IntegrityError("x", {}, _Orig("dup", sqlstate="23505")), SqlDataError),
        (sa_exc.OperationalError("x", {}, _Orig(1292, "Incorrect datetime")), SqlDataError),
        (sa_exc.DataError("x", {}, _Orig(1366, "Incorrect integer value")), SqlDataError),
        (sa_exc.DataError("x", {}, _Orig("bad", sqlstate="22007")), SqlDataError),
        (sa_exc.ProgrammingError("x", {}, _Orig("syntax", sqlstate="42601")), PermanentError),
        (sa_exc.TimeoutError("pool"), TransientError),
        (ConnectionRefusedError(111, "refused"), TransientError),
        (asyncssh.ConnectionLost("gone"), TransientError),
        (asyncssh.PermissionDenied("no"), PermanentError),
        (asyncssh.HostKeyNotVerifiable("no"), PermanentError),
        (asyncssh.SFTPNoSuchFile("no"), PermanentError),
        (asyncssh.SFTPConnectionLost("gone"), TransientError),
        (aiormq.exceptions.ConnectionClosed(320, "shutdown"), TransientError),
        (aiormq.exceptions.ProbableAuthenticationError("auth"), PermanentError),
        (aiormq.exceptions.ChannelNotFoundEntity("404"), PermanentError),
        (aiormq.exceptions.DeliveryError(None, None), TransientError),
    ],
)
def test_classification(exc: BaseException, kind: type[Exception]) -> None:
    mapper = (
        map_sql_error
        if isinstance(exc, sa_exc.SQLAlchemyError | ConnectionRefusedError)
        else map_ssh_error
        if isinstance(exc, asyncssh.Error)
        else map_amqp_error
    )
    assert type(mapper(exc)) is kind


def test_sql_messages_carry_no_statement_or_parameters() -> None:
    exc = sa_exc.IntegrityError("INSERT INTO t VALUES (%s)", {"card": "4111"}, _Orig("dup"))
    text = str(map_sql_error(exc))
    assert "INSERT" not in text and "4111" not in text and "dup" in text
