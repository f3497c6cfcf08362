"""``file`` sink: a path template, a codec, written to a temporary name and published by an
fsync and an atomic rename: once at the end of a run, or in rolling segments in runs that
acknowledge input as they go (queue and webhook sources)."""

from __future__ import annotations

import contextlib
import os
import re
import string
import time
from collections import Counter
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Literal, cast

import anyio
from pydantic import BaseModel, ConfigDict, Field, field_validator

from engine.codecs import CodecSpec, codec_for_path
from engine.codecs.base import CodecConfig, Encoder
from engine.columnar import ColumnBatch
from engine.components.base import (
    RUN_FIELDS,
    ComponentContext,
    Sink,
    SinkConfig,
    WrittenResource,
)
from engine.errors import PermanentError
from engine.records import Batch
from engine.records.digest import ContentDigest, HashingWriter

if TYPE_CHECKING:
    from engine.registry import Registry

__all__ = ["FileSink", "FileSinkConfig", "SegmentPolicy"]

#: the path field naming a segment: ``<run_id>-<sequence>``
SEGMENT_FIELD = "segment"
#: bytes an output grows by before the kernel is asked to start writing them to disk
WRITE_BACK_STEP = 8 << 20


class SegmentPolicy(BaseModel):
    """When a rolling segment is published: whichever limit is reached first."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_records: int = Field(100_000, ge=1, description="Records per segment.")
    max_bytes: int = Field(
        64 * 1024 * 1024, ge=1, description="Bytes per segment (checked after each batch)."
    )
    max_age: float = Field(
        1.0,
        gt=0,
        description="Seconds the first record of a segment waits before the segment is "
        "published (and its input acknowledged).",
    )


class FileSinkConfig(SinkConfig):
    """Writes records to local files; a partial file never appears under the final name."""

    type: Literal["file"] = "file"
    path: str = Field(
        description="Path template relative to the pipeline file. `{pipeline}`, `{run_id}`, "
        "`{date}`, `{time}`, `{component}` are filled per run, `{partition}` per partition "
        "of an `engine run --workers N` run (`0000` when not split), `{segment}` per rolling "
        "segment (`<run_id>-<sequence>`; inserted before the extension when absent in runs "
        "that roll segments); any other `{field}` splits the output by that record field.",
        examples=["out/products.jsonl", "out/{warehouse}/{date}.csv"],
    )
    codec: CodecSpec | None = Field(
        None, description="How to encode; default: guessed from the file extension."
    )
    overwrite: bool = Field(True, description="Replace an existing file at the final path.")
    segment: SegmentPolicy = Field(
        default_factory=SegmentPolicy,
        description="Rolling segments, used when the input is acknowledged as the run goes "
        "(queue and webhook sources): each segment is fsynced and renamed into place, and "
        "the input it holds is acknowledged only then.",
    )

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

    def written_resource(self, base: Path) -> WrittenResource | None:
        target = os.path.normpath(os.path.join(base, os.path.expanduser(self.path)))
        return WrittenResource(target, os.path.normpath(self.path), "path")


class _Open:
    __slots__ = ("encoder", "final", "jsonl", "raw", "records", "stream", "tmp", "written_back")

    def __init__(
        self, final: Path, tmp: Path, raw: IO[bytes], stream: IO[bytes], encoder: Encoder
    ) -> None:
        self.final = final
        self.tmp = tmp
        self.raw = raw
        self.stream = stream
        self.encoder = encoder
        self.jsonl = False
        self.records = 0
        self.written_back = raw.tell()  # where the kernel was last asked to write back to

    def write(self, records: Batch) -> None:
        self.encoder.write(records)
        self.records += len(records)
        self.write_back()

    def write_back(self) -> None:
        """Once the output has grown by :data:`WRITE_BACK_STEP`, have the kernel start
        writing the new bytes to disk (``POSIX_FADV_DONTNEED`` starts the write-back of
        dirty pages and waits for none), so that the fsync that publishes it has little
        left to wait for: 0.1 s less at the end of a 180 MB output. Only a hint: the fsync
        still makes the output durable."""
        end = self.raw.tell()
        if end - self.written_back < WRITE_BACK_STEP or not hasattr(os, "posix_fadvise"):
            return
        self.stream.flush()
        with contextlib.suppress(OSError):
            os.posix_fadvise(
                self.raw.fileno(),
                self.written_back,
                end - self.written_back,
                os.POSIX_FADV_DONTNEED,
            )
        self.written_back = end


class FileSink(Sink[FileSinkConfig]):
    durable_on_write = False
    #: its encoders write column batches (engine.columnar) as they are
    takes_columns = True

    def __init__(self, config: FileSinkConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        self._run_values = context.run_fields()
        fields = [f for _, f, _, _ in string.Formatter().parse(config.path) if f]
        self._record_fields = [f for f in fields if f not in RUN_FIELDS and f != SEGMENT_FIELD]
        self._template = config.path
        self._open: dict[str, _Open] = {}
        self._cleaned: set[Path] = set()  # folders already rid of orphaned temp files
        self._sequence = 1
        self._records = 0  # in the current segment
        self._since = 0.0  # monotonic time of the current segment's first write
        self._missing: Counter[str] = Counter()  # records without a value for a path field
        self._adopt: dict[str, object] | None = None  # a suspended output this run goes on
        self._handed: list[dict[str, Any]] = []  # finished outputs left for the run to publish

    @property
    def _rolling(self) -> bool:
        return self.context.acknowledged

    def _path_for(self, record: dict[str, object] | None) -> str:
        values: dict[str, object] = dict(self._run_values)
        run = self.context.run_id or "run"
        if self.context.partition is not None:
            run = f"{run}-{self.context.partition}"
        values[SEGMENT_FIELD] = f"{run}-{self._sequence:06d}"
        if record is not None:
            for name in self._record_fields:
                value = record.get(name)
                if value is None or value == "":
                    self._missing[name] += 1
                text = "_" if value is None or value == "" else str(value)
                values[name] = text.replace("/", "_").replace("\\", "_").replace("..", "_")
        return self._template.format_map(values)

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
            if final.parent not in self._cleaned:
                self._cleaned.add(final.parent)
                _remove_orphans(final.parent, _name_pattern(self._template))
            tmp = self._temp_name(final)
            length = 0
            adopt, self._adopt = self._adopt, None
            if adopt is not None:
                # a suspended output (under this run's temp name), cut to what was fsynced
                raw = cast(BinaryIO, tmp.open("r+b"))
                length = int(cast(int, adopt["length"]))
                raw.truncate(length)
                raw.seek(length)
            else:
                # readable too: what polars writes itself is read back to be hashed
                raw = cast(BinaryIO, tmp.open("w+b"))
            stream = raw
            if self.context.digester is not None:
                stream = cast(BinaryIO, self.context.digester.writer(raw, length))
            target = _Open(final, tmp, raw, stream, codec.encoder(stream))
            if adopt is not None:
                target.encoder.resume(cast("dict[str, object]", adopt["encoder"]))
            target.jsonl = codec.type == "jsonl"
            self._open[str(final)] = target
        return target

    def _temp_name(self, final: Path) -> Path:
        """Beside the final path, named by run, partition and the process that publishes
        it: another run's clean-up leaves it alone while that process lives."""
        run = self.context.run_id or "run"
        if self.context.partition is not None:
            run = f"{run}-{self.context.partition}"
        owner = self.context.hand_over or os.getpid()
        return final.with_name(f".{final.name}.{run}.{owner}.tmp")

    # -- resuming -------------------------------------------------------------------------
    def _final(self) -> Path:
        return Path(os.path.normpath(self.context.resolve(self._path_for(None))))

    def suspend(self) -> dict[str, object] | None:
        """Keep what an interrupted run staged for a later run to go on: the output is
        fsynced and kept under its temp name. None (and nothing kept) when this sink cannot
        go on: paths from record fields, rolling segments, an encoder with a trailer."""
        target = next(iter(self._open.values()), None)
        if self._record_fields or self._rolling or len(self._open) != 1 or target is None:
            return None
        state = target.encoder.state()
        if state is None:
            return None
        try:
            target.stream.flush()
            os.fsync(target.raw.fileno())
            length = target.raw.tell()
            target.stream.close()
            _fsync_folder(target.tmp.parent)
        except OSError:
            return None
        self._open.clear()
        return {
            "final": str(target.final),
            "tmp": str(target.tmp),
            "length": length,
            "encoder": state,
        }

    def resume_problem(self, saved: dict[str, object]) -> str | None:
        """Why this sink cannot go on with ``saved`` (its suspended output), or None."""
        if self._record_fields or self._rolling:
            return f"sink {self.context.component_id} writes paths from record fields"
        final = self._final()
        if str(final) != saved["final"]:
            return f"sink {self.context.component_id} now writes {final}, not {saved['final']}"
        try:
            size = Path(str(saved["tmp"])).stat().st_size
        except OSError:
            return f"the staged output {saved['tmp']} is gone"
        if size < int(cast(int, saved["length"])):
            return f"the staged output {saved['tmp']} is shorter than when it was kept"
        return None

    def resume_from(self, saved: dict[str, object]) -> None:
        """Go on with a suspended output: it takes this run's temp name at once, so that no
        clean-up of dead processes' temp files removes it."""
        tmp = self._temp_name(self._final())
        os.replace(str(saved["tmp"]), tmp)
        self._adopt = saved

    async def open(self) -> None:
        if self._rolling and SEGMENT_FIELD not in self._fields():
            stem, dot, ext = self._template.rpartition(".")
            if not dot or "/" in ext or "}" in ext:
                stem, ext = self._template, ""
            self._template = f"{stem}-{{{SEGMENT_FIELD}}}" + (f".{ext}" if ext else "")
        if not self._record_fields and not self._rolling:
            self._target(self._path_for(None))  # a run with no records still writes its file

    def _fields(self) -> list[str]:
        return [f for _, f, _, _ in string.Formatter().parse(self._template) if f]

    async def write(self, batch: Batch) -> None:
        if not self._open:
            self._since = time.monotonic()
        self._records += len(batch)
        try:
            if not self._record_fields:
                target = self._target(self._path_for(None))
                encoder = target.encoder
                if isinstance(batch, ColumnBatch) and not encoder.takes_columns:
                    batch = batch.records()
                if isinstance(batch, ColumnBatch):
                    # polars encodes in a worker thread: the stages before this one go on
                    await anyio.to_thread.run_sync(target.write, batch)
                else:
                    target.write(batch)
                return
            groups: dict[str, Batch] = {}
            for record in batch:
                groups.setdefault(self._path_for(record), []).append(record)
            for rel, records in groups.items():
                self._target(rel).write(records)
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

    def publish_due(self) -> float | None:
        if not self._rolling:
            return None  # one publish, at the end of the run
        if not self._open:
            return None
        limits = self.config.segment
        if self._records >= limits.max_records:
            return 0.0
        if any(t.raw.tell() >= limits.max_bytes for t in self._open.values()):
            return 0.0
        return limits.max_age - (time.monotonic() - self._since)

    async def publish(self) -> None:
        """Publish the current segment: every output finished and fsynced, then renamed."""
        if not self._open:
            return
        targets = list(self._open.values())
        self._open.clear()
        self._records = 0
        self._sequence += 1
        try:
            if self.context.hand_over and not self._rolling:  # segments publish as they go
                self._hand_over(targets)
            else:
                _publish(targets)
        except OSError as exc:
            raise PermanentError(
                f"cannot finish {self.config.path}: {exc.strerror or exc}"
            ) from None

    def _hand_over(self, targets: list[_Open]) -> None:
        """Finish each output under its temp name, for the run to publish: fsynced when it
        is an output of its own (``{partition}`` in the path); a piece of an output the
        run joins is fsynced by the run, once joined."""
        durable = "partition" in self._fields()
        try:
            _finish(targets, durable=durable)
        except BaseException:
            for target in targets:
                target.tmp.unlink(missing_ok=True)
            raise
        for target in targets:
            framing = target.encoder.framing()
            self._handed.append(
                {
                    "final": str(target.final),
                    "tmp": str(target.tmp),
                    "records": target.records,
                    "framing": None
                    if framing is None
                    else [framing[0], framing[1].hex(), framing[2]],
                    "durable": durable,
                }
            )

    def can_join(self) -> bool:
        if "partition" in self._fields():
            return True
        try:
            codec = self._codec(Path(self._template))
        except PermanentError:
            return False
        return codec.joinable

    def handed_over(self) -> list[dict[str, Any]]:
        return list(self._handed)

    async def close(self, *, success: bool) -> None:
        """All or nothing: every output is finished first, then all are renamed into place."""
        if success:
            await self.publish()
            self._report_missing()
            return
        targets = list(self._open.values())
        self._open.clear()
        for target in targets:
            with contextlib.suppress(OSError):
                target.stream.close()
            target.tmp.unlink(missing_ok=True)

    def _report_missing(self) -> None:
        """Say how many records had no value for a path field (a misspelt `{field}` sends
        every record to `_`), once per field at the end of the run."""
        for name, count in sorted(self._missing.items()):
            self.context.log.warning(
                "sink %s: %d record(s) had no value for path field {%s} and went to '_' in %s",
                self.context.component_id,
                count,
                name,
                self.config.path,
            )
            self.context.emit("path_field_missing", "WARNING", field=name, records=count)
        self._missing.clear()


def _finish(targets: list[_Open], *, durable: bool = True) -> None:
    """Write each output's trailer, fsync it (unless not ``durable``) and close it."""
    for target in targets:
        try:
            target.encoder.finish()
            target.stream.flush()
            if durable:
                os.fsync(target.raw.fileno())
        finally:
            target.stream.close()


def _publish(targets: list[_Open]) -> None:
    try:
        _finish(targets)
        blocked = [t.final for t in targets if t.final.is_dir()]
        if blocked:
            raise IsADirectoryError(0, "a folder stands at the final path", str(blocked[0]))
        folders: set[Path] = set()
        for target in targets:
            os.replace(target.tmp, target.final)
            folders.add(target.final.parent)
        for folder in folders:
            _fsync_folder(folder)  # the renames themselves survive a crash
    finally:
        for target in targets:
            target.tmp.unlink(missing_ok=True)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _name_pattern(template: str) -> re.Pattern[str]:
    """The file names a path template's last part can produce (fields match anything), with
    the segment suffix a rolling run inserts."""
    name = template.replace("\\", "/").rsplit("/", 1)[-1]
    suffix = ""
    if SEGMENT_FIELD not in name:
        stem, dot, ext = name.rpartition(".")
        if dot and "}" not in ext:
            name, suffix = stem, f".{ext}"
        return re.compile(f"{_fields_regex(name)}(?:-.*)?{_fields_regex(suffix)}")
    return re.compile(_fields_regex(name))


def _fields_regex(text: str) -> str:
    parts = []
    for literal, field, _, _ in string.Formatter().parse(text):
        parts.append(re.escape(literal))
        if field is not None:
            parts.append(".*")
    return "".join(parts)


_TEMP = re.compile(r"^\.(?P<name>.+)\.[^.]+\.(?P<pid>\d+)\.tmp$")


def _remove_orphans(folder: Path, names: re.Pattern[str]) -> None:
    """Delete temp files this sink's outputs left when their process died (kill -9, power)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        found = _TEMP.match(entry.name)
        if found is None or not names.fullmatch(found["name"]):
            continue
        pid = int(found["pid"])
        if pid == os.getpid() or _alive(pid):
            continue
        with contextlib.suppress(OSError):
            os.unlink(entry.path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def register(registry: Registry) -> None:
    registry.register(FileSinkConfig, FileSink)
