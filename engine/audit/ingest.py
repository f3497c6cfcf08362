"""The ``audit`` sink's chain: opened here, from the pipeline's ``[audit]`` table and the
sink's own options, and handed to the sink (which sits below this layer)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.components.base import ComponentContext
from engine.components.sinks.audit import AuditSinkConfig, set_trail_opener

if TYPE_CHECKING:
    from engine.ledger.writer import AuditTrail

__all__ = ["SinkTrail", "open_sink_trail"]


class SinkTrail:
    """An audit sink's writer with the resources it was opened from; closes both."""

    def __init__(self, trail: AuditTrail, close: Any) -> None:
        self._trail = trail
        self._close_resources = close
        self.emit = trail.emit
        self.flush = trail.flush

    def close(self) -> None:
        try:
            self._trail.close()
        finally:
            self._close_resources()


def open_sink_trail(config: AuditSinkConfig, context: ComponentContext) -> SinkTrail:
    """The pipeline's [audit] table (keys, rules, notify, masking), then the sink's own.

    The store and keys are imported here, when a pipeline opens an audit sink: importing
    ``engine.audit`` to register this opener must stay cheap."""
    from engine.audit.wiring import open_resources
    from engine.model.audit import AuditSettings

    base = context.audit if isinstance(context.audit, AuditSettings) else None
    update: dict[str, Any] = {}
    if config.store is not None:
        update["store"] = config.store
    if config.standards:
        update["standards"] = config.standards
    if config.rules_file:
        update["rules_file"] = str(context.resolve(config.rules_file))
    settings = (base or AuditSettings()).model_copy(update=update)
    resources = open_resources(settings, context.workspace, env=context.settings)
    producer = config.producer.replace("{pipeline}", context.pipeline)
    try:
        trail = resources.trail(producer, actor="pipeline")
    except BaseException:
        resources.close()
        raise
    return SinkTrail(trail, resources.close)


set_trail_opener(open_sink_trail)
