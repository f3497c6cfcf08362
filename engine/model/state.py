"""The pipeline file's ``[state]`` table: where cursors, run leases, run records, dead
letters and schedule claims are kept."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

__all__ = ["StateSettings"]


class StateSettings(BaseModel):
    """The state store. Default: SQLite `state.db` in the workspace, for one machine."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: SecretStr | None = Field(
        None,
        description="SQLAlchemy URL of the state store, shared by every machine that runs the "
        "pipeline (PostgreSQL for teams); a relative SQLite path is relative to the pipeline "
        "file. Default: SQLite `state.db` in the workspace.",
        examples=["postgresql://engine@db/engine", "sqlite:///state/state.db"],
    )
    schema_name: str | None = Field(
        None,
        alias="schema",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Database schema of the state tables (PostgreSQL), created if missing; "
        "default: the connection's.",
        examples=["engine_state"],
    )
    table_prefix: str = Field(
        "engine_",
        pattern=r"^[a-z_][a-z0-9_]*$",
        max_length=32,
        description="What the state tables' names start with.",
    )
    dead_letters: Literal["file", "store"] = Field(
        "file",
        description='Where dead letters go: `"file"`, JSON Lines (see `[dead_letter] path`), '
        'or `"store"`, rows of the state store\'s dead-letter table, for runs on many '
        "machines.",
    )

    @field_validator("store")
    @classmethod
    def _url(cls, value: SecretStr | None) -> SecretStr | None:
        from engine.connectors.sql.urls import check_url

        return check_url(value) if value is not None else None
