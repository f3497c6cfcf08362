"""The installable extras (`pip install 'engine[NAME]'`) and the modules each one provides.

The base install reads and writes files and keeps the audit trail; a connector's client
library comes with its extra. Compile asks each component which extras it needs
(:meth:`ComponentConfig.extras`) and reports one that is not installed, so `engine validate`
names it before a run would fail on an import. Finding a module does not import it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

__all__ = ["EXTRAS", "install_command", "missing_extras"]

#: extra -> the top-level modules it installs (pyproject.toml's optional-dependencies)
EXTRAS: dict[str, tuple[str, ...]] = {
    "http": ("httpx",),
    "graphql": ("httpx", "gql", "graphql"),
    "sftp": ("asyncssh",),
    "sql": ("greenlet", "aiosqlite"),
    "postgres": ("greenlet", "psycopg"),
    "mysql": ("greenlet", "asyncmy"),
    "amqp": ("aio_pika",),
    "redis": ("redis",),
    "serve": ("starlette", "uvicorn"),
    "distributed": ("dramatiq", "pika"),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_extras(extras: Iterable[str]) -> list[str]:
    """Those of ``extras`` with a module that cannot be found, in the order given."""
    return [
        extra
        for extra in dict.fromkeys(extras)
        if not all(_installed(module) for module in EXTRAS[extra])
    ]


def install_command(extras: Iterable[str]) -> str:
    """The pip command that installs ``extras``: ``pip install 'engine[sql,postgres]'``."""
    return f"pip install 'engine[{','.join(extras)}]'"
