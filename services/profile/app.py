"""Wires the profile service: handlers' ports bound to real adapters, the outbox relay."""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass

from backcrm.common.v1.common_pb2 import EventEnvelope

from libs.bus.port import EventBus, Subscription
from libs.outbox import OutboxRelay
from libs.rpc.service import RpcService
from libs.runtime import Peers, Resources
from libs.topics import SEGMENTATION_RFM
from services.profile.entrypoint import profile_service
from services.profile.events import encode_domain_event
from services.profile.handlers import ProfileDeps, cache_key, set_rfm_scores
from services.profile.models import OutboxRow
from services.profile.render import render_response
from services.profile.repository import SqlProfileUnitOfWork

__all__ = ["ProfileApp"]


@dataclass
class ProfileApp:
    deps: ProfileDeps
    relay: OutboxRelay
    rpc: RpcService
    bus: EventBus
    subscription: Subscription | None = None

    @classmethod
    def build(cls, resources: Resources, _peers: Peers | None = None) -> ProfileApp:
        """The registry's factory signature; profile calls no other service."""
        settings = resources.settings

        async def evict(customer_ids: Sequence[str]) -> None:
            # Before publishing: a consumer that reads the profile on the event sees the new
            # state, and a cache that missed an invalidation during an outage heals.
            keys = [cache_key(c) for c in customer_ids]
            await resources.cache.invalidate(keys, settings.cache_ttl_seconds)

        relay = resources.outbox_relay(OutboxRow, before_publish=evict)

        def uow() -> SqlProfileUnitOfWork:
            return SqlProfileUnitOfWork(
                sessions=resources.sessions, encode=encode_domain_event, after_commit=relay.nudge
            )

        deps = ProfileDeps(
            uow=uow,
            cache=resources.cache,
            clock=resources.clock,
            cache_ttl=settings.cache_ttl_seconds,
            render=render_response,
        )
        return cls(
            deps=deps,
            relay=relay,
            rpc=profile_service(deps, resources.bus, settings.max_message_bytes),
            bus=resources.bus,
        )

    async def start(self) -> None:
        self.relay.start()
        # Segmentation publishes RFM scores; the profile keeps them (Profile.rfm.*_score).
        self.subscription = await self.bus.subscribe(
            SEGMENTATION_RFM.name, "profile", f"{socket.gethostname()}-{os.getpid()}", self._on_rfm
        )

    async def _on_rfm(self, envelope: EventEnvelope) -> None:
        scored = SEGMENTATION_RFM.unpack(envelope)
        await set_rfm_scores(
            self.deps,
            [
                (s.customer_id, s.recency_score, s.frequency_score, s.monetary_score)
                for s in scored.scores
            ],
            scored.run,
        )

    async def stop(self) -> None:
        if self.subscription is not None:
            await self.subscription.stop()
        await self.relay.stop()
