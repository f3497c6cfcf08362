"""SFTP connector pieces shared by the ``sftp`` source and sink.

``settings`` imports no client library (config validation reads it); ``client``, ``errors``
and ``stream`` import asyncssh and are loaded only when a component runs.
"""

import warnings

# asyncssh imports cryptography's DSA classes, which cryptography 47+ flags as deprecated on
# every import; the engine never offers DSA, so the warning says nothing to its users.
warnings.filterwarnings("ignore", message="DSA is deprecated", module="asyncssh")
