"""The composition root: one process serving one or several registered services on one port.

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from libs.auth import TokenRegistry, mint_token
from libs.config import Settings
from libs.rpc.server import Server
from libs.runtime import App, Peers, Resources
from services.registry import SERVICES

__all__ = ["Suite"]


@dataclass
class Suite:
    settings: Settings
    names: Sequence[str] = tuple(SERVICES)
    tokens: TokenRegistry | None = None
    resources: Resources | None = None
    server: Server | None = None
    apps: list[App] = field(default_factory=list)
    port: int = 0
    peers: Peers | None = None

    async def start(self, address: str) -> int:
        unknown = set(self.names) - SERVICES.keys()
        if unknown:
            raise ValueError(f"not registered services: {sorted(unknown)}")
        settings = self.settings
        tokens = self.tokens or TokenRegistry.from_sources(
            settings.auth_tokens, settings.auth_tokens_file
        )
        service_token = settings.service_token or mint_token()
        if not settings.service_token:
            # Known only to this process: the services it hosts call each other with it.
            # profile:read to resolve identities (and for ads, interests); segments:read for
            # bonus and ads asking segmentation about a customer.
            tokens.add("segmentation", service_token, ["profile:read", "segments:read"])
        # Bonus writes traits in its own namespace, which needs a token named "bonus".
        bonus_token = settings.bonus_service_token or mint_token()
        if not settings.bonus_service_token:
            tokens.add("bonus", bonus_token, ["profile:read", "profile:write"])
        # Ads records ad events on profiles (TrackEvents) and credits ad rewards
        # (bonus RewardPoints: positive credits only) with a token of its own.
        ads_token = settings.ads_service_token or mint_token()
        if not settings.ads_service_token:
            tokens.add("ads", ads_token, ["profile:write", "bonus:reward"])
        self.resources = resources = Resources.open(settings)
        self.peers = peers = Peers(
            settings,
            service_token,
            lambda: f"127.0.0.1:{self.port}",
            service_tokens={"bonus": bonus_token, "ads": ads_token},
        )
        self.apps = [
            entry.build(resources, peers) for name, entry in SERVICES.items() if name in self.names
        ]
        # What this process serves, bonus and ads ask in process (libs/signals.py).
        peers.host([app.rpc for app in self.apps], tokens if settings.auth_enabled else None)
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
        if self.peers is not None:
            await self.peers.close()
        if self.resources is not None:
            await self.resources.close()

    def app(self, kind: type[Any]) -> Any:
        return next(a for a in self.apps if isinstance(a, kind))
