"""The composition root: one process serving one or several services on one port.

Start and stop follow the flow of events, so that nothing is published to a bus nobody reads:

* start: every relay is held until every service has started (and so subscribed its
  consumers), then released;
* stop: the server stops taking calls; the relays stop publishing and, on the in-process bus,
  wait up to `bus_drain_seconds` for the consumers to acknowledge what they published; only
  then do the consumers and background jobs stop. Outbox rows not acknowledged by then stay
  in the table and are published again on the next start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from backcrm.common.v1 import common_pb2

from libs.auth import TokenRegistry, mint_token
from libs.client import Client
from libs.config import Settings
from libs.outbox import OutboxRelay
from libs.rpc.server import Server
from libs.rpc.service import RpcService
from libs.runtime import Resources

__all__ = ["IMPLEMENTED", "Suite"]

log = logging.getLogger(__name__)
IMPLEMENTED = ("profile", "segmentation")


class App(Protocol):
    rpc: RpcService
    relay: OutboxRelay

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Suite:
    settings: Settings
    names: Sequence[str]
    tokens: TokenRegistry | None = None
    resources: Resources | None = None
    server: Server | None = None
    apps: list[App] = field(default_factory=list)
    port: int = 0
    _client: Client | None = None
    _service_token: str = ""

    def _internal_client(self) -> Client:
        """How services here call each other (identity lookups): the profile address with the
        service token; this process's own port when profile is served here."""
        if self._client is None:
            address = self.settings.profile_address or f"127.0.0.1:{self.port}"
            self._client = Client(address, self._service_token, deadline=5.0)
        return self._client

    async def start(self, address: str) -> int:
        from services.profile.app import ProfileApp
        from services.segmentation.app import SegmentationApp
        from services.segmentation.resolver import profile_resolver

        settings = self.settings
        tokens = self.tokens or TokenRegistry.from_sources(
            settings.auth_tokens, settings.auth_tokens_file
        )
        self._service_token = settings.service_token or mint_token()
        if not settings.service_token:
            # Known only to this process: the services it hosts call each other with it.
            tokens.add("segmentation", self._service_token, ["profile:read"])
        self.resources = resources = Resources.open(settings)
        if "profile" in self.names:
            self.apps.append(ProfileApp.build(resources))
        if "segmentation" in self.names:

            async def resolve(ref: common_pb2.CustomerRef, field_name: str) -> str:
                return await profile_resolver(self._internal_client())(ref, field_name)

            self.apps.append(SegmentationApp.build(resources, resolve))
        self.server = Server(
            [app.rpc for app in self.apps],
            settings,
            readiness=[resources.storage_ready],
            tokens=tokens,
        )
        self.port = await self.server.start(address)
        for app in self.apps:
            app.relay.hold()
        for app in self.apps:
            await app.start()
        for app in self.apps:
            app.relay.release()
        await self.server.wait_serving()
        return self.port

    async def stop(self, grace: float | None = None) -> None:
        if self.server is not None:
            await self.server.stop(grace)
        # Producers first, while every consumer still runs to take what they published.
        drain = self.settings.bus_drain_seconds
        await asyncio.gather(*(app.relay.stop(drain_seconds=drain) for app in self.apps))
        for app in reversed(self.apps):
            await app.stop()
        self.apps.clear()
        if self._client is not None:
            await self._client.close()
            self._client = None
        if self.resources is not None:
            await self.resources.close()

    def app(self, kind: type[Any]) -> Any:
        return next(a for a in self.apps if isinstance(a, kind))
