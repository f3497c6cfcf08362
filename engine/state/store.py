"""The state store: cursors (compare-and-set), run leases, and through
:class:`~engine.state.history.RunHistory` run records, dead letters and schedule claims."""

from __future__ import annotations

import json
from dataclasses import astuple, dataclass
from typing import Any

from engine.state.database import Session, StateError, now_iso
from engine.state.history import RunHistory, columns_sql

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
    def _where(self, *, component: bool, key: bool) -> str:
        q = self.quote
        terms = [f"{q('pipeline')} = :pipeline"]
        if component:
            terms.append(f"{q('component')} = :component")
        if key:
            terms.append(f"{q('key')} = :key")
        return " AND ".join(terms)

    def cursors(self, pipeline: str, component: str | None = None) -> list[Cursor]:
        """The values kept for ``pipeline`` (one component's, or all)."""
        q = self.quote
        sql = (
            f"SELECT {columns_sql(q, _CURSOR)} FROM {self.table('cursors')} "
            f"WHERE {self._where(component=component is not None, key=False)} "
            f"ORDER BY {q('component')}, {q('key')}"
        )
        params = {"pipeline": pipeline, "component": component}

        def work(session: Session) -> list[Cursor]:
            return [
                Cursor(p, c, k, json.loads(value), version, updated)
                for p, c, k, value, version, updated in session.rows(sql, params)
            ]

        return self.reading(work, [])

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
        q = self.quote
        row = {
            "pipeline": pipeline,
            "component": component,
            "key": key,
            "value": json.dumps(value),
            "version": expected + 1,
            "updated_at": now_iso(),
        }
        with self.session() as session:
            if expected == 0:
                won = session.insert_new(self.insert_sql("cursors", _CURSOR), row, q("pipeline"))
            else:
                sql = (
                    f"UPDATE {self.table('cursors')} SET {q('value')} = :value, "
                    f"{q('version')} = :version, {q('updated_at')} = :updated_at "
                    f"WHERE {self._where(component=True, key=True)} AND {q('version')} = :expected"
                )
                won = session.run(sql, {**row, "expected": expected}) == 1
        if not won:
            current = self.read(pipeline, component, key)
            found = current.version if current else 0
            raise CursorConflictError(self.where, (pipeline, component, key), expected, found)
        return expected + 1

    def _delete_sql(self, *, versioned: bool) -> str:
        sql = f"DELETE FROM {self.table('cursors')} WHERE {self._where(component=True, key=True)}"
        return f"{sql} AND {self.quote('version')} = :version" if versioned else sql

    def delete(self, pipeline: str, component: str, key: str) -> None:
        """Remove a value (only the version :meth:`get` read, when it read one)."""
        if self.read_only:
            return
        name = (pipeline, component, key)
        expected = self._seen.pop(name, None)
        params = {"pipeline": pipeline, "component": component, "key": key, "version": expected}
        with self.session() as session:
            gone = session.run(self._delete_sql(versioned=bool(expected)), params)
        if expected and not gone:
            current = self.read(*name)
            found = current.version if current else 0
            raise CursorConflictError(self.where, name, expected, found)

    def reset(self, pipeline: str, component: str | None = None) -> list[Cursor]:
        """Remove every value of ``pipeline`` (or of one component); returns what went."""
        found = self.cursors(pipeline, component)
        if found and not self.read_only:
            with self.session() as session:
                session.many(
                    self._delete_sql(versioned=True),
                    [
                        {
                            "pipeline": pipeline,
                            "component": c.component,
                            "key": c.key,
                            "version": c.version,
                        }
                        for c in found
                    ],
                )
        return found

    # -- leases: each change is one statement, atomic between processes ---------------------
    def lease(self, pipeline: str) -> Lease | None:
        found = [lease for lease in self.leases() if lease.pipeline == pipeline]
        return found[0] if found else None

    def leases(self) -> list[Lease]:
        sql = f"SELECT {columns_sql(self.quote, _LEASE)} FROM {self.table('leases')}"
        return self.reading(lambda session: [Lease(*row) for row in session.rows(sql)], [])

    def take_lease(self, lease: Lease, *, replacing: Lease | None = None) -> bool:
        """Write ``lease`` if the pipeline has none (or still has exactly ``replacing``)."""
        q = self.quote
        values = dict(zip(_LEASE, astuple(lease), strict=True))
        with self.session() as session:
            if replacing is None:
                sql = self.insert_sql("leases", _LEASE)
                return session.insert_new(sql, values, q("pipeline"))
            sets = ", ".join(f"{q(c)} = :{c}" for c in _LEASE[1:])
            sql = (
                f"UPDATE {self.table('leases')} SET {sets} WHERE {q('pipeline')} = :pipeline "
                f"AND {q('run_id')} = :old_run_id AND {q('expires')} = :old_expires"
            )
            old = {"old_run_id": replacing.run_id, "old_expires": replacing.expires}
            return session.run(sql, {**values, **old}) == 1

    def renew_lease(self, pipeline: str, run_id: str, expires: float) -> bool:
        """Move the expiry of ``run_id``'s lease; False when it no longer holds it."""
        q = self.quote
        sql = (
            f"UPDATE {self.table('leases')} SET {q('expires')} = :expires "
            f"WHERE {q('pipeline')} = :pipeline AND {q('run_id')} = :run_id"
        )
        with self.session() as session:
            return (
                session.run(sql, {"pipeline": pipeline, "run_id": run_id, "expires": expires}) == 1
            )

    def release_lease(self, pipeline: str, run_id: str) -> None:
        q = self.quote
        sql = (
            f"DELETE FROM {self.table('leases')} "
            f"WHERE {q('pipeline')} = :pipeline AND {q('run_id')} = :run_id"
        )
        with self.session() as session:
            session.run(sql, {"pipeline": pipeline, "run_id": run_id})


_CURSOR = ("pipeline", "component", "key", "value", "version", "updated_at")
_LEASE = ("pipeline", "run_id", "host", "pid", "since", "expires")


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
