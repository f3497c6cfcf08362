"""One run per pipeline per state store: a lease in the pipeline's state store (the
workspace's state database, or the shared store ``[state] store`` names).

A run takes its pipeline's lease before it starts and gives it back when it ends. The
lease names its holder (host, pid, run id, since) and expires ``ttl`` seconds after its
last renewal; a thread renews it every ``ttl / 3`` while the run goes on, so a busy event
loop cannot let it lapse. A holder that died without giving it back blocks nobody for
long: on its own host it is seen dead by its pid at once, elsewhere its lease expires.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import EngineError
from engine.state import Lease, StateError, StateStore

__all__ = ["DEFAULT_TTL", "LeaseHeldError", "RunLease", "describe_holder", "live_leases"]

log = logging.getLogger("engine.runtime")

DEFAULT_TTL = 30.0
_POLL = 0.5


class LeaseHeldError(EngineError):
    """Another run of the pipeline holds its lease."""

    def __init__(self, holder: Lease, state: str, *, waited: float | None = None) -> None:
        self.holder = holder
        after = f" (waited {waited:g}s)" if waited else ""
        super().__init__(
            f"pipeline {holder.pipeline!r} is already running{after}: "
            f"{describe_holder(holder)} holds its lease in {state}. Wait for it with "
            "`engine run --wait`, or stop that run"
        )


def describe_holder(lease: Lease) -> str:
    return f"run {lease.run_id} on host {lease.host}, pid {lease.pid}, since {lease.since}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    except OSError:
        return True
    return True


def _alive(lease: Lease, now: float, host: str) -> bool:
    """Whether a lease still binds: not expired, and its process alive when on this host."""
    if lease.expires <= now:
        return False
    return lease.host != host or _pid_alive(lease.pid)


def _store(state: Path | StateStore, *, read_only: bool = False) -> StateStore:
    return state if isinstance(state, StateStore) else StateStore(state, read_only=read_only)


def live_leases(state: Path | StateStore) -> list[Lease]:
    """Leases held now by live runs (an absent state database holds none)."""
    store = _store(state, read_only=True)
    try:
        now, host = time.time(), socket.gethostname()
        return [lease for lease in store.leases() if _alive(lease, now, host)]
    except (StateError, OSError) as exc:
        log.warning("cannot read the run leases in %s: %s", store.where, exc)
        return []
    finally:
        if store is not state:
            store.close()


class RunLease:
    """The lease of one run of ``pipeline``; use as a context manager around the run."""

    def __init__(
        self, state: Path | StateStore, pipeline: str, run_id: str, *, ttl: float = DEFAULT_TTL
    ) -> None:
        self._store = _store(state)
        self.where = self._store.where  # for messages
        self.pipeline = pipeline
        self.run_id = run_id
        self.ttl = ttl
        self.host = socket.gethostname()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.held = False

    def _mine(self, now: float) -> Lease:
        return Lease(
            pipeline=self.pipeline,
            run_id=self.run_id,
            host=self.host,
            pid=os.getpid(),
            since=datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            expires=now + self.ttl,
        )

    def try_acquire(self) -> Lease | None:
        """Take the lease if it is free; else the live holder."""
        try:
            return self._try_acquire()
        except (StateError, OSError) as exc:
            self.close()
            raise EngineError(f"cannot take the run lease in {self.where}: {exc}") from exc

    def _try_acquire(self) -> Lease | None:
        while True:
            now = time.time()
            current = self._store.lease(self.pipeline)
            if current is not None and _alive(current, now, self.host):
                return current
            if self._store.take_lease(self._mine(now), replacing=current):
                if current is not None:
                    log.warning(
                        "took over the lease of %s from %s, which is gone",
                        self.pipeline,
                        describe_holder(current),
                    )
                self.held = True
                self._thread = threading.Thread(
                    target=self._renew, name=f"lease-{self.pipeline}", daemon=True
                )
                self._thread.start()
                return None
            # Another process changed the row between the read and the write: read again.

    def acquire(
        self, wait: float | None = None, on_wait: Callable[[Lease], None] | None = None
    ) -> None:
        """Take the lease; with ``wait`` (seconds, ``math.inf`` for as long as it takes)
        poll until the holder is done, else raise :class:`LeaseHeldError` at once."""
        deadline = time.monotonic() + (wait or 0.0)
        told = False
        while True:
            holder = self.try_acquire()
            if holder is None:
                return
            if wait is None or (not math.isinf(wait) and time.monotonic() >= deadline):
                self.close()
                raise LeaseHeldError(holder, self.where, waited=wait)
            if not told and on_wait is not None:
                on_wait(holder)
                told = True
            time.sleep(_POLL)

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            try:
                if not self._store.renew_lease(self.pipeline, self.run_id, time.time() + self.ttl):
                    log.error(
                        "run %s lost the lease of %s (it expired and another run took it)",
                        self.run_id,
                        self.pipeline,
                    )
                    return
            except Exception as exc:  # the next renewal may succeed; expiry is the limit
                log.warning("cannot renew the lease of %s: %s", self.pipeline, exc)

    def release(self) -> None:
        """Give the lease back (if held) and close the state database."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        try:
            if self.held:
                self._store.release_lease(self.pipeline, self.run_id)
                self.held = False
        finally:
            self.close()

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> RunLease:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
