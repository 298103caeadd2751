"""What one process gives the services it serves, and what each service gives back.

`Resources` (database, cache, bus) and `Peers` (a client to the other services) go in; an
`App` (its gRPC service, its outbox relay, start and stop) comes out of every service's
factory, `build(resources, peers)`, which `services/registry.py` lists by name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from libs.bus import make_bus
from libs.bus.port import EventBus
from libs.cache import make_cache
from libs.cache.port import Cache
from libs.client import Client
from libs.config import Settings
from libs.db import make_engine, make_sessionmaker, ping
from libs.outbox import BeforePublish, OutboxRelay
from libs.rpc.service import RpcService

__all__ = ["App", "AppFactory", "Peers", "Resources", "every"]

log = logging.getLogger(__name__)


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: Cache
    bus: EventBus

    @classmethod
    def open(cls, settings: Settings) -> Resources:
        engine = make_engine(settings.database_url)
        return cls(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            cache=make_cache(settings),
            bus=make_bus(settings),
        )

    def outbox_relay(self, table: Any, before_publish: BeforePublish | None = None) -> OutboxRelay:
        """The relay of a service's outbox table (an `OutboxColumns` class) to this bus."""
        return OutboxRelay(
            self.sessions,
            self.bus,
            table,
            before_publish=before_publish,
            idle_seconds=self.settings.outbox_poll_seconds,
        )

    async def storage_ready(self) -> bool:
        return await ping(self.engine)

    async def close(self) -> None:
        await self.bus.close()
        await self.cache.close()
        await self.engine.dispose()

    @staticmethod
    def clock() -> float:
        return time.time()

    def describe(self) -> dict[str, Any]:
        return {
            "database": self.engine.url.render_as_string(hide_password=True),
            "cache_and_bus": "redis" if self.settings.redis_url else "in-process",
        }


class Peers:
    """How a service calls the other services of the suite (segmentation asks profile to
    resolve identities), with the process's service token.

    The client is made on first use: a service hosted in this process is reached on this
    process's own port, known only once the server listens.

    A service that writes under its own name (bonus writes its traits, which profile lets
    only a caller named like the namespace do) has a token of its own in `service_tokens`
    and asks for `client(<its name>)`; the others share the process's token.
    """

    def __init__(
        self,
        settings: Settings,
        token: str,
        own_address: Callable[[], str],
        service_tokens: Mapping[str, str] | None = None,
    ) -> None:
        self._settings = settings
        self._tokens = {"": token, **(service_tokens or {})}
        self._own_address = own_address
        self._clients: dict[str, Client] = {}

    def client(self, service: str = "") -> Client:
        """A client with `service`'s own token when it has one, else the shared token."""
        key = service if service in self._tokens else ""
        if key not in self._clients:
            # A service hosted elsewhere (its own processes, its own Kubernetes Service) is
            # named by BACKCRM_<SERVICE>_ADDRESS; the others are on this process's own port.
            s = self._settings
            addresses = {
                "profile": s.profile_address,
                "segmentation": s.segmentation_address,
                "bonus": s.bonus_address,
                "ads": s.ads_address,
                "recommend": s.recommend_address,
            }
            self._clients[key] = Client(
                self._own_address(),
                self._tokens[key],
                addresses={name: a for name, a in addresses.items() if a},
                deadline=5.0,
            )
        return self._clients[key]

    async def close(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.close()


class App(Protocol):
    """One service, built and wired: what the suite serves, starts and stops."""

    rpc: RpcService
    relay: OutboxRelay

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


AppFactory = Callable[[Resources, Peers], App]


async def every(seconds: float, job: Callable[[], Awaitable[Any]]) -> None:
    """A service's background job: `job()` every `seconds`, for the life of the task; a failed
    run is logged and the next one comes on schedule."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except Exception:
            log.exception("background job %s failed; retrying", job.__name__)
