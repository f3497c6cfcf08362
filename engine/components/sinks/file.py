"""``file`` sink: a path template, a codec, written to a temporary name and renamed on success."""

from __future__ import annotations

import os
import string
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO, Literal, cast

from pydantic import Field, field_validator

from engine.codecs import CodecSpec, codec_for_path
from engine.codecs.base import CodecConfig, Encoder
from engine.components.base import RUN_FIELDS, ComponentContext, Sink, SinkConfig
from engine.errors import PermanentError
from engine.records import Batch
from engine.runtime.digest import ContentDigest, HashingWriter

if TYPE_CHECKING:
    from engine.registry import Registry

__all__ = ["FileSink", "FileSinkConfig"]


class FileSinkConfig(SinkConfig):
    """Writes records to local files; a partial file never appears under the final name."""

    type: Literal["file"] = "file"
    path: str = Field(
        description="Path template relative to the pipeline file. `{pipeline}`, `{run_id}`, "
        "`{date}`, `{time}`, `{component}` are filled per run; any other `{field}` "
        "splits the output by that record field.",
        examples=["out/products.jsonl", "out/{warehouse}/{date}.csv"],
    )
    codec: CodecSpec | None = Field(
        None, description="How to encode; default: guessed from the file extension."
    )
    overwrite: bool = Field(True, description="Replace an existing file at the final path.")

    @field_validator("path")
    @classmethod
    def _plain_fields(cls, value: str) -> str:
        try:
            parsed = list(string.Formatter().parse(value))
        except ValueError as exc:
            raise ValueError(f"path template: {exc}") from None
        for _, name, spec, conversion in parsed:
            if name is None:
                continue
            if not name or not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(
                    f"path template field {{{name}}}: use a plain field name such as {{warehouse}}"
                )
            if spec or conversion:
                raise ValueError(f"path template field {{{name}}} takes no format or conversion")
        return value

    def resource(self) -> str | None:
        return self.path


class _Open:
    __slots__ = ("encoder", "final", "jsonl", "stream", "tmp")

    def __init__(self, final: Path, tmp: Path, stream: IO[bytes], encoder: Encoder) -> None:
        self.final = final
        self.tmp = tmp
        self.stream = stream
        self.encoder = encoder
        self.jsonl = False


class FileSink(Sink[FileSinkConfig]):
    def __init__(self, config: FileSinkConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        self._run_values = context.run_fields()
        fields = [f for _, f, _, _ in string.Formatter().parse(config.path) if f]
        self._record_fields = [f for f in fields if f not in RUN_FIELDS]
        self._open: dict[str, _Open] = {}

    def _path_for(self, record: dict[str, object] | None) -> str:
        values: dict[str, object] = dict(self._run_values)
        if record is not None:
            for name in self._record_fields:
                value = record.get(name)
                text = "_" if value is None or value == "" else str(value)
                values[name] = text.replace("/", "_").replace("\\", "_").replace("..", "_")
        return self.config.path.format_map(values)

    def _codec(self, path: Path) -> CodecConfig:
        codec = self.config.codec or codec_for_path(path)
        if codec is None:
            raise PermanentError(f"cannot tell the codec of {path} from its extension; set `codec`")
        return codec

    def _target(self, rel: str) -> _Open:
        final = Path(os.path.normpath(self.context.resolve(rel)))
        target = self._open.get(str(final))
        if target is None:
            if final.exists() and not self.config.overwrite:
                raise PermanentError(f"{final} exists and overwrite is false")
            codec = self._codec(final)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{final.name}.{self.context.run_id or os.getpid()}.tmp")
            stream = cast(BinaryIO, tmp.open("wb"))
            if self.context.digester is not None:
                stream = cast(BinaryIO, self.context.digester.writer(stream))
            target = _Open(final, tmp, stream, codec.encoder(stream))
            target.jsonl = codec.type == "jsonl"
            self._open[str(final)] = target
        return target

    async def open(self) -> None:
        if not self._record_fields:
            self._target(self._path_for(None))

    async def write(self, batch: Batch) -> None:
        try:
            if not self._record_fields:
                self._target(self._path_for(None)).encoder.write(batch)
                return
            groups: dict[str, Batch] = {}
            for record in batch:
                groups.setdefault(self._path_for(record), []).append(record)
            for rel, records in groups.items():
                self._target(rel).encoder.write(records)
        except OSError as exc:
            raise PermanentError(
                f"cannot write {self.config.path}: {exc.strerror or exc}"
            ) from None

    def take_content(self) -> ContentDigest | None:
        """The digest of the bytes the last batch added to the output file (one file only:
        a batch split over several files is digested as records)."""
        if self._record_fields or len(self._open) != 1:
            return None
        target = next(iter(self._open.values()))
        if not isinstance(target.stream, HashingWriter):
            return None
        return target.stream.take(records_jsonl=target.jsonl)

    async def close(self, *, success: bool) -> None:
        """All or nothing: every output is finished first, then all are renamed into place."""
        targets = list(self._open.values())
        self._open.clear()
        try:
            for target in targets:
                try:
                    if success:
                        target.encoder.finish()
                finally:
                    target.stream.close()
            if success:
                blocked = [t.final for t in targets if t.final.is_dir()]
                if blocked:
                    raise IsADirectoryError(0, "a folder stands at the final path", str(blocked[0]))
                for target in targets:
                    os.replace(target.tmp, target.final)
        except OSError as exc:
            raise PermanentError(
                f"cannot finish {self.config.path}: {exc.strerror or exc}"
            ) from None
        finally:
            for target in targets:
                target.tmp.unlink(missing_ok=True)


def register(registry: Registry) -> None:
    registry.register(FileSinkConfig, FileSink, type="file", summary=FileSinkConfig.__doc__ or "")
