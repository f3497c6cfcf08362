"""The one place where SQLAlchemy and DB-API exceptions become Transient or Permanent errors."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from engine.errors import EngineError, PermanentError, TransientError

__all__ = ["SqlDataError", "map_sql_error"]

#: SQLSTATE classes worth a retry: connection exceptions, transaction rollbacks
#: (serialization failure, deadlock), insufficient resources, operator intervention
_TRANSIENT_SQLSTATE = ("08", "40", "53", "57")
#: MySQL/MariaDB error numbers worth a retry: deadlock, lock wait timeout, server gone,
#: lost connection, too many connections, server shutdown, cannot connect
_TRANSIENT_MYSQL = frozenset({1205, 1213, 2006, 2013, 1040, 1053, 2003, 2002, 1927})
#: errors that look operational but retrying cannot fix: bad credentials, unknown database
_PERMANENT_MYSQL = frozenset({1044, 1045, 1049, 1698})
_PERMANENT_SQLSTATE = ("28", "3D")
#: a value or row the database refused: data exceptions (22) and integrity violations (23)
_DATA_SQLSTATE = ("22", "23")
#: MySQL/MariaDB data errors: NULL into NOT NULL, duplicate key, out of range, truncated,
#: incorrect datetime/integer/string value, data too long, no default, foreign key, CHECK
_DATA_MYSQL = frozenset(
    {1048, 1062, 1216, 1217, 1264, 1265, 1292, 1364, 1366, 1367, 1406, 1411, 1451, 1452, 1690}
    | {3819, 4025}
)
#: SQLite primary result codes of refused values: TOOBIG, CONSTRAINT, MISMATCH
_DATA_SQLITE = frozenset({18, 19, 20})
#: SQLite primary result codes worth a retry: BUSY, LOCKED, IOERR, PROTOCOL; its
#: OperationalError also covers "no such table" and syntax errors (SQLITE_ERROR): permanent
_TRANSIENT_SQLITE = frozenset({5, 6, 10, 15})


class SqlDataError(PermanentError):
    """A value or row the database refused (type, range, constraint): the record's fault."""


def _sqlstate(orig: BaseException | None) -> str | None:
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    return code if isinstance(code, str) else None


def _mysql_errno(orig: BaseException | None) -> int | None:
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _reason(exc: BaseException) -> str:
    """The driver's own message, first line only: no SQL text, no parameters."""
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return f"{type(exc).__name__}: {first[:300]}"


def map_sql_error(exc: BaseException, *, action: str = "database") -> EngineError:
    """Classify ``exc``; unknown exceptions are permanent (retrying hides bugs)."""
    if isinstance(exc, EngineError):
        return exc
    message = f"{action}: {_reason(exc)}"
    if isinstance(exc, sa_exc.DBAPIError):
        orig = exc.orig
        state, errno = _sqlstate(orig), _mysql_errno(orig)
        sqlite_code = getattr(orig, "sqlite_errorcode", None)
        if (
            (state and state.startswith(_DATA_SQLSTATE))
            or errno in _DATA_MYSQL
            or (isinstance(sqlite_code, int) and (sqlite_code & 0xFF) in _DATA_SQLITE)
            or isinstance(exc, sa_exc.DataError | sa_exc.IntegrityError)
        ):
            return SqlDataError(message)
        if (state and state.startswith(_PERMANENT_SQLSTATE)) or errno in _PERMANENT_MYSQL:
            return PermanentError(message)
        if isinstance(sqlite_code, int):
            transient = (sqlite_code & 0xFF) in _TRANSIENT_SQLITE
            return (TransientError if transient else PermanentError)(message)
        if exc.connection_invalidated:
            return TransientError(message)
        if (state and state.startswith(_TRANSIENT_SQLSTATE)) or errno in _TRANSIENT_MYSQL:
            return TransientError(message)
        if isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError):
            return TransientError(message)
        return PermanentError(message)  # Integrity, Programming, Data, NotSupported, Internal
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return TransientError(message)  # pool checkout timed out, connection dropped
    if isinstance(exc, sa_exc.SQLAlchemyError):
        return PermanentError(message)  # compile, argument, reflection, state errors
    if isinstance(exc, ConnectionError | TimeoutError):
        return TransientError(message)
    if isinstance(exc, OSError):
        return TransientError(message)  # refused, unreachable: the server may come back
    return PermanentError(message)
