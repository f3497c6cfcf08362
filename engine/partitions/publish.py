"""Publishing what partitions handed over, once every partition is done.

A file sink's output with ``{partition}`` in its path is one piece per partition: each is
renamed into place. Without it, every partition wrote a piece of the one output: the
pieces are joined in partition order (each codec says how its outputs join: a CSV header
only once, one JSON array), fsynced, and renamed into place, so the output is the very
bytes one process writes. All outputs are finished before the first is renamed: a failed
join publishes nothing.

The pieces are joined while the run goes on: as soon as every partition before one has
been joined, its pieces are appended (in the kernel, where it can) to the first piece of
their output, which becomes the output, and fsynced; so what is left to do once the last
partition is done is its own piece.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from engine.errors import PermanentError
from engine.partitions.spec import PartitionResult

__all__ = ["Outputs", "discard_outputs", "merge_dead_letters", "publish_outputs"]

_COPY = 1 << 20


class _Output:
    """One output being joined: the first piece with records is the file the later ones
    are appended to (a piece without records adds nothing). No file is held open between
    pieces: a run may have an output per partition."""

    def __init__(self, first: dict[str, Any]) -> None:
        self.final = Path(first["final"])
        self.framing = first["framing"]
        self.first = Path(first["tmp"])  # published as it is when no piece has records
        self.base: Path | None = None
        self.size = 0
        # fsynced: a piece its worker made durable, nothing appended to it since
        self.synced = bool(first.get("durable"))
        self._take(first)

    def add(self, piece: dict[str, Any]) -> None:
        if self.framing is None:
            raise PermanentError(
                f"{self.final}: its codec cannot join outputs written in partitions; "
                "put {partition} in the sink's path"
            )
        self._take(piece)

    def _take(self, piece: dict[str, Any]) -> None:
        if not piece["records"]:
            return
        path = Path(piece["tmp"])
        if self.base is None:
            self.base = path
            self.size = path.stat().st_size
            self.synced = bool(piece.get("durable"))
            return
        head, sep, tail = int(self.framing[0]), bytes.fromhex(self.framing[1]), int(self.framing[2])
        self.synced = False
        out = os.open(self.base, os.O_WRONLY)
        try:
            self.size -= tail  # the piece before is no longer the last
            os.ftruncate(out, self.size)
            if sep:
                os.pwrite(out, sep, self.size)
                self.size += len(sep)
            with path.open("rb", buffering=0) as src:
                length = os.fstat(src.fileno()).st_size - head
                _copy(src.fileno(), head, out, self.size, length, path)
            self.size += length
        finally:
            os.close(out)

    def sync(self) -> None:
        """Make what is joined so far durable."""
        if self.synced:
            return
        fd = os.open(self.base or self.first, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        self.synced = True

    def finish(self) -> Path:
        """The file to rename into place, fsynced (a piece of a joined output its worker
        left to the run to fsync)."""
        self.sync()
        return self.base or self.first


class Outputs:
    """What the file sinks of a run's partitions hand over: joined per output, in
    partition order, as the partitions finish (:meth:`add`), and published by
    :meth:`publish` once every partition succeeded, or removed by :meth:`discard`."""

    def __init__(self) -> None:
        self._results: dict[int, PartitionResult] = {}
        self._joined = 0  # partitions 0 .. _joined-1 are joined
        self._outputs: dict[str, _Output] = {}
        self._error: str | None = None  # why a join failed

    def add(self, result: PartitionResult) -> None:
        """Take one partition's result; join the pieces of every partition whose
        predecessors are joined (a failure to join fails :meth:`publish`)."""
        self._results[result.index] = result
        if self._error is not None:
            return
        touched: dict[str, _Output] = {}
        final = ""
        try:
            while (ready := self._results.get(self._joined)) is not None and ready.ok:
                for pieces in ready.outputs.values():
                    for piece in pieces:
                        final = piece["final"]
                        output = self._outputs.get(final)
                        if output is None:
                            output = self._outputs[final] = _Output(piece)
                        else:
                            output.add(piece)
                        touched[final] = output
                self._joined += 1
            for final in touched:  # a little at a time: little is left to write at the end
                touched[final].sync()
        except PermanentError as exc:
            self._error = str(exc)
        except OSError as exc:
            self._error = f"cannot join {final}: {exc.strerror or exc}"

    def publish(self) -> int:
        """Rename every output into place (all fsynced first); the number published."""
        try:
            if self._error is not None:
                raise PermanentError(self._error)
            if self._joined != len(self._results):
                raise PermanentError("a partition's outputs were not joined")
            staged = [(output.finish(), output.final) for output in self._outputs.values()]
            folders: set[Path] = set()
            for tmp, target in staged:
                if target.is_dir():
                    raise PermanentError(f"cannot publish {target}: a folder stands there")
                os.replace(tmp, target)
                folders.add(target.parent)
            for folder in folders:
                _fsync_folder(folder)
        except OSError as exc:
            raise PermanentError(f"cannot publish {exc.filename}: {exc.strerror or exc}") from None
        finally:
            self.discard()
        return len(staged)

    def discard(self) -> None:
        """Remove what is left of what partitions handed over (all of it unless
        published)."""
        discard_outputs(self._results.values())


def publish_outputs(results: Sequence[PartitionResult]) -> int:
    """Join and rename every handed-over output into place; the number published."""
    outputs = Outputs()
    for result in sorted(results, key=lambda r: r.index):
        outputs.add(result)
    return outputs.publish()


def discard_outputs(results: Iterable[PartitionResult]) -> None:
    """Remove what partitions handed over (the run failed or was stopped)."""
    _remove(Path(p["tmp"]) for r in results for ps in r.outputs.values() for p in ps)


def _copy(src: int, start: int, out: int, at: int, length: int, path: Path) -> None:
    """``length`` bytes of ``src`` from ``start`` to ``out`` at ``at``, in the kernel where
    it can."""
    while length > 0:
        try:
            n = os.copy_file_range(src, out, min(length, 1 << 30), start, at)
        except (AttributeError, OSError):
            data = memoryview(os.pread(src, min(_COPY, length), start))
            n = len(data)
            done = 0
            while done < n:
                done += os.pwrite(out, data[done:], at + done)
        if n == 0:
            raise PermanentError(f"{path} is shorter than when it was handed over")
        start, at, length = start + n, at + n, length - n


def merge_dead_letters(results: Sequence[PartitionResult], final: Path) -> Path | None:
    """Append every partition's dead letters, in partition order, to the run's file."""
    ordered = sorted(results, key=lambda r: r.index)
    files = [Path(r.dead_letter_path) for r in ordered if r.dead_letter_path]
    files = [f for f in files if f.is_file()]
    if not files:
        return None
    final.parent.mkdir(parents=True, exist_ok=True)
    with final.open("ab") as out:
        for path in files:
            with path.open("rb") as src:
                shutil.copyfileobj(src, out, _COPY)
        out.flush()
        os.fsync(out.fileno())
    _remove(files)
    return final


def _remove(paths: Iterable[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
