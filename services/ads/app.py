"""Wires the ads service: handlers' ports bound to real adapters, the outbox relay, the
campaign cache's listeners, the consumer that sends interactions to the profile, and the
release of lapsed reservations."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from dataclasses import dataclass, field

import grpc
from backcrm.ads.v1 import ads_service_pb2 as pb
from backcrm.common.v1 import common_pb2
from backcrm.common.v1.common_pb2 import EventEnvelope
from backcrm.profile.v1 import profile_service_pb2 as profile_pb
from google.protobuf import struct_pb2

from libs.bus.port import EventBus, Subscription
from libs.errors import Unavailable
from libs.outbox import OutboxRelay
from libs.resolver import profile_resolver
from libs.rpc.service import RpcService
from libs.runtime import Peers, Resources, every
from libs.signals import SegmentationSignals
from libs.topics import ADS_CAMPAIGNS, ADS_INTERACTIONS, PROFILE_DELETED, PROFILE_MERGED
from services.ads.catalog import CampaignCache
from services.ads.entrypoint import ads_service
from services.ads.handlers import (
    AdsDeps,
    erase_customer,
    grant_reward,
    keep_traffic,
    merge_customers,
)
from services.ads.models import AdsOutboxRow
from services.ads.ports import Counters
from services.ads.remote import BonusRewards, ProfileInterests, SegmentationDirectory
from services.ads.render import encode_change, encode_interaction
from services.ads.repository import SqlAdsUnitOfWork, SqlCounters
from services.ads.tokens import Signer, dev_keys

__all__ = ["AdsApp"]

log = logging.getLogger(__name__)

# Interaction -> the profile event it becomes (a conversion is a CUSTOM "ad_conversion").
_EVENT_TYPES = {
    pb.INTERACTION_TYPE_IMPRESSION: profile_pb.EVENT_TYPE_AD_IMPRESSION,
    pb.INTERACTION_TYPE_CLICK: profile_pb.EVENT_TYPE_AD_CLICK,
    pb.INTERACTION_TYPE_CONVERSION: profile_pb.EVENT_TYPE_CUSTOM,
}


@dataclass
class AdsApp:
    deps: AdsDeps
    relay: OutboxRelay
    rpc: RpcService
    bus: EventBus
    peers: Peers
    check_seconds: float
    subscriptions: list[Subscription] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    def build(cls, resources: Resources, peers: Peers) -> AdsApp:
        settings = resources.settings
        relay = resources.outbox_relay(AdsOutboxRow)

        def uow() -> SqlAdsUnitOfWork:
            return SqlAdsUnitOfWork(
                resources.sessions, encode_change, encode_interaction, after_commit=relay.nudge
            )

        async def resolve(ref: common_pb2.CustomerRef, field_name: str) -> str:
            return await profile_resolver(peers.client())(ref, field_name)

        counters: Counters
        if settings.redis_url:
            from services.ads.counters import RedisCounters

            counters = RedisCounters(settings.redis_url, settings.redis_prefix)
        else:
            counters = SqlCounters(resources.sessions)
        if settings.ads_tracking_keys:
            keys = json.loads(settings.ads_tracking_keys)
            signer = Signer(keys, settings.ads_tracking_key_id or sorted(keys)[-1])
        else:
            signer = Signer(dev_keys(settings.database_url), "dev")
        deps = AdsDeps(
            uow=uow,
            clock=resources.clock,
            signals=SegmentationSignals(peers.client, peers.local),
            counters=counters,
            cache=CampaignCache(uow),
            signer=signer,
            interests=ProfileInterests(peers.client, peers.local),
            segments=SegmentationDirectory(peers.client),
            rewards=BonusRewards(lambda: peers.client("ads")),
            segment_timeout=settings.ads_segment_timeout_seconds,
            reservation_seconds=settings.ads_reservation_seconds,
        )
        return cls(
            deps=deps,
            relay=relay,
            rpc=ads_service(deps, resolve),
            bus=resources.bus,
            peers=peers,
            check_seconds=settings.ads_catalog_check_seconds,
        )

    async def start(self) -> None:
        consumer = f"{socket.gethostname()}-{os.getpid()}-{id(self)}"
        self.subscriptions = [
            await self.bus.subscribe(PROFILE_DELETED.name, "ads", consumer, self._on_deleted),
            await self.bus.subscribe(PROFILE_MERGED.name, "ads", consumer, self._on_merged),
            await self.bus.subscribe(
                ADS_INTERACTIONS.name, "ads-profile", consumer, self._to_profile
            ),
            await self.bus.subscribe(ADS_INTERACTIONS.name, "ads-reward", consumer, self._reward),
        ]
        self.relay.start()

        async def release() -> None:
            await self.deps.counters.release_lapsed(self.deps.clock())

        self.tasks = [
            asyncio.create_task(self._watch_campaigns(), name="ads-campaigns"),
            asyncio.create_task(
                every(self.check_seconds, self.deps.cache.refresh), name="ads-catalog"
            ),
            asyncio.create_task(every(60.0, release), name="ads-release"),
            asyncio.create_task(every(5.0, self._keep_traffic), name="ads-traffic"),
        ]

    async def _keep_traffic(self) -> None:
        await keep_traffic(self.deps)

    async def _watch_campaigns(self) -> None:
        # Fan-out, not a group: every process must see every campaign change. A tail misses
        # what was published while it was down; the version check covers that.
        while True:
            tail = self.bus.tail(ADS_CAMPAIGNS.name, internal=True)
            try:
                async for _ in tail:
                    await self.deps.cache.refresh()
            except Exception:
                log.exception("watching campaign changes failed; retrying")
                await asyncio.sleep(1.0)
            finally:
                await tail.aclose()  # type: ignore[attr-defined]

    async def _on_deleted(self, envelope: EventEnvelope) -> None:
        campaigns = list(await self.deps.cache.current())
        await erase_customer(self.deps, PROFILE_DELETED.unpack(envelope).customer_id, campaigns)

    async def _on_merged(self, envelope: EventEnvelope) -> None:
        merged = PROFILE_MERGED.unpack(envelope)
        campaigns = list(await self.deps.cache.current())
        await merge_customers(
            self.deps, merged.source_customer_id, merged.target_customer_id, campaigns
        )

    async def _to_profile(self, envelope: EventEnvelope) -> None:
        """A counted interaction becomes an event on the customer's profile. The event id is
        the envelope's, so a redelivery is a duplicate the profile drops; a profile that is
        down is waited for (Unavailable is retried in place), never skipped."""
        recorded = ADS_INTERACTIONS.unpack(envelope)
        if not recorded.customer_id:
            return
        properties = struct_pb2.Struct()
        properties.update(
            {
                "campaign_id": recorded.campaign_id,
                "creative_id": recorded.creative_id,
                "placement": recorded.placement,
            }
        )
        if recorded.type == pb.INTERACTION_TYPE_CONVERSION:
            properties.update({"name": "ad_conversion"})
        event = profile_pb.Event(
            event_id=f"ads-{envelope.event_id}",
            customer=common_pb2.CustomerRef(customer_id=recorded.customer_id),
            type=_EVENT_TYPES[recorded.type],
            channel=recorded.channel,
            occurred_at=recorded.occurred_at,
            properties=properties,
        )
        try:
            # with ads's own token: the one write ads makes to profiles
            reply = await self.peers.client("ads").profile.TrackEvents(
                profile_pb.TrackEventsRequest(events=[event])
            )
        except grpc.aio.AioRpcError as err:
            if err.code() in (
                grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
            ):
                raise Unavailable(f"profile TrackEvents: {err.code().name}") from err
            raise
        if reply.rejected:
            log.warning("profile rejected an ad event: %s", reply.rejected[0].reason)

    async def _reward(self, envelope: EventEnvelope) -> None:
        """A counted click or conversion that earns its campaign's reward: the points, once
        per (token, type) whatever the redeliveries (the bonus key is derived from them);
        bonus down raises Unavailable, retried in place; a refusal is recorded, not retried."""
        recorded = ADS_INTERACTIONS.unpack(envelope)
        if not recorded.customer_id or not recorded.HasField("reward"):
            return
        kind = pb.InteractionType.Name(recorded.type).removeprefix("INTERACTION_TYPE_")
        await grant_reward(
            self.deps,
            recorded.token_id,
            kind,
            recorded.campaign_id,
            recorded.customer_id,
            recorded.reward.program_id,
            recorded.reward.points,
        )

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subscription in self.subscriptions:
            await subscription.stop()
        await self.relay.stop()
        await self.deps.counters.close()
