"""``file`` source: one path or a glob, decoded by a codec, streamed in batches."""

from __future__ import annotations

import contextlib
import glob
import io
import mmap
import os
import re
from collections.abc import AsyncIterator
from itertools import islice
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any, BinaryIO, Literal, cast

import anyio
from pydantic import BaseModel, ByteSize, ConfigDict, Field

from engine.codecs import CodecSpec, codec_for_path
from engine.codecs.base import DecodeAt
from engine.components.base import Source, SourceConfig
from engine.errors import DataError, PermanentError
from engine.records import Chunk

if TYPE_CHECKING:
    from engine.codecs.base import CodecConfig
    from engine.registry import Registry

__all__ = ["FilePartitioning", "FileSource", "FileSourceConfig"]


class FilePartitioning(BaseModel):
    """How `engine run --workers N` splits what this source reads into partitions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    size: ByteSize = Field(
        ByteSize(16 * 1024 * 1024),
        description="Each file of the path (or glob) is a partition; a file larger than this "
        "is cut into byte ranges about this long, on record boundaries (CSV without "
        "`escapechar` or `skip_rows`, and JSON Lines; a line break inside a quoted CSV field "
        "is never a boundary). A number of bytes or a size such as `64KiB`, `32MiB`.",
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
                while True:
                    # polars parses in a worker thread: the stages after this one go on
                    chunk = (
                        await anyio.to_thread.run_sync(next, decoded, None)
                        if threaded
                        else next(decoded, None)
                    )
                    if chunk is None:
                        break
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
    async def partitions(self, workers: int) -> list[dict[str, Any]]:
        """One partition per file; a file past ``partition.size`` cut into byte ranges of
        about equal length, as many as a multiple of ``workers`` (so that the workers
        finish together)."""
        files = self.files()
        if not files:
            raise PermanentError(f"no file matches {self.config.path!r}")
        step = max(int(self.config.partition.size), 1)
        found: list[dict[str, Any]] = []
        for path in files:
            codec = self.codec_for(path)
            ranges = await anyio.to_thread.run_sync(_ranges, path, codec, step, workers)
            found.extend(ranges)
        return found

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


def _ranges(path: Path, codec: CodecConfig, step: int, workers: int) -> list[dict[str, Any]]:
    """The partitions of one file: the whole file, or byte ranges cut where records start,
    each with the lines before it (for locations) and the CSV column names in use."""
    whole = [{"file": str(path)}]
    try:
        size = path.stat().st_size
        pattern = codec.line_ends()
        if size <= step or pattern is None:
            return whole
        step = _even_step(size, step, workers)
        with path.open("rb", buffering=0) as f:
            cuts = codec.record_starts(f, step)
        if cuts is None or len(cuts) < 2:
            return whole
    except OSError as exc:
        raise PermanentError(f"cannot read {path}: {exc.strerror or exc}") from None
    names = _names(path, codec)
    bounds = [start for start, _ in cuts[1:]] + [size]
    return [
        {"file": str(path), "start": start, "end": end, "line": line, "names": names}
        for (start, line), end in zip(cuts, bounds, strict=True)
    ]


def _even_step(size: int, step: int, workers: int) -> int:
    """The length of ranges at most ``step`` long that cut ``size`` bytes into a multiple
    of ``workers`` about equal parts."""
    parts = -(-size // step)
    parts = -(-parts // workers) * workers
    return -(-size // parts)


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
