"""``file`` source: one path or a glob, decoded by a codec, streamed in batches."""

from __future__ import annotations

import bisect
import contextlib
import glob
import io
import itertools
import mmap
import os
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace
from functools import partial
from itertools import islice
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, cast, overload

import anyio
from pydantic import BaseModel, ByteSize, ConfigDict, Field

from engine.codecs import CodecSpec, codec_for_path
from engine.codecs.base import DecodeAt, RecordCuts
from engine.components.base import Source, SourceConfig
from engine.errors import DataError, PermanentError
from engine.records import Chunk
from engine.records.ahead import ReadAhead

if TYPE_CHECKING:
    from engine.codecs.base import CodecConfig
    from engine.records.digest import HashingReader
    from engine.registry import Registry

__all__ = ["FilePartitioning", "FileSource", "FileSourceConfig"]


class FilePartitioning(BaseModel):
    """How `engine run --workers N` splits what this source reads into partitions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: ByteSize | None = Field(
        None,
        description="Each file of the path (or glob) is a partition; a big file is cut into "
        "byte ranges, as many as a multiple of the workers, on record boundaries (CSV "
        "without `escapechar` or `skip_rows`, and JSON Lines; a line break inside a quoted "
        "CSV field is never a boundary). Unset: two ranges per worker, between 8 and 64 MiB "
        "on average (fewer for a file under 16 MiB per worker, more for one over 128 MiB per "
        "worker; a file under 16 MiB is not cut), the last range of each worker half as long "
        "as the others so that the workers finish together. Set: ranges of about equal "
        "length, at most about this long, for a file larger than this. A number of bytes or "
        "a size such as `64KiB`, `32MiB`.",
        examples=["64KiB", "256MiB"],
    )


class FileSourceConfig(SourceConfig):
    """Reads local files: one path or a glob, relative to the pipeline file."""

    type: Literal["file"] = "file"
    path: str = Field(description="A file or a glob (`data/*.csv`, `in/**/*.jsonl`).")
    codec: CodecSpec | None = Field(
        None, description="How to decode; default: guessed from the file extension."
    )
    partition: FilePartitioning = Field(
        default_factory=FilePartitioning,
        description="Partitions for `engine run --workers N`: one per file, big files cut "
        "into byte ranges.",
    )

    def resource(self) -> str | None:
        return self.path


class FileSource(Source[FileSourceConfig]):
    """Resumable: :meth:`position` says where an interrupted read stopped (the files fully
    read, the byte offset in the current one, what the codec needs to go on), and a run
    given it by :meth:`resume_from` reads on from there."""

    def __init__(self, config: FileSourceConfig, context: Any) -> None:
        super().__init__(config, context)
        self._from: dict[str, Any] | None = None  # the position a resumed read starts at
        self._at: tuple[int, Path, int, DecodeAt | None] | None = None  # file, start, codec
        self._part: dict[str, Any] | None = None  # the one file or byte range read
        # for progress(): the files' sizes (a byte range's length), where the bytes counted
        # start, and the file being read
        self._sizes: list[int] = []
        self._origin = 0
        self._stream: BinaryIO | None = None

    def files(self) -> list[Path]:
        if self._part is not None:
            return [Path(self._part["file"])]
        pattern = str(self.context.resolve(self.config.path))
        if glob.has_magic(pattern):
            return [
                Path(p) for p in sorted(glob.glob(pattern, recursive=True)) if Path(p).is_file()
            ]
        return [Path(pattern)]

    def codec_for(self, path: Path) -> CodecConfig:
        codec = self.config.codec or codec_for_path(path)
        if codec is None:
            raise PermanentError(f"cannot tell the codec of {path} from its extension; set `codec`")
        return codec

    async def read(self) -> AsyncIterator[Chunk]:
        files = self.files()
        if not files:
            raise PermanentError(f"no file matches {self.config.path!r}")
        size = self.config.batch.size
        part = self._part or {}
        self._origin = part.get("start") or 0
        last = part.get("end")
        self._sizes = [last - self._origin] if last is not None else [_size(p) for p in files]
        start = self._from or {"index": 0, "offset": 0, "line": 0, "names": None}
        for index, path in enumerate(files):
            if index < start["index"]:
                continue
            codec = self.codec_for(path)
            offset = start["offset"] if index == start["index"] else 0
            at: DecodeAt | None = None
            if codec.line_ends() is not None:
                at = DecodeAt(0, None, 0)
                if offset:
                    at = DecodeAt(start["line"], start["names"], start["line"], offset)
            self._at = (index, path, offset, at)
            try:
                stream: BinaryIO = path.open("rb")
                if offset:
                    stream.seek(offset)
            except OSError as exc:
                raise PermanentError(f"cannot open {path}: {exc.strerror or exc}") from None
            self._stream = stream
            end = self._part.get("end") if self._part is not None else None
            if end is not None:
                stream = cast(BinaryIO, _Range(stream, end - offset))
            digester = self.context.digester
            hashed = digester.reader(stream, offset) if digester is not None else None
            readable: BinaryIO = hashed if hashed is not None else stream
            if end is not None and hashed is None:
                readable = cast(BinaryIO, io.BufferedReader(cast(io.RawIOBase, stream)))
            columns = self.context.columnar and codec.reads_columns()
            threaded = columns and codec.columns_in_thread
            if columns:
                at = at or DecodeAt(0, None, 0)
                decoded = codec.decode_columns(readable, source=str(path), at=at, batch_size=size)
            elif at is None:
                decoded = codec.decode(readable, source=str(path), batch_size=size)
            else:
                decoded = codec.decode(readable, source=str(path), batch_size=size, at=at)  # type: ignore[call-arg]
            with readable:
                if threaded:
                    # polars parses in a thread of its own, a chunk ahead of the run
                    assert at is not None
                    self._at = (index, path, offset, replace(at))
                    ahead = ReadAhead(decoded, partial(_made, hashed, at), name="read-ahead")
                    try:
                        while (made := await ahead.next()) is not None:
                            ready, where = made
                            self._at = (index, path, offset, where)
                            yield ready
                    finally:
                        with anyio.CancelScope(shield=True):
                            await ahead.close()
                else:
                    while (chunk := next(decoded, None)) is not None:
                        if hashed is not None:
                            chunk.content = hashed.take()
                        yield chunk
                        await anyio.lowlevel.checkpoint()
        self._at = (len(files), files[-1], 0, None)
        self._stream = None

    def progress(self) -> tuple[int, int] | None:
        """Bytes read of all the files: those before the current one, and its offset."""
        if not self._sizes or self._at is None:
            return None
        index = self._at[0]
        stream = self._stream
        done = sum(self._sizes[:index])
        if stream is not None and not stream.closed and index < len(self._sizes):
            done += min(max(stream.tell() - self._origin, 0), self._sizes[index])
        return done, sum(self._sizes)

    # -- partitions -----------------------------------------------------------------------
    async def partitions(self, workers: int) -> Sequence[dict[str, Any]]:
        """One partition per file; a file past ``partition.size`` cut into byte ranges of
        about equal length, as many as a multiple of ``workers`` (so that the workers
        finish together), found as they are asked for."""
        files = self.files()
        if not files:
            raise PermanentError(f"no file matches {self.config.path!r}")
        size = self.config.partition.size
        step = None if size is None else max(int(size), 1)
        codecs = [(path, self.codec_for(path)) for path in files]

        def plan() -> _Ranges:
            return _Ranges([_FileRanges.plan(path, codec, step, workers) for path, codec in codecs])

        return await anyio.to_thread.run_sync(plan)

    def use_partition(self, spec: dict[str, Any]) -> None:
        if not spec:
            return
        self._part = spec
        if spec.get("start"):
            self._from = {
                "index": 0,
                "offset": spec["start"],
                "line": spec["line"],
                "names": spec.get("names"),
            }

    # -- resuming -------------------------------------------------------------------------
    def _identity(self) -> list[list[object]]:
        """Each file with its size and modification time (OSError for one that is not a
        regular file, such as a pipe: it cannot be read again from an offset)."""
        found = []
        for path in self.files():
            stat = path.stat()
            if not S_ISREG(stat.st_mode):
                raise OSError(0, "not a regular file", str(path))
            found.append([str(path), stat.st_size, stat.st_mtime_ns])
        return found

    def position(self) -> dict[str, Any] | None:
        """Where the read stopped, after the last chunk it yielded (None: not resumable)."""
        try:
            files = self._identity()
        except OSError:
            return None
        if self._at is None:  # stopped before it read: where it was to start
            first = self._from or {"index": 0, "offset": 0, "line": 0, "names": None}
            return {**first, "files": files}
        index, path, start, at = self._at
        if index >= len(files):
            return {"files": files, "index": index, "offset": 0, "line": 0, "names": None}
        pattern = self.codec_for(path).line_ends()
        if at is None or pattern is None:
            return None
        try:
            offset = start
            if at.done != at.line:
                offset = _after_lines(path, start, at.done - at.line, pattern)
        except OSError:
            return None
        return {
            "files": files,
            "index": index,
            "offset": offset,
            "line": at.done,
            "names": at.names,
        }

    def resume_problem(self, position: dict[str, Any]) -> str | None:
        """Why the read cannot go on from ``position`` (an input changed), or None."""
        try:
            files = self._identity()
        except OSError as exc:
            return f"cannot read {exc.filename}: {exc.strerror}"
        if files != position["files"]:
            changed = next(
                (f"{a[0]}" for a, b in zip(files, position["files"], strict=False) if a != b),
                "the files matching the path",
            )
            return f"input changed since it was interrupted: {changed}"
        return None

    def resume_from(self, position: dict[str, Any]) -> None:
        self._from = position

    def resumes_at(self) -> str:
        """Where a resumed read starts, for people and the audit trail."""
        position = self._from or {"index": 0, "offset": 0, "line": 0}
        files = position.get("files") or [[self.config.path]]
        index = position["index"]
        if index >= len(files):
            return "after its last file"
        return f"{files[index][0]} at byte {position['offset']} (line {position['line'] + 1})"


def _made(hashed: HashingReader | None, at: DecodeAt, chunk: Chunk) -> DecodeAt:
    """What a chunk decoded ahead keeps of its moment (in the decoding thread, before it
    reads on): the digest of the bytes read for it, and where the decoder stood, which is
    where a resumed read goes on from once the chunk is delivered."""
    if hashed is not None:
        chunk.content = hashed.take()
    return replace(at)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class _Range(io.RawIOBase):
    """The next ``length`` bytes of a stream, then its end."""

    def __init__(self, stream: BinaryIO, length: int) -> None:
        super().__init__()
        self._stream = stream
        self._left = length

    @property
    def name(self) -> str:
        return str(getattr(self._stream, "name", "<stream>"))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._left <= 0:
            return 0
        view = memoryview(buffer).cast("B")[: self._left]
        n = self._stream.readinto(view) or 0  # type: ignore[attr-defined]
        self._left -= n
        return n

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            super().close()


class _FileRanges:
    """The partitions of one file: the whole file, or ``count`` byte ranges cut where
    records start, each with the lines before it (for locations) and the CSV column names
    in use. The ``k``-th cut is the first record start at its target (see
    :func:`range_targets`) or past it: a long record lengthens one range, not every range
    after it. The cuts are found as the ranges are asked for, reading the file once from
    its start: the first ranges are read while the later ones are still being found. A
    range with no record start left in it (the records there are longer than the ranges)
    is empty."""

    def __init__(
        self,
        path: Path,
        count: int = 1,
        cuts: RecordCuts | None = None,
        size: int = 0,
        names: list[str] | None = None,
        targets: list[int] | None = None,
    ) -> None:
        self.path = path
        self.count = count
        self._cuts = cuts
        self._size = size
        self._names = names
        # where the k-th cut is looked for (the last: the end): even ranges unless told
        self._targets = targets or range_targets(size, count)
        self._starts = [(0, 0)]  # the cuts found so far, each with the lines before it
        self._end: int | None = None  # the lines of the file, once no cut is left

    @classmethod
    def plan(cls, path: Path, codec: CodecConfig, step: int | None, workers: int) -> _FileRanges:
        """``step``: the longest range (None: as :func:`range_count` chooses)."""
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise PermanentError(f"cannot read {path}: {exc.strerror or exc}") from None
        cuts = codec.record_cuts() if codec.line_ends() is not None else None
        count = range_count(size, step, workers)
        if count < 2 or cuts is None:
            return cls(path)
        targets = range_targets(size, count, workers if step is None else None)
        return cls(path, count, cuts, size, _names(path, codec), targets)

    def __getitem__(self, index: int) -> dict[str, Any]:
        if self._cuts is None:
            return {"file": str(self.path)}
        self._find(index + 1)
        last = len(self._starts) - 1
        if index > last:  # nothing left to read
            assert self._end is not None
            start, line = self._size, self._end
        else:
            start, line = self._starts[index]
        end = self._starts[index + 1][0] if index < last else self._size
        return {
            "file": str(self.path),
            "start": start,
            "end": end,
            "line": line,
            "names": self._names,
        }

    def _find(self, cut: int) -> None:
        """Find the cuts up to the ``cut``-th, or until there is none left."""
        if self._cuts is None or len(self._starts) > cut or self._end is not None:
            return
        try:
            with self.path.open("rb", buffering=0) as f:
                while len(self._starts) <= cut:
                    start, lines = self._starts[-1]
                    target = self._targets[len(self._starts)]
                    gap = max(target - start, 1)
                    found = self._cuts.after(f, start, lines, gap, self._size)
                    if found is None:
                        self._end = lines + self._cuts.breaks(f, start, self._size)
                        return
                    self._starts.append(found)
        except OSError as exc:
            raise PermanentError(f"cannot read {self.path}: {exc.strerror or exc}") from None


class _Ranges(Sequence[dict[str, Any]]):
    """The partitions of a source's files, in file order."""

    def __init__(self, files: list[_FileRanges]) -> None:
        self._files = files
        self._firsts = list(itertools.accumulate((f.count for f in files), initial=0))

    def __len__(self) -> int:
        return self._firsts[-1]

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        index = range(len(self))[index]  # an IndexError past either end
        which = bisect.bisect_right(self._firsts, index) - 1
        return self._files[which][index - self._firsts[which]]


#: unset ``partition.size``: ranges per worker, and the shortest and longest range (on
#: average: see :func:`range_targets`): enough ranges that the workers finish together, few
#: enough that what each one costs (its events, opening its output; about 50 ms) stays
#: small, none so long that joining the last one's piece keeps the run waiting
RANGES_PER_WORKER = 2
SHORTEST_RANGE = 8 << 20
LONGEST_RANGE = 64 << 20


def range_count(size: int, step: int | None, workers: int) -> int:
    """Into how many about equal byte ranges a file of ``size`` bytes is cut (1: it is
    not): a multiple of ``workers`` where it can; with ``step``, ranges at most that long;
    without, :data:`RANGES_PER_WORKER` per worker, each between :data:`SHORTEST_RANGE` and
    :data:`LONGEST_RANGE` bytes."""
    if step is not None:
        if size <= step:
            return 1
        return _multiple(-(-size // step), workers)
    parts = RANGES_PER_WORKER * workers
    if size // parts < SHORTEST_RANGE:
        parts = size // SHORTEST_RANGE
        return parts - parts % workers if parts >= workers else max(parts, 1)
    if -(-size // parts) > LONGEST_RANGE:
        return _multiple(-(-size // LONGEST_RANGE), workers)
    return parts


def range_targets(size: int, count: int, workers: int | None = None) -> list[int]:
    """Where ``count`` ranges of a ``size``-byte file start, and the end: even ranges,
    or with ``workers`` (an unset ``partition.size``), in rounds of one range per worker,
    the last round's ranges half as long as the others, so that a worker slowed down on
    the way (by the machine's other work, or denser records) finishes close to the others.
    Even ranges where there is one round."""
    weights = [1] * count
    if workers and count // workers >= 2 and not count % workers:
        weights = [2] * (count - workers) + [1] * workers
    total = sum(weights)
    return [w * size // total for w in itertools.accumulate(weights, initial=0)]


def _multiple(parts: int, workers: int) -> int:
    return -(-parts // workers) * workers


def _names(path: Path, codec: CodecConfig) -> list[str] | None:
    """The column names a read of the file from its start takes (CSV; None for others)."""
    at = DecodeAt(0, None, 0)
    # a bad first row is reported by the partition that reads it
    with path.open("rb") as stream, contextlib.suppress(DataError):
        decoded = codec.decode(stream, source=str(path), batch_size=1, at=at)  # type: ignore[call-arg]
        next(iter(decoded), None)
    return at.names


def _after_lines(path: Path, start: int, lines: int, breaks: re.Pattern[bytes]) -> int:
    """The byte offset just after ``lines`` line breaks from ``start`` (the file's size when
    it has fewer: its last line has no break)."""
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size <= start:
            return size
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as data:
            count = end = 0
            match = None
            for match in islice(breaks.finditer(data, start), lines):
                count += 1
                end = match.end()
            del match
    return end if count == lines else size


def register(registry: Registry) -> None:
    registry.register(FileSourceConfig, FileSource)
