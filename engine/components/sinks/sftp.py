"""``sftp`` sink: records encoded to a remote temporary file, renamed to its name on success."""

from __future__ import annotations

import io
import posixpath
import string
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field, field_validator

from engine.codecs import CodecSpec, codec_for_path
from engine.codecs.base import Encoder
from engine.components.base import (
    RUN_FIELDS,
    ComponentContext,
    Sink,
    SinkConfig,
    WrittenResource,
)
from engine.connectors.sftp.settings import SftpEndpoint
from engine.errors import PermanentError
from engine.records import Batch

if TYPE_CHECKING:
    import asyncssh

    from engine.connectors.sftp.client import SftpSession
    from engine.registry import Registry

__all__ = ["SftpSink", "SftpSinkConfig"]


class SftpSinkConfig(SftpEndpoint, SinkConfig):
    """Writes records to one remote file; a partial file never appears under the final name."""

    type: Literal["sftp"] = "sftp"
    requires_extras: ClassVar[tuple[str, ...]] = ("sftp",)
    path: str = Field(
        description="Remote path template; `{pipeline}`, `{run_id}`, `{date}`, `{time}`, "
        "`{component}` are filled per run. Missing folders are created.",
        examples=["/inbox/{pipeline}/{date}-{run_id}.jsonl"],
    )
    codec: CodecSpec | None = Field(
        None, description="How to encode; default: guessed from the file extension."
    )
    overwrite: bool = Field(True, description="Replace an existing file at the final path.")

    @field_validator("path")
    @classmethod
    def _known_fields(cls, value: str) -> str:
        try:
            names = [f for _, f, _, _ in string.Formatter().parse(value) if f is not None]
        except ValueError as exc:
            raise ValueError(f"bad path template: {exc}") from None
        unknown = [n for n in names if n not in RUN_FIELDS]
        if unknown:
            raise ValueError(
                f"unknown template field(s) {', '.join(unknown)}; valid: " + ", ".join(RUN_FIELDS)
            )
        return value

    def resource(self) -> str | None:
        return self.location(self.path)

    def written_resource(self, base: Path) -> WrittenResource | None:
        path = posixpath.normpath(self.path)
        return WrittenResource(f"sftp://{self.host}:{self.port}{path}", self.location(path), "path")


class SftpSink(Sink[SftpSinkConfig]):
    durable_on_write = False  # staged in a remote temp file, renamed into place by close

    def publish_due(self) -> float | None:
        return None  # one rename, at the end of the run: its input is released only then

    _session: SftpSession | None = None
    _sftp: asyncssh.SFTPClient | None = None
    _file: asyncssh.SFTPClientFile | None = None

    def __init__(self, config: SftpSinkConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        self.final = config.path.format_map(context.run_fields())
        folder, name = posixpath.split(self.final)
        self.temporary = posixpath.join(folder, f".{name}.{context.run_id or 'run'}.tmp")
        codec = config.codec or codec_for_path(self.final)
        if codec is None:
            raise PermanentError(
                f"cannot tell the codec of {self.final} from its extension; set `codec`"
            )
        self._buffer = io.BytesIO()
        self._encoder: Encoder = codec.encoder(self._buffer)
        #: a write failed half-way: the remote file is incomplete and must not be published
        self._broken = False

    async def open(self) -> None:
        from engine.connectors.sftp.client import SftpSession
        from engine.connectors.sftp.errors import map_ssh_error

        self._session = SftpSession()
        self._sftp = await self._session.open(
            self.config, self.context.resolve, timeout=self.context.timeout
        )
        folder = posixpath.dirname(self.final)
        try:
            if not self.config.overwrite and await self._sftp.exists(self.final):
                raise PermanentError(f"{self.final} exists and overwrite is false")
            if folder:
                await self._sftp.makedirs(folder, exist_ok=True)
            self._file = await self._sftp.open(self.temporary, "wb")
        except Exception as exc:
            await self._disconnect()
            raise map_ssh_error(exc, action=f"sftp create {self.temporary}") from None

    async def check(self) -> None:
        from engine.connectors.sftp.client import SftpSession

        session = SftpSession()
        await session.open(self.config, self.context.resolve)
        await session.close()

    async def _flush(self) -> None:
        from engine.connectors.sftp.errors import map_ssh_error

        data = self._buffer.getvalue()
        if not data:
            return
        self._buffer.seek(0)
        self._buffer.truncate()
        assert self._file is not None, "open() first"
        try:
            await self._file.write(data)
        except Exception as exc:
            self._broken = True
            # the bytes are gone from the buffer: a retry would leave a hole in the file
            mapped = map_ssh_error(exc, action=f"sftp write {self.temporary}")
            raise PermanentError(str(mapped)) from None

    async def write(self, batch: Batch) -> None:
        if self._broken:
            raise PermanentError(f"{self.temporary} is incomplete after a failed write")
        self._encoder.write(batch)
        await self._flush()

    async def close(self, *, success: bool) -> None:
        from engine.connectors.sftp.client import replace
        from engine.connectors.sftp.errors import map_ssh_error

        sftp = self._sftp
        try:
            if sftp is None or self._file is None:
                return
            publish = success and not self._broken
            try:
                if publish:
                    self._encoder.finish()
                    await self._flush()
                await self._file.close()
                self._file = None
                if publish:
                    await replace(sftp, self.temporary, self.final)
                    self.context.emit("sftp_file_written", path=self.final)
                else:
                    await sftp.remove(self.temporary)
            except Exception as exc:
                raise map_ssh_error(exc, action=f"sftp publish {self.final}") from None
            if success and self._broken:
                raise PermanentError(f"{self.final} was not written: a write failed half-way")
        finally:
            await self._disconnect()

    async def _disconnect(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._sftp = None


def register(registry: Registry) -> None:
    registry.register(SftpSinkConfig, SftpSink)
