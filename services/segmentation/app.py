"""Wires the segmentation service: the handlers' ports bound to real adapters, the outbox
relay, the bus consumers and the background jobs."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from backcrm.common.v1 import common_pb2

from libs.bus.port import Subscription
from libs.outbox import OutboxRelay
from libs.resolver import profile_resolver
from libs.rpc.service import RpcService
from libs.runtime import Peers, Resources
from services.segmentation import consumers, handlers
from services.segmentation.engine import forget_cached
from services.segmentation.entrypoint import segmentation_service
from services.segmentation.handlers import SegmentationDeps
from services.segmentation.loops import start_loops, stop_loops
from services.segmentation.models import SegOutboxRow
from services.segmentation.store import SegStore
from services.segmentation.translate import (
    encode_membership_change,
    encode_rfm,
    encode_segment_change,
)

__all__ = ["SegmentationApp"]


@dataclass
class SegmentationApp:
    deps: SegmentationDeps
    relay: OutboxRelay
    rpc: RpcService
    resources: Resources
    subscriptions: list[Subscription] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, resources: Resources, peers: Peers) -> SegmentationApp:
        async def resolve(ref: common_pb2.CustomerRef, field_name: str) -> str:
            # The client exists once the server listens (it may call this very process).
            return await profile_resolver(peers.client())(ref, field_name)

        async def evict(customer_ids: Sequence[str]) -> None:
            # Before a membership change goes out, its customers' cached memberships go: a
            # caller who reacts to the event by asking GetMemberships sees the change.
            # (Segment definition events name no customer.)
            await forget_cached(resources.cache, [c for c in customer_ids if c])

        relay = resources.outbox_relay(SegOutboxRow, before_publish=evict)

        def store() -> SegStore:
            return SegStore(resources.sessions, encode_membership_change, after_commit=relay.nudge)

        deps = SegmentationDeps.create(
            store,
            resources.cache,
            resources.clock,
            encode_segment=encode_segment_change,
            encode_rfm=encode_rfm,
            concurrent_builds=resources.settings.segment_builds,
        )
        rpc = segmentation_service(deps, resources.bus, resolve)
        return cls(deps=deps, relay=relay, rpc=rpc, resources=resources)

    async def start(self) -> None:
        await handlers.reload_catalog(self.deps)
        self.subscriptions = await consumers.subscribe(self.resources.bus, self.deps.engine)
        self.relay.start()
        self.tasks = start_loops(self.deps, self.resources.bus, self.resources.settings)
        await handlers.resume_builds(self.deps)

    async def stop(self) -> None:
        await stop_loops(self.tasks)
        for subscription in self.subscriptions:
            await subscription.stop()
        self.deps.builds.cancel_all()
        await self.relay.stop()
