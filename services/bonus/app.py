"""Wires the bonus service: handlers' ports bound to real adapters, the outbox relay."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from dataclasses import dataclass, field

from backcrm.common.v1 import common_pb2

from libs.bus.port import EventBus, Subscription
from libs.config import Settings
from libs.outbox import OutboxRelay
from libs.resolver import profile_resolver
from libs.rpc.service import RpcService
from libs.runtime import Peers, Resources, every
from libs.signals import SegmentationSignals
from libs.topics import BONUS_PROGRAMS, BONUS_PROMOTIONS
from services.bonus import consumers
from services.bonus.config import ConfigCache
from services.bonus.entrypoint import bonus_service
from services.bonus.handlers import BonusDeps, expire_due, tier_sweep
from services.bonus.models import BonusOutboxRow
from services.bonus.offers import OfferDeps, end_scheduled, flush_exposures
from services.bonus.ports import ProfileTraits
from services.bonus.render import encode_movement, encode_program, encode_promotion, encode_tier
from services.bonus.repository import SqlBonusUnitOfWork
from services.bonus.traits import ProfileTraitsWriter

__all__ = ["BonusApp", "quote_key"]

log = logging.getLogger(__name__)
# Holdout exposures are batched in memory and written this often (a quote writes nothing).
EXPOSURE_FLUSH_SECONDS = 1.0
# Promotions past their schedule's end are marked ENDED this often (quotes leave them out at
# once by their schedule; this frees their coupon codes and shows the status).
SCHEDULE_SWEEP_SECONDS = 30.0


def quote_key(settings: Settings) -> bytes:
    """The key signing quote ids: the setting, or one derived from what every replica of a
    deployment shares (its database URL)."""
    if settings.bonus_quote_key:
        return settings.bonus_quote_key.encode()
    return hashlib.sha256(f"backcrm bonus quotes\0{settings.database_url}".encode()).digest()


@dataclass
class BonusApp:
    deps: BonusDeps
    offers: OfferDeps
    relay: OutboxRelay
    rpc: RpcService
    bus: EventBus
    expiry_seconds: float
    config_check_seconds: float
    traits: ProfileTraits
    tier_seconds: float
    subscriptions: list[Subscription] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, resources: Resources, peers: Peers) -> BonusApp:
        relay = resources.outbox_relay(BonusOutboxRow)

        def uow() -> SqlBonusUnitOfWork:
            return SqlBonusUnitOfWork(
                resources.sessions,
                encode_movement,
                encode_program,
                encode_promotion,
                after_commit=relay.nudge,
                encode_tier=encode_tier,
            )

        async def resolve(ref: common_pb2.CustomerRef, field_name: str) -> str:
            # The client exists once the server listens (it may call this very process).
            return await profile_resolver(peers.client())(ref, field_name)

        settings = resources.settings
        deps = BonusDeps(
            uow=uow,
            clock=resources.clock,
            signals=SegmentationSignals(peers.client, peers.local),
            quote_key=quote_key(settings),
        )
        offers = OfferDeps(
            bonus=deps,
            config=ConfigCache(uow, resources.clock, settings.bonus_config_check_seconds),
            quote_key=deps.quote_key,
            quote_ttl=settings.bonus_quote_ttl_seconds,
            signals_timeout=settings.bonus_signals_timeout_seconds,
        )
        return cls(
            deps=deps,
            offers=offers,
            relay=relay,
            rpc=bonus_service(deps, offers, resolve),
            bus=resources.bus,
            expiry_seconds=settings.bonus_expiry_seconds,
            config_check_seconds=settings.bonus_config_check_seconds,
            # bonus.tier goes to the profile with bonus's own token (namespace "bonus")
            traits=ProfileTraitsWriter(lambda: peers.client("bonus")),
            tier_seconds=settings.bonus_tier_sweep_seconds,
        )

    async def start(self) -> None:
        self.relay.start()
        # Erasures, merges and purchases from the profile service, tiers to it
        # (services/bonus/consumers.py).
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
            # Every process drops its cached configuration on every change (a fan-out tail, not
            # a group), and compares the version row as a safety net for a missed event.
            asyncio.create_task(self._watch_config(), name="bonus-config"),
            asyncio.create_task(
                every(self.config_check_seconds, self.offers.config.check_version),
                name="bonus-config-version",
            ),
            asyncio.create_task(
                every(EXPOSURE_FLUSH_SECONDS, self._flush_exposures), name="bonus-exposures"
            ),
            asyncio.create_task(
                every(SCHEDULE_SWEEP_SECONDS, self._end_scheduled), name="bonus-schedules"
            ),
        ]

    async def _end_scheduled(self) -> None:
        while await end_scheduled(self.offers) > 0:
            pass

    async def _flush_exposures(self) -> None:
        await flush_exposures(self.offers)

    async def _watch_config(self) -> None:
        async def follow(topic: str) -> None:
            while True:
                tail = self.bus.tail(topic, internal=True)
                try:
                    async for _ in tail:
                        self.offers.config.invalidate()
                except Exception:
                    log.exception("watching %s failed; retrying", topic)
                    await asyncio.sleep(1.0)
                finally:
                    await tail.aclose()  # type: ignore[attr-defined]

        await asyncio.gather(follow(BONUS_PROMOTIONS.name), follow(BONUS_PROGRAMS.name))

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subscription in self.subscriptions:
            await subscription.stop()
        with contextlib.suppress(Exception):
            await flush_exposures(self.offers)  # what this process saw, before it goes
        await self.relay.stop()
