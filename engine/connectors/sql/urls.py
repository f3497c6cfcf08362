"""SQLAlchemy URLs: parsed without echoing secrets, checked, and given an async driver.

Only ``sqlalchemy.engine`` is imported here, so `engine validate` can check a URL without
loading the async engine machinery.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from engine.errors import PermanentError

__all__ = [
    "ASYNC_DRIVERS",
    "async_url",
    "check_url",
    "database_identity",
    "driver_extras",
    "parse_url",
    "resolve_sqlite",
    "sqlite_file",
]

#: backend -> the async driver used when a URL names none (or a sync one)
ASYNC_DRIVERS: dict[str, str] = {
    "sqlite": "aiosqlite",
    "postgresql": "psycopg",
    "mysql": "asyncmy",
    "mariadb": "asyncmy",
}
#: drivers that are async already (kept as they are)
_ASYNC = frozenset({"aiosqlite", "psycopg", "psycopg_async", "asyncpg", "asyncmy", "aiomysql"})


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        # the URL text itself may carry a password: never echo it
        raise PermanentError("not a valid SQLAlchemy URL (dialect+driver://...)") from None
    except ValueError:  # make_url parses the port with int()
        raise PermanentError("the URL's port is not a number from 1 to 65535") from None
    if parsed.port is not None and not 0 < parsed.port < 65536:
        raise PermanentError("the URL's port is not a number from 1 to 65535")
    return parsed


#: backend -> the extra (`pip install 'engine[NAME]'`) holding its async driver
_DRIVER_EXTRAS: dict[str, str] = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}


def driver_extras(url: SecretStr) -> tuple[str, ...]:
    """The extra a URL's database needs: `postgres`, `mysql`, else `sql` (SQLite and the rest)."""
    try:
        backend = parse_url(url.get_secret_value()).get_backend_name()
    except PermanentError:  # reported by the URL's own check
        return ()
    return (_DRIVER_EXTRAS.get(backend, "sql"),)


def check_url(url: SecretStr) -> SecretStr:
    """A config model's URL, unchanged if it parses; a ValueError (a located E032) if not."""
    try:
        parse_url(url.get_secret_value())
    except PermanentError as exc:
        raise ValueError(str(exc)) from None
    return url


def async_url(url: str) -> URL:
    """The URL with an async driver: ``postgresql://`` becomes ``postgresql+psycopg://``."""
    parsed = parse_url(url)
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    if driver in _ASYNC and "+" in parsed.drivername:
        return parsed
    replacement = ASYNC_DRIVERS.get(backend)
    if replacement is None:
        raise PermanentError(
            f"no async driver known for {backend!r}; supported: {', '.join(sorted(ASYNC_DRIVERS))}"
        )
    return parsed.set(drivername=f"{backend}+{replacement}")


def sqlite_file(url: str) -> Path | None:
    """The database file a SQLite URL names (None for other databases and in-memory ones)."""
    parsed = parse_url(url)
    db = parsed.database
    if parsed.get_backend_name() != "sqlite" or not db or db.startswith((":memory:", "file:")):
        return None
    return Path(db)


def database_identity(url: str, base: Path) -> str | None:
    """Which database a URL names, without driver or credentials, for compile's check that no
    two sinks write one table: a SQLite file resolved from ``base``; None for in-memory ones."""
    try:
        parsed = parse_url(url)
    except PermanentError:
        return None
    backend = parsed.get_backend_name()
    db = parsed.database or ""
    if backend == "sqlite":
        if not db or db.startswith((":memory:", "file:")):
            return None
        return f"sqlite:{os.path.normpath(os.path.join(base, os.path.expanduser(db)))}"
    return f"{backend}://{parsed.host or ''}:{parsed.port or ''}/{db}"


def resolve_sqlite(url: str, resolve: Callable[[str], Path]) -> str:
    """Relative SQLite database paths are relative to the pipeline file, like file paths."""
    parsed = parse_url(url)
    db = parsed.database
    if parsed.get_backend_name() != "sqlite" or not db or db.startswith((":memory:", "file:")):
        return url
    path = Path(db)
    if path.is_absolute():
        return url
    return parsed.set(database=str(resolve(db))).render_as_string(hide_password=False)
