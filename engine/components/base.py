"""What every component kind is made of: an envelope-carrying config model and an async class.

The engine owns the envelope (:mod:`engine.components.envelope`, one model per role); a kind
declares only its own fields by subclassing :class:`SourceConfig`, :class:`TransformConfig` or
:class:`SinkConfig`.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, NamedTuple, TypeVar, cast

from engine.components.envelope import (
    BatchPolicy,
    Envelope,
    OnError,
    RetryPolicy,
    Role,
    SinkEnvelope,
    SourceEnvelope,
    TransformEnvelope,
)
from engine.components.expressions import CompiledExpressions
from engine.connectors.context import NULL_METER, Meter
from engine.records import Batch, Chunk, Rejected
from engine.resilience.ratelimit import RateLimitSpec
from engine.settings import EngineSettings

if TYPE_CHECKING:
    from engine.mapping import Expression
    from engine.records.digest import ContentDigest, Digester
    from engine.state import FreshCursors, StateStore

__all__ = [
    "RUN_FIELDS",
    "WHOLE_PARTITION",
    "BatchPolicy",
    "ComponentConfig",
    "ComponentContext",
    "OnError",
    "RetryPolicy",
    "Role",
    "Sink",
    "SinkConfig",
    "Source",
    "SourceConfig",
    "Transform",
    "TransformConfig",
    "TransformResult",
    "WrittenResource",
]


T = TypeVar("T")

#: The fields every output path template may use, filled by ``ComponentContext.run_fields``.
RUN_FIELDS = ("pipeline", "run_id", "date", "time", "component", "partition")

#: ``{partition}`` of a run that is not split: the one partition, numbered as the first
WHOLE_PARTITION = "0000"


class ComponentConfig(Envelope):
    """A kind's config: its role's envelope (owned by the engine) and the kind's own fields.

    The hooks below let the compiler and the audit trail ask a kind about its own fields.
    """

    def expressions(self) -> Iterable[tuple[tuple[str | int, ...], str]]:
        """Every JMESPath expression in this config, with its key path, for compile checks."""
        return ()

    def output_names(self) -> tuple[str, ...]:
        """Named outputs beyond the default one (``route`` has one per condition)."""
        return ()

    def resource(self) -> str | None:
        """What this component touches, for the audit trail and the graph; never secrets."""
        return None

    #: the extras (`pip install 'engine[NAME]'`) every component of this kind needs
    requires_extras: ClassVar[tuple[str, ...]] = ()

    def extras(self) -> tuple[str, ...]:
        """The extras this component needs to run: its kind's, and one for a rate limit
        shared through Redis (compile reports those not installed)."""
        limit = getattr(self, "rate_limit", None)
        shared = isinstance(limit, RateLimitSpec) and isinstance(limit.redis, str)
        return (*self.requires_extras, *(("redis",) if shared else ()))


class SourceConfig(SourceEnvelope, ComponentConfig):
    """Subclass for a source kind."""


class TransformConfig(TransformEnvelope, ComponentConfig):
    """Subclass for a transform kind."""


class SinkConfig(SinkEnvelope, ComponentConfig):
    """Subclass for a sink kind."""

    def written_resource(self, base: Path) -> WrittenResource | None:
        """What this sink writes that no other sink of the file may write too (a file, a
        table): compile reports two sinks on one resource. ``base``: the file's folder."""
        return None


class WrittenResource(NamedTuple):
    """A resource one sink owns, for compile's check that no two sinks write it."""

    #: equal for two sinks that would write the same thing (a resolved path, url + table)
    identity: str
    #: how a message names it; never carries a secret
    shown: str
    #: the key of the sink's table that names it, where the error points
    key: str


@dataclass(slots=True)
class ComponentContext:
    """What the runtime hands a component: who it is and where it may keep things."""

    component_id: str
    pipeline: str
    base_dir: Path
    workspace: Path
    run_id: str = ""
    state: StateStore | FreshCursors | None = None
    dry_run: bool = False
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("engine"))
    caller: Callable[[Callable[[], Awaitable[Any]]], Awaitable[Any]] | None = None
    emitter: Callable[[str, str, Mapping[str, object]], None] | None = None
    # The pipeline's [audit] settings (an AuditSettings), for the `audit` sink.
    audit: Any = None
    # Set for sinks fed by a source that releases its input chunk by chunk while the run
    # goes on (a queue, webhooks): output that is staged is published in segments.
    acknowledged: bool = False
    # The component's `timeout`, for its connector (seconds per request, connect, ...).
    timeout: float | None = None
    # Set while auditing: sources that read a byte stream hash it through this
    # (``digester.reader(stream)``) and put each chunk's digest on it; sinks that write
    # bytes hash them (``digester.writer(stream)``) and report them in ``take_content``.
    digester: Digester | None = None
    # The environment's settings (INTEGRATION_TIMEOUT, INTEGRATION_REDIS_URL, ...), read by
    # the entry point that started the run.
    settings: EngineSettings = field(default_factory=EngineSettings.defaults)
    # Set when this run is one partition of a larger run: its id fills ``{partition}``.
    partition: str | None = None
    # Set when the run that planned the partitions publishes their outputs (the pid of
    # its process): file sinks finish and fsync what they wrote and hand it over
    # (:meth:`Sink.handed_over`).
    hand_over: int | None = None

    # Set by the runtime on a source whose every consumer takes column batches: it decodes
    # into them where its codec can (engine.columnar).
    columnar: bool = False
    # Where a connector reports response codes and backlog: the run's metrics, when watched.
    meter: Meter = NULL_METER

    # The component's JMESPath expressions, compiled once with the plan.
    expressions: CompiledExpressions = field(default_factory=CompiledExpressions)

    def expression(self, loc: tuple[str | int, ...], source: str) -> Expression:
        """The compiled expression at key path ``loc`` of this component's table."""
        return self.expressions.get(loc, source)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run one connector operation under the runtime's timeout, retry policy and audit."""
        if self.caller is None:
            return await fn()
        return cast(T, await self.caller(fn))

    def emit(self, action: str, level: str = "INFO", **details: object) -> None:
        """Report a component event (circuit opened, token refreshed) to the audit trail."""
        if self.emitter is not None:
            self.emitter(action, level, details)

    def run_fields(self) -> dict[str, str]:
        """The per-run values of output path templates: {pipeline}, {run_id}, {date}, ..."""
        now = datetime.now(UTC)
        return {
            "pipeline": self.pipeline,
            "run_id": self.run_id,
            "date": now.strftime("%Y-%m-%d"),
            "time": now.strftime("%H%M%S"),
            "component": self.component_id,
            "partition": self.partition or WHOLE_PARTITION,
        }

    def resolve(self, path: str | Path) -> Path:
        """A path from the pipeline file, relative to the file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p


C = TypeVar("C", bound=ComponentConfig)


class _Component(Generic[C]):
    def __init__(self, config: C, context: ComponentContext) -> None:
        self.config = config
        self.context = context

    def resource(self) -> str | None:
        """What this component touches, for the audit trail; never carries secrets."""
        return self.config.resource()

    async def check(self) -> None:
        """Health-check the endpoint; raise an EngineError when it is unreachable."""


class Source(_Component[C], ABC):
    """Reads from the outside world; yields chunks of records."""

    #: True for sources whose chunks carry tokens that release input while the run goes on
    #: (a queue ack, a webhook's 2xx): sinks downstream then publish as they go.
    acknowledges: ClassVar[bool] = False

    async def open(self) -> None:
        pass

    @abstractmethod
    def read(self) -> AsyncIterator[Chunk]:
        """Yield chunks until the input is exhausted (or forever, for a stream)."""

    async def close(self) -> None:
        pass

    def progress(self) -> tuple[int, int] | None:
        """Bytes read so far and in all, for a source that knows its input's size."""
        return None

    async def commit(self) -> None:
        """Called once the run succeeded and every sink closed: save cursors, move files."""

    async def ack(self, token: object) -> None:
        """A chunk carrying ``token`` was delivered by every sink downstream (at-least-once)."""

    def awaits_ack(self) -> bool:
        """True when the source cannot read more until some of its chunks are acknowledged
        (a queue's prefetch window is full): sinks holding its chunks publish now."""
        return False

    async def nack(self, token: object, *, permanent: bool) -> None:
        """A sink failed to deliver part of the chunk carrying ``token``; the run fails next.

        ``permanent``: retrying cannot help (dead-letter it); otherwise requeue it.
        """

    # -- partitions (see engine.partitions) -----------------------------------------------
    async def partitions(self, workers: int) -> Sequence[dict[str, Any]] | None:
        """Split this source's work into parts other processes can read, each a
        JSON-serialisable spec for :meth:`use_partition`; ``workers``: how many processes
        will read them. None (the default): it cannot split, one process reads it all.
        The sequence may find its parts as they are asked for, in order (its length known
        at once); a failure to find one raises from ``__getitem__``."""
        return None

    def use_partition(self, spec: dict[str, Any]) -> None:
        """Read only the part ``spec`` (one of :meth:`partitions`) describes; the whole
        input when the spec is empty (a source that cannot split)."""

    def partition_outcome(self) -> dict[str, Any] | None:
        """After a partition's read: what the run needs to commit once every partition is
        done (how far an incremental read went), JSON-serialisable."""
        return None

    async def commit_partitions(self, outcomes: list[dict[str, Any] | None]) -> None:
        """Commit once for the whole run, from every partition's outcome in partition
        order (in place of :meth:`commit`, which partitions never call)."""


@dataclass(slots=True)
class TransformResult:
    """Records per output (``None`` is the default output) and the records rejected."""

    outputs: dict[str | None, Batch]
    rejected: list[Rejected] = field(default_factory=list)


class Transform(_Component[C], ABC):
    """A pure, synchronous function of a batch."""

    #: How the records out relate to the records in, for the audit trail's completeness
    #: check: "exact" (each record in leaves once, or is rejected), "may_drop" (some are
    #: dropped on purpose), "fan_out" (one record may leave on several outputs).
    accounting: ClassVar[str] = "exact"

    @abstractmethod
    def process(self, batch: Batch) -> TransformResult: ...


class Sink(_Component[C], ABC):
    """Delivers records; a batch is either delivered whole or raises.

    ``write`` delivers or stages a batch; ``publish`` makes every staged record durable. The
    runtime acknowledges a source's input only once every sink downstream has published it,
    and makes the audit trail durable just before each publish.
    """

    #: True when ``write`` returns only once its records are durable (an HTTP call answered,
    #: a confirmed publish); False when it stages them for ``publish`` (a temp file, an open
    #: transaction).
    durable_on_write: ClassVar[bool] = True

    async def open(self) -> None:
        pass

    @abstractmethod
    async def write(self, batch: Batch) -> None: ...

    def publish_due(self) -> float | None:
        """Seconds until what is staged must be published: 0 for now (after every write),
        None for only at ``close``."""
        return 0.0

    async def publish(self) -> None:
        """Make every record staged so far durable (commit, fsync and rename)."""

    def take_content(self) -> ContentDigest | None:
        """The digest of the bytes the last ``write`` produced, for sinks that write bytes
        through ``context.digester``; None otherwise."""
        return None

    def can_join(self) -> bool:
        """Whether outputs that partitions of a run write into this sink make one output
        (a file sink: when its path has ``{partition}`` or its codec can join pieces)."""
        return True

    def handed_over(self) -> list[dict[str, Any]]:
        """Under ``context.hand_over``: the outputs this sink finished and left for the run
        to publish, JSON-serialisable (engine.partitions joins and renames them)."""
        return []

    async def close(self, *, success: bool) -> None:
        """Release; on success publish what is still staged, otherwise discard it."""
