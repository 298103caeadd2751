"""Wires the bonus service: handlers' ports bound to real adapters, the outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from backcrm.common.v1 import common_pb2

from libs.bus.port import EventBus, Subscription
from libs.outbox import OutboxRelay
from libs.resolver import profile_resolver
from libs.rpc.service import RpcService
from libs.runtime import Peers, Resources, every
from services.bonus import consumers
from services.bonus.entrypoint import bonus_service
from services.bonus.handlers import BonusDeps, expire_due, tier_sweep
from services.bonus.models import BonusOutboxRow
from services.bonus.ports import ProfileTraits
from services.bonus.render import encode_movement, encode_program, encode_tier
from services.bonus.repository import SqlBonusUnitOfWork
from services.bonus.signals import SegmentationSignals
from services.bonus.traits import ProfileTraitsWriter

__all__ = ["BonusApp"]


@dataclass
class BonusApp:
    deps: BonusDeps
    relay: OutboxRelay
    rpc: RpcService
    bus: EventBus
    expiry_seconds: float
    traits: ProfileTraits
    tier_seconds: float
    subscriptions: list[Subscription] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, resources: Resources, peers: Peers) -> BonusApp:
        relay = OutboxRelay(
            resources.sessions,
            resources.bus,
            BonusOutboxRow,
            idle_seconds=resources.settings.outbox_poll_seconds,
        )

        def uow() -> SqlBonusUnitOfWork:
            return SqlBonusUnitOfWork(
                resources.sessions,
                encode_movement,
                encode_program,
                after_commit=relay.nudge,
                encode_tier=encode_tier,
            )

        async def resolve(ref: common_pb2.CustomerRef, field_name: str) -> str:
            # The client exists once the server listens (it may call this very process).
            return await profile_resolver(peers.client())(ref, field_name)

        deps = BonusDeps(uow=uow, clock=resources.clock, signals=SegmentationSignals(peers.client))
        return cls(
            deps=deps,
            relay=relay,
            rpc=bonus_service(deps, resolve),
            bus=resources.bus,
            expiry_seconds=resources.settings.bonus_expiry_seconds,
            # bonus.tier goes to the profile with bonus's own token (namespace "bonus")
            traits=ProfileTraitsWriter(lambda: peers.client("bonus")),
            tier_seconds=resources.settings.bonus_tier_sweep_seconds,
        )

    async def start(self) -> None:
        self.relay.start()
        # Erasures and purchases from the profile service (services/bonus/consumers.py).
        self.subscriptions = await consumers.subscribe(self.bus, self.deps, self.traits)

        async def expire() -> None:
            while await expire_due(self.deps) > 0:
                pass

        async def tiers() -> None:  # tiers go down with time alone
            after = await tier_sweep(self.deps, None)
            while after is not None:
                after = await tier_sweep(self.deps, after)

        self.tasks = [
            asyncio.create_task(every(self.expiry_seconds, expire), name="bonus-expiry"),
            asyncio.create_task(every(self.tier_seconds, tiers), name="bonus-tiers"),
        ]

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subscription in self.subscriptions:
            await subscription.stop()
        await self.relay.stop()
