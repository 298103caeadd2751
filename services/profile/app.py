"""Wires the profile service: handlers' ports bound to real adapters, the outbox relay."""

from __future__ import annotations

from dataclasses import dataclass

from libs.rpc.service import RpcService
from libs.runtime import Resources
from services.profile.entrypoint import profile_service
from services.profile.events import encode_domain_event
from services.profile.handlers import ProfileDeps
from services.profile.outbox import OutboxRelay
from services.profile.render import render_response
from services.profile.repository import SqlUnitOfWork

__all__ = ["ProfileApp"]


@dataclass
class ProfileApp:
    deps: ProfileDeps
    relay: OutboxRelay
    rpc: RpcService

    @classmethod
    def build(cls, resources: Resources) -> ProfileApp:
        settings = resources.settings
        relay = OutboxRelay(
            resources.sessions,
            resources.bus,
            resources.cache,
            idle_seconds=settings.outbox_poll_seconds,
        )

        def uow() -> SqlUnitOfWork:
            return SqlUnitOfWork(
                sessions=resources.sessions, encode=encode_domain_event, after_commit=relay.nudge
            )

        deps = ProfileDeps(
            uow=uow,
            cache=resources.cache,
            clock=resources.clock,
            cache_ttl=settings.cache_ttl_seconds,
            render=render_response,
        )
        return cls(deps=deps, relay=relay, rpc=profile_service(deps, resources.bus))

    async def start(self) -> None:
        self.relay.start()

    async def stop(self) -> None:
        await self.relay.stop()
