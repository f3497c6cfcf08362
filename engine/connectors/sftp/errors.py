"""The one place where asyncssh exceptions become Transient or Permanent errors."""

from __future__ import annotations

import asyncssh

from engine.errors import EngineError, PermanentError, TransientError

__all__ = ["map_ssh_error"]

#: failures of the link or the server's momentary state: a new attempt may succeed
_TRANSIENT_DISCONNECT = (
    asyncssh.ConnectionLost,
    asyncssh.ProtocolError,
    asyncssh.MACError,
    asyncssh.CompressionError,
    asyncssh.ServiceNotAvailable,
    asyncssh.ProtocolNotSupported,
    asyncssh.KeyExchangeFailed,
)
#: SFTP status codes a retry can fix: the connection, not the request, failed
_TRANSIENT_SFTP = (asyncssh.SFTPConnectionLost, asyncssh.SFTPNoConnection)


def map_ssh_error(exc: BaseException, *, action: str = "sftp") -> EngineError:
    """Classify ``exc``; unknown exceptions are permanent (retrying hides bugs)."""
    if isinstance(exc, EngineError):
        return exc
    reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
    message = f"{action}: {type(exc).__name__}: {str(reason).splitlines()[0][:300]}"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable | asyncssh.PermissionDenied):
        return PermanentError(message)  # untrusted host key, bad credentials
    if isinstance(exc, asyncssh.IllegalUserName):
        return PermanentError(message)
    if isinstance(exc, _TRANSIENT_DISCONNECT + _TRANSIENT_SFTP):
        return TransientError(message)
    if isinstance(exc, asyncssh.DisconnectError):
        return TransientError(message)  # other disconnects (by application, host not allowed)
    if isinstance(exc, asyncssh.SFTPError):
        return PermanentError(message)  # no such file, permission denied, failure, ...
    if isinstance(exc, asyncssh.ChannelOpenError):
        return TransientError(message)
    if isinstance(exc, asyncssh.KeyImportError | asyncssh.KeyEncryptionError):
        return PermanentError(message)  # unreadable private key, wrong passphrase
    if isinstance(exc, TimeoutError | ConnectionError):
        return TransientError(message)
    if isinstance(exc, OSError):
        return TransientError(message)  # refused, unreachable, DNS hiccup
    return PermanentError(message)
