"""`engine serve`: webhook sources, `/healthz` and `/metrics` over one ASGI app."""

from __future__ import annotations

from engine.serve.app import EngineServer, WebhookRoute
from engine.serve.metrics import Metrics

__all__ = ["EngineServer", "Metrics", "WebhookRoute"]
