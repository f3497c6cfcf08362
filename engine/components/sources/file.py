"""``file`` source: one path or a glob, decoded by a codec, streamed in batches."""

from __future__ import annotations

import glob
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Literal

import anyio
from pydantic import Field

from engine.codecs import CodecSpec, codec_for_path
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
        for path in files:
            codec = self.codec_for(path)
            try:
                stream = path.open("rb")
            except OSError as exc:
                raise PermanentError(f"cannot open {path}: {exc.strerror or exc}") from None
            digester = self.context.digester
            hashed = digester.reader(stream) if digester is not None else None
            readable: BinaryIO = hashed if hashed is not None else stream
            with readable:
                for chunk in codec.decode(readable, source=str(path), batch_size=size):
                    if hashed is not None:
                        chunk.content = hashed.take()
                    yield chunk
                    await anyio.lowlevel.checkpoint()


def register(registry: Registry) -> None:
    registry.register(
        FileSourceConfig, FileSource, type="file", summary=FileSourceConfig.__doc__ or ""
    )
