"""``audit`` sink: each record becomes a signed event of the audit trail.

For pipelines that collect security or business events (logins, stock changes) from
elsewhere: the events pass through the same compliance rules (masking, windows, alerts)
as the Python API's. A record's ``level``, ``category``, ``action``, ``resource``,
``outcome``, ``user_id``, ``ip_address`` and ``timestamp`` fill those fields; the other
fields (or its ``details`` object) become the details.

The sink writes through an :class:`IngestTrail` that the audit layer opens for it
(:func:`set_trail_opener`, called by ``engine.audit``): components sit below the audit
trail's wiring and do not import it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol

from pydantic import Field

from engine.components.base import ComponentContext, Sink, SinkConfig
from engine.errors import FatalError, PartialWriteError
from engine.ledger.events import AuditCategory, AuditLevel, Outcome, parse_time
from engine.ledger.hooks import Emitter
from engine.records import Batch, Rejected

if TYPE_CHECKING:
    from engine.registry import Registry

__all__ = [
    "AuditHalt",
    "AuditSink",
    "AuditSinkConfig",
    "IngestTrail",
    "TrailOpener",
    "set_trail_opener",
]


class AuditHalt(FatalError):
    """A compliance rule with the ``halt`` action fired on a record: the run stops,
    whatever the sink's ``on_error`` says."""


class IngestTrail(Emitter, Protocol):
    """The chain an audit sink writes to, opened for it by the audit layer."""

    def close(self) -> None:
        """Flush, write the final checkpoint and release what was opened."""
        ...


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


#: Opens the chain of one audit sink (its config, its context): set by ``engine.audit``.
TrailOpener = Callable[[AuditSinkConfig, ComponentContext], IngestTrail]
_opener: list[TrailOpener] = []


def set_trail_opener(opener: TrailOpener) -> None:
    """Name the function that opens audit sinks' chains (the audit layer's wiring)."""
    _opener[:] = [opener]


class AuditSink(Sink[AuditSinkConfig]):
    def __init__(self, config: AuditSinkConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        self._trail: IngestTrail | None = None

    async def open(self) -> None:
        if not _opener:
            raise FatalError(
                "the audit sink needs the audit trail's wiring: import engine.audit before "
                "running the pipeline"
            )
        self._trail = _opener[0](self.config, self.context)

    async def write(self, batch: Batch) -> None:
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
            except AuditHalt:
                raise
            except FatalError as exc:
                # A compliance halt: never routed by on_error, it stops the run.
                raise AuditHalt(str(exc)) from exc
        trail.flush()
        if refused:
            raise PartialWriteError(f"{len(refused)} record(s) are not audit events", refused)

    async def close(self, *, success: bool) -> None:
        trail, self._trail = self._trail, None
        if trail is not None:
            trail.close()


def _text(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def register(registry: Registry) -> None:
    registry.register(AuditSinkConfig, AuditSink)
