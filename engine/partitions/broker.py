"""Partitions through RabbitMQ with Dramatiq: `engine run --distributed` sends one message per
partition, `engine worker` runs them.

The settings that make a partition safe to lose a worker over:

- a message is acknowledged only after the actor returned, that is after the partition's
  sinks are durable and its audit events written; a worker that dies leaves it unacked, and
  RabbitMQ gives it to another worker (``redelivered`` is set);
- each worker thread holds one message at a time (prefetch 1), so a dead worker takes no
  queued partition down with it;
- queues are quorum queues with a delivery limit, so a partition that kills every worker
  that takes it (Dramatiq does not count crashes as retries) ends in the dead-letter queue
  instead of going round for ever;
- a partition that fails is retried ``max_retries`` times with a backoff, then dead-lettered
  (``<queue>.XQ``) and recorded as dead in the state store, where `engine runs` shows it.
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from engine.errors import PermanentError
from engine.runtime.plan import Plan
from engine.settings import EngineSettings

__all__ = ["ACTOR", "DEFAULT_QUEUE", "make_broker", "run_worker"]

log = logging.getLogger("engine.worker")

#: the actor every partition message names
ACTOR = "engine_partition"
DEFAULT_QUEUE = "engine"
#: deliveries of one message before a quorum queue dead-letters it (worker crashes included)
DELIVERY_LIMIT = 5
#: seconds a stopping worker gives the partitions it runs to finish
STOP_TIMEOUT = 600


def make_broker(settings: EngineSettings, *, middleware: list[Any] | None = None) -> Any:
    """A Dramatiq RabbitMQ broker on ``ENGINE_BROKER_URL``, with quorum queues."""
    from dramatiq.brokers.rabbitmq import RabbitmqBroker

    class _Broker(RabbitmqBroker):
        def _build_queue_arguments(self, queue_name: str) -> dict[str, Any]:
            arguments: dict[str, Any] = super()._build_queue_arguments(queue_name)  # type: ignore[no-untyped-call]
            arguments["x-queue-type"] = "quorum"
            arguments["x-delivery-limit"] = DELIVERY_LIMIT
            return arguments

    url = settings.engine_broker_url.get_secret_value()
    return _Broker(url=url, confirm_delivery=True, middleware=middleware or [])


def run_worker(
    settings: EngineSettings,
    *,
    queue: str = DEFAULT_QUEUE,
    concurrency: int = 1,
    max_retries: int = 3,
    ready: threading.Event | None = None,
) -> int:
    """Run partitions from ``queue`` in ``concurrency`` threads until SIGTERM or SIGINT, then
    let the partitions in flight finish. Returns the exit code."""
    import dramatiq
    from dramatiq.middleware import CurrentMessage, Retries

    from engine.partitions.distributed import process_partition

    broker = make_broker(
        settings,
        middleware=[
            Retries(max_retries=max_retries, min_backoff=1000, max_backoff=30_000),
            CurrentMessage(),
        ],
    )
    plans: dict[str, Plan] = {}

    def partition(
        file: str, spec: dict[str, Any], context: dict[str, Any], engine_major: int
    ) -> None:
        message = CurrentMessage.get_current_message()
        process_partition(
            file,
            spec,
            context,
            engine_major,
            redelivered=bool(getattr(message, "redelivered", False)),
            retries=int(message.options.get("retries", 0)) if message is not None else 0,
            max_retries=max_retries,
            settings=settings,
            plans=plans,
        )

    dramatiq.actor(
        actor_name=ACTOR,
        queue_name=queue,
        broker=broker,
        max_retries=max_retries,
        throws=(PermanentError,),
    )(partition)
    stop = threading.Event()
    previous = {s: signal.signal(s, lambda *_: stop.set()) for s in (signal.SIGTERM, signal.SIGINT)}
    worker = dramatiq.Worker(broker, queues={queue}, worker_threads=concurrency, worker_timeout=500)
    worker.queue_prefetch = concurrency  # one message per thread: a dead worker holds no more
    try:
        worker.start()
        log.info("worker on queue %s with %d thread(s)", queue, concurrency)
        if ready is not None:
            ready.set()
        while not stop.wait(0.5):
            pass
        log.info("stopping: the partitions in flight finish first")
        worker.stop(timeout=STOP_TIMEOUT * 1000)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        broker.close()
    return 0
