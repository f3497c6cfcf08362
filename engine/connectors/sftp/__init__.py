"""SFTP connector pieces shared by the ``sftp`` source and sink.

``settings`` imports no client library (config validation reads it); ``client``, ``errors``
and ``stream`` import asyncssh and are loaded only when a component runs.
"""
