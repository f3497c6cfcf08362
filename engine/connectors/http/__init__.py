"""HTTP plumbing for the http, graphql and webhook connectors.

Settings (``options``, ``auth``, ``pagination``, ``incremental``; URLs are redacted by
:func:`engine.redact.redact_url`) import no
client library, so config validation stays light; ``client``, ``auth_flows`` and ``errors``
import httpx and are loaded only when a component runs.
"""
