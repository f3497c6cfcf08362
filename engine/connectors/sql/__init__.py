"""SQL connector pieces shared by the ``sql`` source and sink: engines, errors, dialects."""

from engine.connectors.sql.database import async_url, create_engine, public_url
from engine.connectors.sql.dialect import upsert_statement
from engine.connectors.sql.errors import map_sql_error

__all__ = ["async_url", "create_engine", "map_sql_error", "public_url", "upsert_statement"]
