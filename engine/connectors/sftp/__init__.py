"""SFTP connector pieces shared by the ``sftp`` source and sink: settings, client, errors."""

from engine.connectors.sftp.client import SftpEndpoint, connect
from engine.connectors.sftp.errors import map_ssh_error

__all__ = ["SftpEndpoint", "connect", "map_ssh_error"]
