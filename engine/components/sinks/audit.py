"""``audit`` sink: each record becomes a signed event of the audit trail.

For pipelines that collect security or business events (logins, stock changes) from
elsewhere: the events pass through the same compliance rules (masking, windows, alerts)
as the Python API's. A record's ``level``, ``category``, ``action``, ``resource``,
``outcome``, ``user_id``, ``ip_address`` and ``timestamp`` fill those fields; the other
fields (or its ``details`` object) become the details.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from engine.components.base import ComponentContext, Sink, SinkConfig
from engine.errors import PartialWriteError
from engine.records import Batch, Rejected

if TYPE_CHECKING:
    from engine.audit.trail import AuditResources, AuditTrail
    from engine.registry import Registry

__all__ = ["AuditHalt", "AuditSink", "AuditSinkConfig"]


class AuditHalt(RuntimeError):
    """A compliance rule with the ``halt`` action fired on a record: the run stops."""


_FIELDS = ("level", "category", "action", "resource", "outcome", "user_id", "ip_address")


class AuditSinkConfig(SinkConfig):
    """Logs each record as a signed audit event (compliance rules apply)."""

    type: Literal["audit"] = "audit"
    producer: str = Field(
        "ingest:{pipeline}", description="The chain the events join; `{pipeline}` is filled."
    )
    store: str | None = Field(
        None, description="SQLAlchemy URL of the audit store; default: the workspace's."
    )
    standards: list[str] = Field(
        default_factory=list, description="Standards whose rules apply; default: all enabled."
    )
    rules_file: str | None = Field(None, description="Extra rules (TOML/YAML `[[rules]]`).")
    level: str = Field("INFO", description="Level of records without one.")
    category: str = Field("USER_ACTION", description="Category of records without one.")
    action: str = Field("record", description="Action of records without one.")

    def resource(self) -> str | None:
        return "audit"


class AuditSink(Sink[AuditSinkConfig]):
    def __init__(self, config: AuditSinkConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        self._resources: AuditResources | None = None
        self._trail: AuditTrail | None = None

    async def open(self) -> None:
        from engine.audit.settings import AuditSettings
        from engine.audit.trail import open_resources

        cfg = self.config
        # The pipeline's [audit] table (keys, rules, notify, masking), then this sink's own.
        base = self.context.audit if isinstance(self.context.audit, AuditSettings) else None
        update: dict[str, Any] = {}
        if cfg.store is not None:
            update["store"] = cfg.store
        if cfg.standards:
            update["standards"] = cfg.standards
        if cfg.rules_file:
            update["rules_file"] = str(self.context.resolve(cfg.rules_file))
        settings = (base or AuditSettings()).model_copy(update=update)
        self._resources = open_resources(settings, self.context.workspace)
        producer = cfg.producer.replace("{pipeline}", self.context.pipeline)
        self._trail = self._resources.trail(producer, actor="pipeline")

    async def write(self, batch: Batch) -> None:
        from engine.audit.events import AuditCategory, AuditLevel, Outcome, parse_time
        from engine.audit.rules.policy import ComplianceHalt

        trail = self._trail
        assert trail is not None
        cfg = self.config
        refused: list[Rejected] = []
        for record in batch:
            if not isinstance(record, dict):
                refused.append(Rejected(record, "an audit record must be an object"))
                continue
            fields = {k: record.get(k) for k in _FIELDS}
            details: Any = record.get("details")
            if not isinstance(details, dict):
                details = {k: v for k, v in record.items() if k not in _FIELDS and k != "timestamp"}
            try:
                level = AuditLevel(str(fields["level"] or cfg.level).upper())
                category = AuditCategory(str(fields["category"] or cfg.category).upper())
                outcome = Outcome(str(fields["outcome"] or "success").lower())
                stamp = record.get("timestamp")
                when = parse_time(str(stamp)) if stamp else None
            except ValueError as exc:
                refused.append(Rejected(record, f"not an audit event: {exc}"))
                continue
            try:
                trail.emit(
                    level=level,
                    category=category,
                    action=str(fields["action"] or cfg.action),
                    resource=_text(fields["resource"]),
                    outcome=outcome,
                    user_id=_text(fields["user_id"]),
                    ip_address=_text(fields["ip_address"]),
                    host=None,
                    pipeline=self.context.pipeline,
                    run_id=self.context.run_id or None,
                    stage=self.context.component_id,
                    details=details,
                    timestamp=when,
                )
            except ComplianceHalt as exc:
                # An EngineError from a sink is a record failure, routed by on_error; a
                # halt must stop the run, so it leaves as a plain exception.
                raise AuditHalt(str(exc)) from exc
        trail.flush()
        if refused:
            raise PartialWriteError(f"{len(refused)} record(s) are not audit events", refused)

    async def close(self, *, success: bool) -> None:
        try:
            if self._trail is not None:
                self._trail.close()
        finally:
            if self._resources is not None:
                self._resources.close()
            self._trail = self._resources = None


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def register(registry: Registry) -> None:
    registry.register(AuditSinkConfig, AuditSink)
