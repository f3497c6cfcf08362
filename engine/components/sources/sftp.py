"""``sftp`` source: remote files matching a glob, streamed through a codec, then kept/moved."""

from __future__ import annotations

import posixpath
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, ClassVar, Literal, Self

from pydantic import Field, model_validator

from engine.codecs import CodecSpec, codec_for_path
from engine.codecs.base import CodecConfig
from engine.components.base import ComponentContext, Source, SourceConfig
from engine.connectors.sftp.settings import SftpEndpoint
from engine.errors import PermanentError
from engine.records import Chunk

if TYPE_CHECKING:
    import asyncssh

    from engine.connectors.sftp.client import SftpSession
    from engine.registry import Registry

__all__ = ["SftpSource", "SftpSourceConfig"]


class SftpSourceConfig(SftpEndpoint, SourceConfig):
    """Reads files from an SFTP server: a path or glob, decoded by a codec, streamed."""

    type: Literal["sftp"] = "sftp"
    requires_extras: ClassVar[tuple[str, ...]] = ("sftp",)
    path: str = Field(
        description="Remote file or glob (`/outbox/*.edi`, `in/**/*.csv`); relative to the "
        "login folder.",
        examples=["/outbox/830_*.edi"],
    )
    codec: CodecSpec | None = Field(
        None, description="How to decode; default: guessed from the file extension."
    )
    after_read: Literal["keep", "move", "delete"] = Field(
        "keep",
        description="What happens to a file once the run succeeded and every record of it "
        "was delivered: `keep` it, `move` it to `move_to`, or `delete` it.",
    )
    move_to: str | None = Field(
        None, description='Remote folder for `after_read = "move"` (created if missing).'
    )
    allow_empty: bool = Field(False, description="A glob that matches nothing is not an error.")

    @model_validator(mode="after")
    def _move_needs_folder(self) -> Self:
        if (self.after_read == "move") != (self.move_to is not None):
            raise ValueError('set `move_to` exactly when after_read = "move"')
        return self

    def resource(self) -> str | None:
        return self.location(self.path)


class SftpSource(Source[SftpSourceConfig]):
    _session: SftpSession | None = None
    _sftp: asyncssh.SFTPClient | None = None

    def __init__(self, config: SftpSourceConfig, context: ComponentContext) -> None:
        super().__init__(config, context)
        #: remote path -> chunks yielded but not yet acknowledged
        self._pending: dict[str, int] = {}
        #: files read to their end, in order
        self._finished: list[str] = []

    async def open(self) -> None:
        from engine.connectors.sftp.client import SftpSession

        self._session = SftpSession()
        self._sftp = await self._session.open(
            self.config, self.context.resolve, timeout=self.context.timeout
        )

    async def check(self) -> None:
        await self.open()
        await self.close()

    async def files(self) -> list[str]:
        import asyncssh

        from engine.connectors.sftp.errors import map_ssh_error

        assert self._sftp is not None, "open() first"
        pattern = self.config.path
        try:
            if any(ch in pattern for ch in "*?["):
                names = await self._sftp.glob(pattern)
                found = [str(n) for n in names if await self._sftp.isfile(n)]
            else:
                found = [pattern] if await self._sftp.isfile(pattern) else []
        except asyncssh.SFTPNoSuchFile:
            found = []  # asyncssh's glob reports "no matches" this way
        except Exception as exc:
            raise map_ssh_error(exc, action=f"sftp list {pattern}") from None
        return sorted(found)

    def codec_for(self, path: str) -> CodecConfig:
        codec = self.config.codec or codec_for_path(path)
        if codec is None:
            raise PermanentError(f"cannot tell the codec of {path} from its extension; set `codec`")
        return codec

    async def read(self) -> AsyncIterator[Chunk]:
        import asyncssh

        from engine.connectors.sftp.errors import map_ssh_error
        from engine.connectors.sftp.stream import decode_remote

        files = await self.context.call(self.files)
        if not files and not self.config.allow_empty:
            raise PermanentError(f"no remote file matches {self.config.path!r}")
        assert self._sftp is not None
        size = self.config.batch.size
        for path in files:
            codec = self.codec_for(path)
            source = f"{self.config.endpoint()}{'' if path.startswith('/') else '/'}{path}"
            self._pending[path] = 0
            try:
                remote = await self._sftp.open(path, "rb")
            except Exception as exc:
                raise map_ssh_error(exc, action=f"sftp open {path}") from None
            try:
                async for chunk in decode_remote(remote, codec, source=source, batch_size=size):
                    self._pending[path] += 1
                    yield Chunk(chunk.records, chunk.rejected, token=path)
            except (asyncssh.Error, OSError) as exc:
                raise map_ssh_error(exc, action=f"sftp read {path}") from None
            finally:
                await remote.close()
            self._finished.append(path)

    async def ack(self, token: object) -> None:
        if isinstance(token, str) and token in self._pending:
            self._pending[token] -= 1

    def delivered(self) -> list[str]:
        """Files read to the end whose every chunk was delivered downstream."""
        return [p for p in self._finished if self._pending.get(p) == 0]

    async def partitions(self, workers: int) -> None:
        """One partition; never with ``after_read``: files would move before the run's end."""
        if self.config.after_read != "keep":
            raise PermanentError(
                f"sftp source {self.context.component_id} moves or deletes what it read "
                f"(after_read = {self.config.after_read!r}): run it with --workers 1"
            )

    async def commit(self) -> None:
        if self.context.dry_run or self.config.after_read == "keep":
            return
        from engine.connectors.sftp.client import replace
        from engine.connectors.sftp.errors import map_ssh_error

        assert self._sftp is not None
        sftp = self._sftp
        if self.config.after_read == "move":
            assert self.config.move_to is not None
            try:
                await sftp.makedirs(self.config.move_to, exist_ok=True)
            except Exception as exc:
                raise map_ssh_error(exc, action=f"sftp mkdir {self.config.move_to}") from None
        for path in self.delivered():
            try:
                if self.config.after_read == "delete":
                    await sftp.remove(path)
                    self.context.emit("sftp_file_deleted", path=path)
                else:
                    assert self.config.move_to is not None
                    target = posixpath.join(self.config.move_to, posixpath.basename(path))
                    await replace(sftp, path, target)
                    self.context.emit("sftp_file_moved", path=path, to=target)
            except Exception as exc:
                raise map_ssh_error(exc, action=f"sftp {self.config.after_read} {path}") from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        self._sftp = None


def register(registry: Registry) -> None:
    registry.register(SftpSourceConfig, SftpSource)
