"""The Python API's vocabulary: integration kinds, data formats, configs, mappings and events."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

__all__ = [
    "DataFormat",
    "DataMapping",
    "EventStatus",
    "IntegrationConfig",
    "IntegrationEvent",
    "IntegrationType",
]


class IntegrationType(StrEnum):
    API_REST = "api_rest"
    API_GRAPHQL = "api_graphql"
    WEBHOOK = "webhook"
    FILE_SFTP = "file_sftp"
    DATABASE = "database"
    MESSAGE_QUEUE = "message_queue"
    CUSTOM = "custom"


class DataFormat(StrEnum):
    JSON = "json"
    XML = "xml"
    CSV = "csv"
    EDI = "edi"
    CUSTOM = "custom"


class EventStatus(StrEnum):
    SUCCESS = "success"
    FAILED = "failed"


@dataclass
class IntegrationConfig:
    """One external system. ``api_key`` goes in ``X-API-Key``; ``rate_limit`` is per second."""

    name: str
    type: IntegrationType
    base_url: str
    api_key: str | None = None
    secret_key: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    retry_count: int | None = None
    rate_limit: float | None = None
    data_format: DataFormat = DataFormat.JSON
    webhook_url: str | None = None
    webhook_secret: str | None = None

    def __repr__(self) -> str:
        # secrets stay out of logs and tracebacks
        return (
            f"IntegrationConfig(name={self.name!r}, type={self.type.value!r}, "
            f"base_url={self.base_url!r}, data_format={self.data_format.value!r})"
        )


@dataclass
class DataMapping:
    """Copy ``source_field`` to ``target_field``, optionally transformed, with a default."""

    source_field: str
    target_field: str
    transformation: Callable[[Any], Any] | None = None
    default_value: Any = None
    required: bool = False


@dataclass
class IntegrationEvent:
    """What one ``send_data`` or webhook delivery did."""

    integration: str
    endpoint: str
    status: EventStatus
    records: int = 0
    status_code: int | None = None
    error: str | None = None
    response: Any = None
    duration_ms: float = 0.0
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    timestamp: datetime = field(default_factory=lambda: datetime.now(UTC))
