"""``file`` source: one path or a glob, decoded by a codec, streamed in batches."""

from __future__ import annotations

import glob
import mmap
import os
import re
from collections.abc import AsyncIterator
from itertools import islice
from pathlib import Path
from stat import S_ISREG
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import anyio
from pydantic import Field

from engine.codecs import CodecSpec, codec_for_path
from engine.codecs.base import DecodeAt
from engine.components.base import Source, SourceConfig
from engine.errors import PermanentError
from engine.records import Chunk

if TYPE_CHECKING:
    from engine.codecs.base import CodecConfig
    from engine.registry import Registry

__all__ = ["FileSource", "FileSourceConfig"]


class FileSourceConfig(SourceConfig):
    """Reads local files: one path or a glob, relative to the pipeline file."""

    type: Literal["file"] = "file"
    path: str = Field(description="A file or a glob (`data/*.csv`, `in/**/*.jsonl`).")
    codec: CodecSpec | None = Field(
        None, description="How to decode; default: guessed from the file extension."
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

    def files(self) -> list[Path]:
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
                stream = path.open("rb")
                if offset:
                    stream.seek(offset)
            except OSError as exc:
                raise PermanentError(f"cannot open {path}: {exc.strerror or exc}") from None
            digester = self.context.digester
            hashed = digester.reader(stream, offset) if digester is not None else None
            readable: BinaryIO = hashed if hashed is not None else stream
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
