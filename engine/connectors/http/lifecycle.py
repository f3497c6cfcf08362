"""Open, close and probe for the components that talk through one :class:`HttpEndpoint`.

The endpoint (and with it httpx) is imported when a component is built to run, never by
config validation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.connectors.context import ConnectorContext
    from engine.connectors.http.client import HttpEndpoint
    from engine.connectors.http.options import HttpOptions

__all__ = ["EndpointLifecycle"]


class EndpointLifecycle:
    """Mixed in before ``Source``/``Sink``: the component's one connection is ``endpoint``."""

    endpoint: HttpEndpoint

    def attach_endpoint(
        self,
        options: HttpOptions,
        context: ConnectorContext,
        *,
        base_headers: Mapping[str, str] | None = None,
    ) -> None:
        from engine.connectors.http.client import HttpEndpoint

        self.endpoint = HttpEndpoint(options, context, base_headers=base_headers)

    async def open(self) -> None:
        await self.endpoint.open()

    async def close(self, *, success: bool = True) -> None:
        await self.endpoint.aclose()

    async def check(self) -> None:
        await self.endpoint.open()
        await self.endpoint.check()
