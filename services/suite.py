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
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from libs.auth import TokenRegistry, hash_token, mint_token
from libs.config import Settings
from libs.rpc.server import Server
from libs.runtime import App, Peers, Resources
from services.registry import SERVICES

__all__ = ["SERVICE_TOKENS", "Suite", "worker_environment"]

# setting -> (token name, scopes): the tokens the hosted services call each other with.
# "segmentation" is the shared one: profile:read to resolve identities (and for ads,
# interests); segments:read for bonus and ads asking segmentation about a customer. Bonus
# writes traits in its own namespace, which needs a token named "bonus". Ads records ad events
# on profiles (TrackEvents) and credits ad rewards (bonus RewardPoints: positive credits only)
# with a token of its own. A setting left empty is minted per process.
SERVICE_TOKENS: dict[str, tuple[str, list[str]]] = {
    "service_token": ("segmentation", ["profile:read", "segments:read"]),
    "bonus_service_token": ("bonus", ["profile:read", "profile:write"]),
    "ads_service_token": ("ads", ["profile:write", "bonus:reward"]),
}


def worker_environment(settings: Settings) -> dict[str, str]:
    """What worker processes serving one address share beyond `settings`: every service token
    left empty is minted once, here, and registered by its hash in `BACKCRM_AUTH_TOKENS`, so a
    call one worker makes to its own address is understood by whichever worker takes it."""
    entries = json.loads(settings.auth_tokens) if settings.auth_tokens.strip() else []
    env: dict[str, str] = {}
    for setting, (name, scopes) in SERVICE_TOKENS.items():
        if getattr(settings, setting):
            continue
        token = mint_token()
        env[f"BACKCRM_{setting.upper()}"] = token
        entries.append({"name": name, "sha256": hash_token(token), "scopes": scopes})
    if env:
        env["BACKCRM_AUTH_TOKENS"] = json.dumps(entries)
    return env


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
    # one of several worker processes sharing the address on purpose (SO_REUSEPORT)
    reuse_port: bool = False

    async def start(self, address: str) -> int:
        unknown = set(self.names) - SERVICES.keys()
        if unknown:
            raise ValueError(f"not registered services: {sorted(unknown)}")
        settings = self.settings
        tokens = self.tokens or TokenRegistry.from_sources(
            settings.auth_tokens, settings.auth_tokens_file
        )
        minted: dict[str, str] = {}
        for setting, (name, scopes) in SERVICE_TOKENS.items():
            configured = getattr(settings, setting)
            minted[name] = configured or mint_token()
            if not configured:
                # Known only to this process: the services it hosts call each other with it.
                tokens.add(name, minted[name], scopes)
        self.resources = resources = Resources.open(settings)
        self.peers = peers = Peers(
            settings,
            minted["segmentation"],
            lambda: f"127.0.0.1:{self.port}",
            service_tokens={"bonus": minted["bonus"], "ads": minted["ads"]},
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
            reuse_port=self.reuse_port,
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
