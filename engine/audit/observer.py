"""The runtime's audit hook: a :class:`~engine.runtime.observer.RunObserver` that signs events.

One chain per pipeline (producer ``pipeline:<name>``). A batch's digest is the SHA-256
of the bytes a file source read or a file sink wrote for it, hashed as they pass (the
event's details give the byte range); other batches are digested as their
records in JSON Lines, the bytes a JSON Lines file sink writes, so a transform's batch
takes the digest of the sink that writes it. Events are buffered and appended in
batches (``[audit] flush_every``), and committed whenever the runtime is about to
acknowledge input, commit a cursor or publish output (:meth:`AuditObserver.flush`), so
the trail records every delivery before the fact. A store failure raises, which fails
the run (fail closed). Create it before the run with :func:`create_observer`, close it after.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from engine.audit.access import origin
from engine.audit.wiring import AuditResources, open_resources
from engine.codecs.jsonl import encode_lines
from engine.columnar import ColumnBatch
from engine.compliance.retention import retention_limits
from engine.ledger.canonical import json_safe
from engine.ledger.checkpoint import Checkpoint
from engine.ledger.events import AuditCategory, AuditLevel, DigestResult, Outcome
from engine.ledger.pruning import prune_chain
from engine.ledger.writer import AuditTrail
from engine.model.audit import AuditSettings
from engine.records import Record, Rejected
from engine.records.digest import ContentDigest
from engine.redact import redact, redact_text
from engine.runtime.observer import (
    BatchAction,
    NullObserver,
    RunInfo,
    RunObserver,
    RunSummary,
    StageInfo,
)
from engine.settings import EngineSettings

__all__ = ["AuditObserver", "batch_digest", "create_observer", "origin"]

CONFIG_ACTIONS = ("config_loaded", "config_changed")
_MAX_REASONS = 5
_FINISHED_LEVEL = {
    Outcome.SUCCESS: AuditLevel.INFO,
    Outcome.INTERRUPTED: AuditLevel.WARNING,
    Outcome.FAILURE: AuditLevel.ERROR,
}
_MAX_TEXT = 300


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    return str(value)


def _encode(records: Sequence[Any]) -> bytes | bytearray:
    if isinstance(records, ColumnBatch):  # its JSON Lines, without making records
        lines = records.ndjson()
        if lines is not None:
            return lines
    try:
        return encode_lines(records)
    except TypeError:  # values no codec writes, or non-string keys: described, not refused
        return encode_lines(records, _default, non_str_keys=True)


def batch_digest(records: Sequence[Any]) -> str:
    """SHA-256 (hex) of the records as JSON Lines: each one compact orjson object and a
    newline, the very bytes a JSON Lines file sink writes for them."""
    return hashlib.sha256(_encode(records)).hexdigest()


class _Deferred:
    """A batch's digest, taken from the JSON Lines file sink that writes that very batch
    when one does (it hashes those bytes anyway), else computed when first needed."""

    __slots__ = ("records", "value")

    def __init__(self, records: Sequence[Any]) -> None:
        self.records: Sequence[Any] | None = records
        self.value: str | None = None

    def resolve(self, value: str) -> None:
        self.value = value
        self.records = None

    def ready(self) -> bool:
        return self.value is not None

    def result(self) -> str:
        if self.value is None:
            assert self.records is not None
            # The records stay: another sink writing this very list finds the digest.
            self.value = batch_digest(self.records)
        return self.value


# Batches whose digest waits for their sink; older ones are computed (bounded memory).
_MAX_DEFERRED = 4


def _short(text: str) -> str:
    text = redact_text(text)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


class AuditObserver:
    """Turns every runtime call into a signed event on the pipeline's chain."""

    # Sources and sinks that move bytes hand over their digest (see engine.records.digest).
    wants_content = True

    def __init__(
        self,
        settings: AuditSettings,
        workspace: Path,
        *,
        resources: AuditResources | None = None,
        env: EngineSettings | None = None,
    ) -> None:
        self.settings = settings
        self.workspace = workspace
        self._resources = resources or open_resources(settings, workspace, env=env)
        self._owns_resources = resources is None
        self._trail: AuditTrail | None = None
        self._run: RunInfo | None = None
        user, host, ip = origin()
        self._user, self._host, self._ip = user, host, ip
        # Digests of batches not yet written, by the list's id: a sink usually receives
        # the very list the stage before it produced, so one digest serves both events.
        self._deferred: dict[int, _Deferred] = {}

    def _digest(self, records: Sequence[Any]) -> _Deferred:
        deferred = self._deferred
        found = deferred.get(id(records))
        if found is not None and found.records is records:
            return found
        found = deferred[id(records)] = _Deferred(records)
        while len(deferred) > _MAX_DEFERRED:
            oldest = deferred.pop(next(iter(deferred)))
            oldest.resolve(oldest.result())
        return found

    def _written(self, records: Sequence[Any], content: ContentDigest) -> None:
        """A sink wrote ``records`` as these bytes: a batch waiting for them takes them."""
        found = self._deferred.pop(id(records), None)
        if found is None or found.records is not records:
            return
        found.resolve(content.digest if content.records_jsonl else found.result())

    # --- helpers --------------------------------------------------------------

    def _trail_for(self, run: RunInfo) -> AuditTrail:
        if self._trail is None or self._trail.producer != f"pipeline:{run.pipeline}":
            if self._trail is not None:
                self._trail.close()
            self._trail = self._resources.trail(f"pipeline:{run.pipeline}", actor="engine")
        return self._trail

    def _emit(
        self,
        *,
        level: AuditLevel,
        category: AuditCategory,
        action: str,
        stage: StageInfo | None = None,
        outcome: Outcome = Outcome.SUCCESS,
        record_count: int | None = None,
        digest: str | DigestResult | None = None,
        details: Mapping[str, Any] | None = None,
        trusted: bool = True,
    ) -> str:
        run = self._run
        if run is None or self._trail is None:
            raise RuntimeError("AuditObserver: run_started was not called")
        if details is not None and run.mask:
            details = run.mask.deep(details)
        return self._trail.emit(
            level=level,
            category=category,
            action=action,
            resource=run.mask.text(self._resource(run, stage)),
            outcome=outcome,
            user_id=run.user or self._user,
            host=run.host or self._host,
            ip_address=self._ip,
            pipeline=run.pipeline,
            run_id=run.run_id,
            stage=stage.component if stage else None,
            record_count=record_count,
            digest=digest,
            details=details,
            trusted_details=trusted,
        )

    @staticmethod
    def _resource(run: RunInfo, stage: StageInfo | None) -> str:
        """What an event concerns (PCI DSS 10.2.2): the stage's resource (a path, a URL),
        else the stage by its pipeline-qualified name (a transform touches no resource of
        its own); for run events, the pipeline file, else the pipeline."""
        if stage is None:
            return run.pipeline_file or f"pipeline:{run.pipeline}"
        return stage.resource or f"pipeline:{run.pipeline}/{stage.component}"

    # --- RunObserver ----------------------------------------------------------

    def run_started(self, run: RunInfo, details: Mapping[str, object]) -> None:
        self._run = run
        trail = self._trail_for(run)
        clean = redact(json_safe(dict(details)), self.settings.mask_fields)
        self._emit(
            level=AuditLevel.INFO,
            category=AuditCategory.SYSTEM,
            action="run_started",
            details={"dry_run": run.dry_run, "tags": list(run.tags), **clean},
        )
        sha = run.pipeline_sha256 or (
            str(details["pipeline_sha256"]) if "pipeline_sha256" in details else None
        )
        if sha is not None:
            trail.flush()  # the previous config event may still be buffered
            previous = self._resources.store.last_matching(trail.producer, CONFIG_ACTIONS)
            before = orjson.loads(previous.body)["details"].get("sha256") if previous else None
            changed = before is not None and before != sha
            self._emit(
                level=AuditLevel.WARNING if changed else AuditLevel.INFO,
                category=AuditCategory.COMPLIANCE,
                action="config_changed" if changed or before is None else "config_loaded",
                details={"sha256": sha, "previous_sha256": before, "file": run.pipeline_file},
            )
        # Stored at once: a run killed before its first delivery is still on the trail
        # (and reported abandoned).
        trail.flush()

    def batch(
        self,
        stage: StageInfo,
        action: BatchAction,
        records: Sequence[Record],
        content: ContentDigest | None = None,
    ) -> str:
        details: dict[str, Any] = {"role": stage.role, "type": stage.type}
        digest: str | DigestResult
        if content is None:
            found = self._digest(records)
            if action is BatchAction.WRITTEN:
                found.result()  # a delivery: its event is stored before the ack, settled
            digest = found
        else:
            # The digest of the bytes read or written for this batch.
            if action is BatchAction.WRITTEN:
                self._written(records, content)
            where = "input_bytes" if action is BatchAction.READ else "output_bytes"
            details[where] = [content.start, content.end]
            digest = content.digest
        return self._emit(
            level=AuditLevel.INFO,
            category=AuditCategory.INTEGRATION,
            action=action.value,
            stage=stage,
            record_count=len(records),
            digest=digest,
            details=details,
        )

    def rejected(self, stage: StageInfo, rejected: Sequence[Rejected], disposition: str) -> None:
        content = [[r.record, r.reason, r.location] for r in rejected]
        reasons = sorted({_short(r.reason) for r in rejected})[:_MAX_REASONS]
        self._emit(
            level=AuditLevel.WARNING,
            category=AuditCategory.INTEGRATION,
            action="records_rejected",
            stage=stage,
            outcome=Outcome.FAILURE,
            record_count=len(rejected),
            digest=batch_digest(content),
            details={
                "role": stage.role,
                "type": stage.type,
                "disposition": disposition,
                "reasons": reasons,
            },
        )

    def connector_error(
        self, stage: StageInfo, error: BaseException, *, attempt: int, will_retry: bool
    ) -> None:
        self._emit(
            level=AuditLevel.WARNING if will_retry else AuditLevel.ERROR,
            category=AuditCategory.INTEGRATION,
            action="connector_retry" if will_retry else "connector_error",
            stage=stage,
            outcome=Outcome.FAILURE,
            details={
                "role": stage.role,
                "type": stage.type,
                "error_type": type(error).__name__,
                "message": _short(str(error)),
                "attempt": attempt,
                "will_retry": will_retry,
            },
        )

    def component_event(
        self, stage: StageInfo, action: str, level: str, details: Mapping[str, object]
    ) -> None:
        """An event a connector reports (a circuit opened, a cursor moved): redacted."""
        try:
            audit_level = AuditLevel(level.upper())
        except ValueError:
            audit_level = AuditLevel.INFO
        self._emit(
            level=audit_level,
            category=AuditCategory.INTEGRATION,
            action=action,
            stage=stage,
            details={"role": stage.role, "type": stage.type, **details},
            trusted=False,
        )

    def _finished(self, action: str, summary: RunSummary, **extra: object) -> None:
        """The event that closes a run (or one partition of it), with its counts."""
        stages = {
            name: {
                "records_in": s.records_in,
                "records_out": s.records_out,
                "rejected": s.rejected,
                "batches": s.batches,
                "errors": s.errors,
                "retries": s.retries,
            }
            for name, s in summary.stages.items()
        }
        outcome = Outcome(summary.outcome)
        self._emit(
            level=_FINISHED_LEVEL[outcome],
            category=AuditCategory.SYSTEM,
            action=action,
            outcome=outcome,
            details={
                **extra,
                "duration_s": round(summary.duration_s, 6),
                "stages": stages,
                "dead_letters": summary.dead_letters,
                "error": _short(summary.error) if summary.error else None,
            },
        )

    def run_finished(self, run: RunInfo, summary: RunSummary) -> None:
        self._run = run
        self._trail_for(run)
        self._finished("run_finished", summary)
        if self._trail is not None:
            self._trail.flush()
            # Prune before the final checkpoint, so it covers the retention notice.
            prune_chain(self._trail, retention_limits(self.settings, self._resources.env))
            self._trail.checkpoint()

    # --- lifecycle ------------------------------------------------------------

    def flush(self) -> None:
        """Commit every event that describes a delivery so far (raises AuditStoreError on
        failure): called before each ack, cursor commit or publish, so one cheap
        transaction. Events of batches not yet written wait for their sink's digest."""
        if self._trail is not None:
            self._trail.flush(settled=True)

    @property
    def last_checkpoint(self) -> Checkpoint | None:
        return self._trail.last_checkpoint if self._trail else None

    def close(self) -> None:
        """Flush, write the final checkpoint and close the store (when this observer opened it)."""
        try:
            if self._trail is not None:
                self._trail.close()
        finally:
            self._deferred.clear()
            if self._owns_resources:
                self._resources.close()

    def __enter__(self) -> AuditObserver:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ClosableNull(NullObserver):
    def close(self) -> None:
        pass


def create_observer(
    settings: AuditSettings, workspace: Path, *, env: EngineSettings | None = None
) -> RunObserver:
    """The observer for a run: an :class:`AuditObserver`, or a no-op when auditing is off.
    ``env``: the environment's settings (AUDIT_*; default none).

    The result always has ``close()``; call it when the run is over (also on failure).
    """
    if not settings.enabled:
        return _ClosableNull()
    return AuditObserver(settings, workspace, env=env)
