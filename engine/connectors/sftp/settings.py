"""SFTP connection settings shared by the ``sftp`` source and sink; no asyncssh needed."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from engine.redact import KEY_MATERIAL

__all__ = ["SftpEndpoint"]


class SftpEndpoint(BaseModel):
    """Where the SFTP server is, who logs in, and how its host key is trusted."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field(description="Server host name or address.")
    port: int = Field(22, ge=1, le=65535, description="Server port.")
    user: str = Field(description="Login user.")
    password: SecretStr | None = Field(
        None, description="Password; use `${env:NAME}`, never a literal."
    )
    private_key: Annotated[SecretStr | None, KEY_MATERIAL] = Field(
        None,
        description="Private key: the path of a key file (relative to the pipeline file), or "
        "the key itself (`${file:keys/id_ed25519}`, `${secret:sftp:key}`; several lines allowed).",
    )
    private_key_passphrase: SecretStr | None = Field(
        None, description="Passphrase of an encrypted `private_key`."
    )
    known_hosts: Annotated[str | None, KEY_MATERIAL] = Field(
        None,
        description="known_hosts file the server's host key must be listed in, or its lines "
        "themselves (`${file:...}`, several lines allowed); default: ~/.ssh/known_hosts.",
    )
    host_key_fingerprint: str | None = Field(
        None,
        description="Trust exactly this host key instead (`SHA256:...`, as `ssh-keygen -l` "
        "prints it).",
        examples=["SHA256:Jx3lNkqqqq8x0t6m0ZJ+Fz1mBQ6i0b5K4C9yRpx2xyz"],
    )
    accept_unknown_host_key: bool = Field(
        False,
        description="Skip the host key check (a warning is logged). Only for throwaway test "
        "servers: it allows a man in the middle.",
    )

    def endpoint(self) -> str:
        return f"sftp://{self.user}@{self.host}:{self.port}"

    def location(self, path: str) -> str:
        """``path`` on this server, for logs and the audit trail."""
        return f"{self.endpoint()}/{path.lstrip('/')}"
