"""The integrations Python API (the seed's ``advanced_integrations``), over the connector code."""

from __future__ import annotations

from engine.integrations.facade import IntegrationManager
from engine.integrations.models import (
    DataFormat,
    DataMapping,
    EventStatus,
    IntegrationConfig,
    IntegrationEvent,
    IntegrationType,
)

__all__ = [
    "DataFormat",
    "DataMapping",
    "EventStatus",
    "IntegrationConfig",
    "IntegrationEvent",
    "IntegrationManager",
    "IntegrationType",
]
