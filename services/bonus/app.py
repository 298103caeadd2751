"""Wires the bonus service: handlers' ports bound to real adapters, the outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from dataclasses import dataclass, field

from backcrm.common.v1 import common_pb2
from backcrm.common.v1.common_pb2 import EventEnvelope

from libs.bus.port import EventBus, Subscription
from libs.outbox import OutboxRelay
from libs.resolver import profile_resolver
from libs.rpc.service import RpcService
from libs.runtime import Peers, Resources, every
from libs.signals import SegmentationSignals
from libs.topics import PROFILE_DELETED
from services.bonus.entrypoint import bonus_service
from services.bonus.handlers import BonusDeps, erase_customer, expire_due
from services.bonus.models import BonusOutboxRow
from services.bonus.render import encode_movement, encode_program
from services.bonus.repository import SqlBonusUnitOfWork

__all__ = ["BonusApp"]


@dataclass
class BonusApp:
    deps: BonusDeps
    relay: OutboxRelay
    rpc: RpcService
    bus: EventBus
    expiry_seconds: float
    subscription: Subscription | None = None
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
                resources.sessions, encode_movement, encode_program, after_commit=relay.nudge
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
        )

    async def start(self) -> None:
        self.relay.start()
        # An erased customer's loyalty accounts and history go too.
        self.subscription = await self.bus.subscribe(
            PROFILE_DELETED.name, "bonus", f"{socket.gethostname()}-{os.getpid()}", self._on_deleted
        )

        async def expire() -> None:
            while await expire_due(self.deps) > 0:
                pass

        self.tasks = [asyncio.create_task(every(self.expiry_seconds, expire), name="bonus-expiry")]

    async def _on_deleted(self, envelope: EventEnvelope) -> None:
        await erase_customer(self.deps, PROFILE_DELETED.unpack(envelope).customer_id)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.subscription is not None:
            await self.subscription.stop()
        await self.relay.stop()
