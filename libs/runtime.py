"""What one process gives the services it serves, and what each service gives back.

`Resources` (database, cache, bus) and `Peers` (a client to the other services) go in; an
`App` (its gRPC service, its outbox relay, start and stop) comes out of every service's
factory, `build(resources, peers)`, which `services/registry.py` lists by name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from google.protobuf import message_factory
from google.protobuf.message import Message
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from libs.auth import Principal, TokenRegistry, authorize, current_principal
from libs.bus import make_bus
from libs.bus.port import EventBus
from libs.cache import make_cache
from libs.cache.port import Cache
from libs.client import Client
from libs.config import Settings
from libs.db import make_engine, make_sessionmaker, ping
from libs.outbox import BeforePublish, OutboxRelay
from libs.rpc.service import RpcService

__all__ = ["App", "AppFactory", "LocalCall", "Peers", "Resources", "every"]

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


# (request, timeout seconds) -> response: one RPC of a service this process hosts.
LocalCall = Callable[[Message, float], Awaitable[Message]]


class Peers:
    """How a service calls the other services of the suite (segmentation asks profile to
    resolve identities), with the process's service token.

    The client is made on first use: a service hosted in this process is reached on this
    process's own port, known only once the server listens.

    `local(method)` is the same RPC of a service hosted in this process without the network:
    the servicer's method called directly, as the principal of the process's service token
    (checked against the method's scope by the same `authorize` as a gRPC call), within the
    caller's deadline. No serialisation, no second pass through the call guard, no
    round trip through this process's own port; the handler, and so the answer, is the one the
    gRPC call runs.

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
        self._registry: TokenRegistry | None = None
        self._hosted: dict[str, RpcService] = {}
        self._local: dict[str, LocalCall | None] = {}

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

    def host(self, services: Sequence[RpcService], tokens: TokenRegistry | None) -> None:
        """The services this process serves (all of them, replacing what was said before):
        their RPCs can then be called with `local`, authenticated with `tokens`, what the
        server's call guard uses (None only when auth is disabled: every caller is then
        an anonymous admin, as there)."""
        self._hosted = {s.full_name: s for s in services}
        self._registry = tokens
        self._local.clear()

    def local(self, method: str) -> LocalCall | None:
        """`method` ("/pkg.Service/Method", unary) called in process when this process hosts
        its service, else None (call it over the client)."""
        if method not in self._local:
            self._local[method] = self._make_local(method)
        return self._local[method]

    def _make_local(self, method: str) -> LocalCall | None:
        service_name, _, name = method.lstrip("/").partition("/")
        service = self._hosted.get(service_name)
        if service is None:
            return None
        impl = getattr(service.servicer, name)
        scope = service.scopes[name]
        # A servicer may answer with ready-made bytes (profile's cached rendering).
        reply_class = message_factory.GetMessageClass(
            service.descriptor.methods_by_name[name].output_type
        )
        registry, token = self._registry, self._tokens[""]

        def principal() -> Principal:
            # Per call, as over gRPC: a token registry may change (tokens file).
            return authorize(registry, f"Bearer {token}", scope, method)

        async def run(request: Message) -> Message:
            # wait_for runs this in a task of its own, so the principal set here is the
            # callee's and never leaks into the caller's context.
            current_principal.set(principal())
            reply = await impl(request, None)
            if isinstance(reply, bytes):
                return reply_class.FromString(reply)
            return reply  # type: ignore[no-any-return]

        async def call(request: Message, timeout: float) -> Message:
            return await asyncio.wait_for(run(request), timeout)

        return call

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
