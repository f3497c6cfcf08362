"""The state store: cursors (compare-and-set), run leases, and through
:class:`~engine.state.history.RunHistory` run records, dead letters and schedule claims."""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass
from typing import Any

from sqlalchemy import and_, delete, select, update
from sqlalchemy.engine import Connection

from engine.state.database import StateError, now_iso
from engine.state.history import RunHistory

__all__ = ["Cursor", "CursorConflictError", "FreshCursors", "Lease", "StateStore"]


@dataclass(frozen=True)
class Lease:
    """Who runs a pipeline now: the row of the lease table (see engine.runtime.lease)."""

    pipeline: str
    run_id: str
    host: str
    pid: int
    since: str  # ISO 8601 UTC, when the run took the lease
    expires: float  # seconds since the epoch; renewed while the run goes on


@dataclass(frozen=True)
class Cursor:
    """A value kept for one component of a pipeline, with the version it was saved as."""

    pipeline: str
    component: str
    key: str
    value: Any
    version: int
    updated_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "key": self.key,
            "value": self.value,
            "version": self.version,
            "updated_at": self.updated_at,
        }


class CursorConflictError(StateError):
    """Another writer changed a cursor since it was read: nothing was overwritten."""

    def __init__(self, store: str, name: tuple[str, str, str], expected: int, found: int) -> None:
        pipeline, component, key = name
        now = f"version {found}" if found else "deleted"
        super().__init__(
            f"cursor {key!r} of {pipeline}.{component or '(pipeline)'} in {store} was changed "
            f"by another run (read at version {expected}, now {now}); this run's value was not "
            "saved. Is another run of this pipeline using the same state store without its "
            "lease?"
        )


class StateStore(RunHistory):
    """Cursors as JSON values per (pipeline, component, key), each with a version.

    ``get`` remembers the version it read and ``set`` writes only over that version (a
    compare-and-set): a value changed in between by someone else is a
    :class:`CursorConflictError`, never a silent overwrite. In a read-only store ``set`` and
    ``delete`` keep nothing.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seen: dict[tuple[str, str, str], int] = {}

    # -- cursors --------------------------------------------------------------------------
    def _where(self, pipeline: str, component: str | None = None, key: str | None = None) -> Any:
        c = self.tables.cursors.c
        terms = [c.pipeline == pipeline]
        if component is not None:
            terms.append(c.component == component)
        if key is not None:
            terms.append(c.key == key)
        return and_(*terms)

    def cursors(self, pipeline: str, component: str | None = None) -> list[Cursor]:
        """The values kept for ``pipeline`` (one component's, or all)."""
        t = self.tables.cursors
        query = select(t).where(self._where(pipeline, component)).order_by(t.c.component, t.c.key)

        def work(conn: Connection) -> list[Cursor]:
            return [
                Cursor(r.pipeline, r.component, r.key, json.loads(r.value), r.version, r.updated_at)
                for r in conn.execute(query)
            ]

        return self._read(work, [])

    def read(self, pipeline: str, component: str, key: str) -> Cursor | None:
        found = [c for c in self.cursors(pipeline, component) if c.key == key]
        return found[0] if found else None

    def get(self, pipeline: str, component: str, key: str, default: Any = None) -> Any:
        found = self.read(pipeline, component, key)
        self._seen[(pipeline, component, key)] = found.version if found else 0
        return found.value if found is not None else default

    def set(self, pipeline: str, component: str, key: str, value: Any) -> None:
        """Save ``value`` over the version :meth:`get` read (never read: over the current)."""
        if self.read_only:
            return
        name = (pipeline, component, key)
        expected = self._seen.get(name)
        if expected is None:
            current = self.read(*name)
            expected = current.version if current else 0
        self._seen[name] = self.compare_and_set(pipeline, component, key, value, expected)

    def compare_and_set(
        self, pipeline: str, component: str, key: str, value: Any, expected: int
    ) -> int:
        """Save ``value`` if the saved version is still ``expected`` (0: none saved); returns
        the new version, raises :class:`CursorConflictError` otherwise."""
        t = self.tables.cursors
        encoded = json.dumps(value)
        with self._tx() as conn:
            if expected == 0:
                row = {
                    "pipeline": pipeline,
                    "component": component,
                    "key": key,
                    "value": encoded,
                    "version": 1,
                    "updated_at": now_iso(),
                }
                won = self._insert_new(conn, t, row)
            else:
                won = (
                    conn.execute(
                        update(t)
                        .where(self._where(pipeline, component, key), t.c.version == expected)
                        .values(value=encoded, version=expected + 1, updated_at=now_iso())
                    ).rowcount
                    == 1
                )
        if not won:
            current = self.read(pipeline, component, key)
            found = current.version if current else 0
            raise CursorConflictError(self.where, (pipeline, component, key), expected, found)
        return expected + 1

    def delete(self, pipeline: str, component: str, key: str) -> None:
        """Remove a value (only the version :meth:`get` read, when it read one)."""
        if self.read_only:
            return
        name = (pipeline, component, key)
        t = self.tables.cursors
        where = self._where(pipeline, component, key)
        expected = self._seen.pop(name, None)
        if expected:
            where = and_(where, t.c.version == expected)
        with self._tx() as conn:
            gone = conn.execute(delete(t).where(where)).rowcount
        if expected and not gone:
            current = self.read(*name)
            found = current.version if current else 0
            raise CursorConflictError(self.where, name, expected, found)

    def reset(self, pipeline: str, component: str | None = None) -> list[Cursor]:
        """Remove every value of ``pipeline`` (or of one component); returns what went."""
        found = self.cursors(pipeline, component)
        if found and not self.read_only:
            t = self.tables.cursors
            with self._tx() as conn:
                for cursor in found:
                    conn.execute(
                        delete(t).where(
                            self._where(pipeline, cursor.component, cursor.key),
                            t.c.version == cursor.version,
                        )
                    )
        return found

    # -- leases: each change is one statement, atomic between processes ---------------------
    def lease(self, pipeline: str) -> Lease | None:
        found = [lease for lease in self.leases() if lease.pipeline == pipeline]
        return found[0] if found else None

    def leases(self) -> list[Lease]:
        t = self.tables.leases
        query = select(t.c.pipeline, t.c.run_id, t.c.host, t.c.pid, t.c.since, t.c.expires)
        return self._read(lambda conn: [Lease(*row) for row in conn.execute(query)], [])

    def take_lease(self, lease: Lease, *, replacing: Lease | None = None) -> bool:
        """Write ``lease`` if the pipeline has none (or still has exactly ``replacing``)."""
        t = self.tables.leases
        with self._tx() as conn:
            if replacing is None:
                columns = ("pipeline", "run_id", "host", "pid", "since", "expires")
                return self._insert_new(conn, t, dict(zip(columns, astuple(lease), strict=True)))
            result = conn.execute(
                update(t)
                .where(
                    t.c.pipeline == lease.pipeline,
                    t.c.run_id == replacing.run_id,
                    t.c.expires == replacing.expires,
                )
                .values(
                    run_id=lease.run_id,
                    host=lease.host,
                    pid=lease.pid,
                    since=lease.since,
                    expires=lease.expires,
                )
            )
            return result.rowcount == 1

    def renew_lease(self, pipeline: str, run_id: str, expires: float) -> bool:
        """Move the expiry of ``run_id``'s lease; False when it no longer holds it."""
        t = self.tables.leases
        with self._tx() as conn:
            result = conn.execute(
                update(t)
                .where(t.c.pipeline == pipeline, t.c.run_id == run_id)
                .values(expires=expires)
            )
            return result.rowcount == 1

    def release_lease(self, pipeline: str, run_id: str) -> None:
        t = self.tables.leases
        with self._tx() as conn:
            conn.execute(delete(t).where(t.c.pipeline == pipeline, t.c.run_id == run_id))


class FreshCursors:
    """The cursors of a full refresh: ``get`` gives the default, as if nothing were saved,
    and ``set`` replaces the saved value (compare-and-set against the version there now).
    :meth:`finish`, when the run succeeded, removes the values the run did not write, so
    the state is what a first run would leave."""

    def __init__(self, store: StateStore, pipeline: str) -> None:
        self.store = store
        self.pipeline = pipeline
        self._written: set[tuple[str, str]] = set()

    def get(self, pipeline: str, component: str, key: str, default: Any = None) -> Any:
        self.store.get(pipeline, component, key)  # the version to replace
        return default

    def set(self, pipeline: str, component: str, key: str, value: Any) -> None:
        self.store.set(pipeline, component, key, value)
        self._written.add((component, key))

    def finish(self) -> list[Cursor]:
        """Remove the component values this run did not write; returns them."""
        stale = [
            c
            for c in self.store.cursors(self.pipeline)
            if c.component and (c.component, c.key) not in self._written
        ]
        for cursor in stale:
            self.store.delete(self.pipeline, cursor.component, cursor.key)
        return stale
